"""The fix under a dispatching convention (transformers): an `isinstance(module, Owner)`
branch in the `_init_weights` of the model class of the owner's file, written with the
stack's in-place helpers (`init.copy_(module.b, ...)`), which leave a tensor loaded from the
checkpoint alone. `_init_weights` is created, calling `super()`'s first, when the model has
none. The rebuild itself is derived as for any hook (bufferlint.fix.hook_body), from the
module's own construction, reading what the module stored."""

from __future__ import annotations

import re
from dataclasses import dataclass

import libcst as cst

from bufferlint import prefilter
from bufferlint.conventions import Convention
from bufferlint.facts import FileFacts
from bufferlint.findings import Finding
from bufferlint.fix.edit import with_method
from bufferlint.fix.factories import torch_name
from bufferlint.fix.plan import Plan, fix_kind, rebuilds
from bufferlint.fix.replay import Unavailable
from bufferlint.fix.workspace import Workspace
from bufferlint.syntax import dotted

# In-place tensor methods and the helper of the stack's initializer module that does the
# same: `module.b.zero_()` -> `init.zeros_(module.b)`.
HELPERS = {"copy_": "copy_", "zero_": "zeros_", "fill_": "constant_"}
INIT_NAME = "init"


@dataclass
class BranchPlan(Plan):
    """A fix that adds a branch for the owner to another class's dispatcher."""

    owner: str = ""  # the class whose buffers the branch rebuilds
    branch: list[cst.BaseStatement] | None = None

    @property
    def message(self) -> str:
        where = f"`{self.class_node.name.value}.{self.hook}`"
        text = (
            f"Add `{self.hook}` to `{self.class_node.name.value}`, calling `super()`'s, with"
            if self.create
            else f"Add to {where}"
        )
        names = ", ".join(f"`{n}`" for n in self.rebuilt)
        text += f" an `isinstance(module, {self.owner})` branch that rebuilds {names}"
        if self.reasons:
            text += f" (unsafe: it {'; it '.join(self.reasons)})"
        return text

    def rewrite(self, node: cst.ClassDef) -> cst.ClassDef:
        branch = self.branch
        assert branch is not None
        return with_method(
            node,
            self.hook,
            lambda hook: _with_branch(hook, self.self_name, branch[0]),
            self._new_hook,
        )

    def _new_hook(self, blank: int) -> cst.FunctionDef:
        assert self.branch is not None
        call = cst.Call(
            func=cst.Attribute(value=cst.Call(func=cst.Name("super")), attr=cst.Name(self.hook)),
            args=[cst.Arg(cst.Name(self.self_name))],
        )
        params = [cst.Param(cst.Name("self")), cst.Param(cst.Name(self.self_name))]
        return cst.FunctionDef(
            name=cst.Name(self.hook),
            params=cst.Parameters(params=params),
            body=cst.IndentedBlock(body=[cst.SimpleStatementLine([cst.Expr(call)]), *self.branch]),
            leading_lines=[cst.EmptyLine(indent=False)] * blank,
        )


def plan(finding: Finding, workspace: Workspace, convention: Convention) -> BranchPlan:
    """The branch that rebuilds one finding's buffers; raises Unavailable with the reason
    there is none."""
    owner = f"{finding.module}.{finding.class_name}"
    project = workspace.project
    if owner not in project.classes:
        raise Unavailable("bufferlint cannot find the class in the current source")
    home = _home(workspace, owner, convention)
    located = workspace.class_node(home) if home else None
    if located is None:
        raise Unavailable(
            f"no `{convention.bases[0].rpartition('.')[2]}` subclass in this file to give "
            f"an `isinstance(module, {finding.class_name})` branch: add it to the "
            f"`{convention.hooks[0]}` of the model that holds the class"
        )
    index, home_node = located
    hook = convention.hooks[0]
    existing = next(
        (s for s in home_node.body.body if isinstance(s, cst.FunctionDef) and s.name.value == hook),
        None,
    )
    module_name = _module_param(existing)
    kind = fix_kind(finding)
    if kind not in ("buffers", "frozen"):
        raise Unavailable(f"no `{hook}` branch is written for {finding.code} findings yet")
    start = rebuilds(workspace, owner, kind, convention)
    targets = start.targets
    body = start.body(workspace, index, module_name)
    for name in targets:
        start.add(body, name)
    init = _init_alias(index.facts.imports, convention)
    statements, raw = _with_helpers(body.statements(), module_name, init or INIT_NAME)
    torch = torch_name(index)
    if raw:
        statements = [_no_grad(torch or "torch", statements)]
    reasons = list(body.reasons)
    if raw:
        reasons.append(
            "writes buffers in place without the initializer helpers, which also "
            "overwrites them when the checkpoint holds them"
        )
    test = cst.Call(
        func=cst.Name("isinstance"),
        args=[
            cst.Arg(cst.Name(module_name), comma=_comma()),
            cst.Arg(cst.Name(finding.class_name.rpartition(".")[2])),
        ],
    )
    branch = cst.If(test=test, body=cst.IndentedBlock(body=statements))
    imports = {} if init else {INIT_NAME: _init_import(finding.module, convention)}
    return BranchPlan(
        finding=finding,
        qualified=owner,
        index=index,
        class_node=home_node,
        hook=hook,
        self_name=module_name,
        create=existing is None,
        add_super=existing is None,
        guard=None,
        body=[],
        rebuilt=targets,
        torch=torch or ("" if raw else "torch"),  # "": `import torch` must be added
        imports={**body.imports, **imports},
        annotate=False,
        reasons=list(dict.fromkeys(reasons)),
        owner=finding.class_name.rpartition(".")[2],
        branch=[branch],
    )


def _home(workspace: Workspace, owner: str, convention: Convention) -> str | None:
    """The model class of the owner's file that the branch goes in: of the models whose
    code constructs the owner (or the owner itself), the ancestor in the file that derives
    from the stack's base directly (`XPreTrainedModel`, whose hook its family shares); else
    the file's first such class. Read from the class headers of the whole file (a lint
    parses only the classes that may report; parsing all of it costs a second per model)."""
    source = workspace.project.classes[owner][1]
    text = workspace.text(source.path)
    if text is None:
        return None
    headers = [h for h in prefilter.index(text).headers if h.real and _top_level(text, h)]
    name = owner.rpartition(".")[2]
    family: dict[str, str] = {}  # model class -> its ancestor that derives from the base
    for header in headers:
        bases = [
            workspace.project.resolve_written(_imported(b, source), owner) for b in header.dotted
        ]
        if any(base in convention.bases for base in bases):
            family[header.name] = header.name
        else:
            parent = next((b for b in header.dotted if b in family), None)
            if parent is not None:
                family[header.name] = family[parent]
    if not family:
        return None
    builds = re.compile(rf"\b{re.escape(name)}\s*\(")
    ends = [h.offset for h in headers[1:]] + [len(text)]
    for header, end in zip(headers, ends, strict=True):
        if header.name in family and (
            header.name == name or builds.search(text, header.offset, end)
        ):
            return f"{source.module}.{family[header.name]}"
    return f"{source.module}.{next(iter(family.values()))}"


def _imported(written: str, facts: FileFacts) -> str:
    """A dotted name as written, its head replaced by what the file imports under it."""
    head, dot, rest = written.partition(".")
    target = facts.imports.get(head)
    return written if target is None else target + dot + rest


def _top_level(text: str, header: prefilter.Header) -> bool:
    return header.offset == 0 or text[header.offset - 1] in "\r\n"


def _module_param(hook: cst.FunctionDef | None) -> str:
    if hook is not None:
        params = [*hook.params.posonly_params, *hook.params.params]
        if len(params) > 1:
            return params[1].name.value
    return "module"


def _init_alias(imports: dict[str, str], convention: Convention) -> str:
    """What the file calls the stack's initializer module, or "" when it is not imported."""
    modules = {m.rstrip(".") for m in convention.init_modules}
    return next((local for local, target in imports.items() if target in modules), "")


def _init_import(module: str, convention: Convention) -> str:
    """The initializer module as the file should import it: relatively inside the stack's
    own package (`from ... import initialization`), else by its absolute name."""
    target = convention.init_modules[0].rstrip(".")
    package, _, name = target.rpartition(".")
    parts = module.split(".")
    if parts[0] == package:
        return "." * (len(parts) - 1) + name
    return target


def _with_helpers(
    statements: list[cst.BaseStatement], module_name: str, init: str
) -> tuple[list[cst.BaseStatement], bool]:
    """The statements with in-place writes of `module.b` made helper calls; whether any
    write is left raw."""
    out: list[cst.BaseStatement] = []
    raw = False
    for statement in statements:
        if isinstance(statement, cst.SimpleStatementLine):
            smalls = []
            for small in statement.body:
                converted = _helper_call(small, module_name, init)
                raw = raw or (converted is None and not _sets_local(small))
                smalls.append(converted or small)
            out.append(statement.with_changes(body=smalls))
        else:
            raw = True
            out.append(statement)
    return out, raw


def _helper_call(
    small: cst.BaseSmallStatement, module_name: str, init: str
) -> cst.BaseSmallStatement | None:
    if not (isinstance(small, cst.Expr) and isinstance(small.value, cst.Call)):
        return None
    call = small.value
    func = call.func
    if not isinstance(func, cst.Attribute) or func.attr.value not in HELPERS:
        return None
    target = func.value
    if not (isinstance(target, cst.Attribute) and dotted(target.value) == module_name):
        return None
    helper = HELPERS[func.attr.value]
    args = [cst.Arg(target), *call.args]
    if helper == "constant_" and len(call.args) == 1 and _is_one(call.args[0].value):
        helper, args = "ones_", [cst.Arg(target)]
    args = [a.with_changes(comma=_comma()) for a in args[:-1]] + [
        args[-1].with_changes(comma=cst.MaybeSentinel.DEFAULT)
    ]
    new = cst.Call(func=cst.Attribute(value=cst.Name(init), attr=cst.Name(helper)), args=args)
    return small.with_changes(value=new)


def _is_one(node: cst.BaseExpression) -> bool:
    return isinstance(node, (cst.Integer, cst.Float)) and float(node.value) == 1.0


def _sets_local(small: cst.BaseSmallStatement) -> bool:
    """Whether the statement only binds local names (a value the rebuild then copies)."""
    if not isinstance(small, (cst.Assign, cst.AnnAssign)):
        return False
    targets = [t.target for t in small.targets] if isinstance(small, cst.Assign) else [small.target]
    return all(
        isinstance(t, cst.Name)
        or (
            isinstance(t, (cst.Tuple, cst.List))
            and all(isinstance(e.value, cst.Name) for e in t.elements)
        )
        for t in targets
    )


def _no_grad(torch: str, statements: list[cst.BaseStatement]) -> cst.With:
    no_grad = cst.Call(func=cst.Attribute(value=cst.Name(torch), attr=cst.Name("no_grad")))
    return cst.With(items=[cst.WithItem(no_grad)], body=cst.IndentedBlock(body=statements))


def _comma() -> cst.Comma:
    return cst.Comma(cst.SimpleWhitespace(""), cst.SimpleWhitespace(" "))


def _with_branch(hook: cst.FunctionDef, module_name: str, branch: cst.If) -> cst.FunctionDef:
    """The hook with the branch as the last `elif` of its final `isinstance` chain, or as a
    new `if` at its end."""
    assert isinstance(hook.body, cst.IndentedBlock)
    statements = list(hook.body.body)
    last = statements[-1] if statements else None
    if isinstance(last, cst.If) and _dispatches(last.test, module_name):
        chained = _append_elif(last, branch)
        if chained is not None:
            statements[-1] = chained
            return hook.with_changes(body=hook.body.with_changes(body=statements))
    statements.append(branch)
    return hook.with_changes(body=hook.body.with_changes(body=statements))


def _append_elif(node: cst.If, branch: cst.If) -> cst.If | None:
    if node.orelse is None:
        return node.with_changes(orelse=branch)
    if isinstance(node.orelse, cst.If):
        inner = _append_elif(node.orelse, branch)
        return None if inner is None else node.with_changes(orelse=inner)
    return None  # an `else:` ends the chain


def _dispatches(test: cst.BaseExpression, module_name: str) -> bool:
    return (
        isinstance(test, cst.Call)
        and dotted(test.func) == "isinstance"
        and bool(test.args)
        and dotted(test.args[0].value) == module_name
    )
