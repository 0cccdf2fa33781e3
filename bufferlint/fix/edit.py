"""Puts plans into a file's CST and renders it: everything outside the edited hooks (and
the `import torch` line, when one is needed) keeps its bytes, since LibCST reproduces
the source it parsed, comments, quotes and line endings included."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Sequence
from typing import Any

import libcst as cst

from bufferlint import parsing, walk
from bufferlint.fix.free_names import is_docstring, store_position
from bufferlint.fix.index import SourceIndex
from bufferlint.fix.plan import Plan
from bufferlint.syntax import dotted


def render(index: SourceIndex, plans: Sequence[Plan]) -> str:
    """The file's text with every plan applied. Only the top-level statements holding the
    fixed classes are regenerated; the rest of the text is copied as it is."""
    replacements: dict[int, cst.CSTNode] = {}
    ancestors: set[int] = set()
    for plan in plans:  # statements rewritten where they stand, before their classes
        for old, new in plan.swaps:
            replacements[id(old)] = new
            ancestors.update(id(a) for a in index.ancestors(old))
    depth = {id(p): sum(1 for _ in index.ancestors(p.class_node)) for p in plans}
    for plan in sorted(plans, key=lambda p: -depth[id(p)]):  # inner classes first
        inner = _replace(plan.class_node, replacements, ancestors)
        assert isinstance(inner, cst.ClassDef)
        # A plan for another class's hook (bufferlint.fix.dispatcher) rewrites it itself.
        rewrite = getattr(plan, "rewrite", None)
        rewritten = rewrite(inner) if rewrite else _rewrite_class(inner, plan)
        if plan.then is not None:  # the same class's second hook (Convention.after_loading)
            rewritten = _rewrite_class(rewritten, plan.then)
        replacements[id(plan.class_node)] = rewritten
        ancestors.update(id(a) for a in index.ancestors(plan.class_node))
    text = index.text
    pieces, cursor, done = [], 0, 0
    for chunk, statement in index.top_level():
        new = _replace(statement, replacements, ancestors)
        if new is not statement:
            start, end = index.span(chunk, statement)
            pieces += [text[cursor:start], index.code_for_statement(chunk, new, statement)]
            cursor = end
            done += 1
    if done != len({id(_top(index, p.class_node)) for p in plans}):
        raise ValueError("a fixed class is not in the parsed file")  # a stale CST
    text = "".join(pieces) + text[cursor:]
    needed: dict[str, str] = {}  # local name -> qualified, for the imports to add
    for plan in plans:
        swapped = any(isinstance(new, cst.With) for _, new in plan.swaps)
        bodies = plan.body or (plan.then is not None and plan.then.body)
        if (bodies or swapped) and not plan.torch:
            needed["torch"] = "torch"
        needed.update(plan.imports)
    return _add_imports(text, needed) if needed else text


def _top(index: SourceIndex, node: cst.CSTNode) -> cst.CSTNode:
    """The top-level statement holding `node`."""
    chain = [node, *index.ancestors(node)]  # ends with the parsed chunk's module
    return chain[-2] if len(chain) > 1 else node


def _add_imports(text: str, needed: dict[str, str]) -> str:
    """`text` with imports of `needed` (local name -> qualified name): `import torch`
    beside the file's torch imports, as isort places it; anything else where LibCST
    places it. The edited text is parsed whole: few fixes need an import."""
    # LibCST's codemods are slow to import: only when a fix needs them.
    from libcst.codemod import CodemodContext
    from libcst.codemod.visitors import AddImportsVisitor

    module = parsing.parse_module(text)
    if needed != {"torch": "torch"}:
        context = CodemodContext()
        for local, qualified in sorted(needed.items()):
            level = len(qualified) - len(qualified.lstrip("."))  # `...initialization`
            if level:
                module_name, _, obj = qualified[level:].rpartition(".")
                asname = None if local == obj else local
                AddImportsVisitor.add_needed_import(context, module_name, obj, asname, level)
                continue
            module_name, _, obj = qualified.rpartition(".")
            if not module_name:
                AddImportsVisitor.add_needed_import(
                    context, qualified, asname=None if local == qualified else local
                )
            else:
                AddImportsVisitor.add_needed_import(
                    context, module_name, obj, asname=None if local == obj else local
                )
        return AddImportsVisitor(context).transform_module(module).code
    body = list(module.body)
    imports = [
        (i, statement)
        for i, statement in enumerate(body)
        if isinstance(statement, cst.SimpleStatementLine)
        and isinstance(statement.body[0], (cst.Import, cst.ImportFrom))
    ]
    position = next((i for i, s in imports if any(map(_from_torch, s.body))), None)
    gap: list[cst.EmptyLine] = []
    if position is None:  # before the project's own (relative) imports, as isort does
        position = next((i for i, s in imports if _relative(s.body[0])), None)
        gap = [cst.EmptyLine(indent=False)]
    if position is None:  # no torch import at all: let LibCST place it
        context = CodemodContext()
        AddImportsVisitor.add_needed_import(context, "torch")
        return AddImportsVisitor(context).transform_module(module).code
    statement = body[position]
    assert isinstance(statement, cst.SimpleStatementLine)
    line = cst.SimpleStatementLine(
        body=[cst.Import(names=[cst.ImportAlias(name=cst.Name("torch"))])],
        leading_lines=statement.leading_lines,
    )
    body[position : position + 1] = [line, statement.with_changes(leading_lines=gap)]
    return module.with_changes(body=body).code


def _replace(
    node: cst.CSTNode, replacements: dict[int, cst.CSTNode], ancestors: set[int]
) -> cst.CSTNode:
    """`node` with the replacements made below it, rebuilding only the nodes on the way."""
    if id(node) in replacements:
        return replacements[id(node)]
    if id(node) not in ancestors:
        return node
    changes: dict[str, object] = {}
    for name in walk.fields(node):
        value = getattr(node, name)
        if isinstance(value, cst.CSTNode):
            new = _replace(value, replacements, ancestors)
            if new is not value:
                changes[name] = new
        elif isinstance(value, (list, tuple)):
            items = [
                _replace(v, replacements, ancestors) if isinstance(v, cst.CSTNode) else v
                for v in value
            ]
            if any(n is not o for n, o in zip(items, value, strict=True)):
                changes[name] = items
    return node.with_changes(**changes) if changes else node


def _relative(small: cst.BaseSmallStatement) -> bool:
    return isinstance(small, cst.ImportFrom) and bool(small.relative)


def _from_torch(small: cst.BaseSmallStatement) -> bool:
    """`from torch... import` or `import torch.x`: isort puts `import torch` before them."""
    if isinstance(small, cst.ImportFrom) and not small.relative and small.module is not None:
        return (dotted(small.module) or "").split(".")[0] == "torch"
    if isinstance(small, cst.Import):
        return any((dotted(a.name) or "").startswith("torch.") for a in small.names)
    return False


def edits(before: str, after: str) -> list[dict[str, Any]]:
    """ruff's JSON edits (1-based rows and columns, end exclusive) turning `before` into `after`."""
    old = before.splitlines(keepends=True)
    new = after.splitlines(keepends=True)
    # Only the lines between the common head and tail go to SequenceMatcher, which is
    # quadratic in a file of many equal lines.
    shorter = min(len(old), len(new))
    head = 0
    while head < shorter and old[head] == new[head]:
        head += 1
    tail = 0
    while tail < shorter - head and old[-1 - tail] == new[-1 - tail]:
        tail += 1
    old_middle, new_middle = old[head : len(old) - tail], new[head : len(new) - tail]
    out = []
    matcher = difflib.SequenceMatcher(None, old_middle, new_middle, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            continue
        out.append(
            {
                "content": "".join(new_middle[j1:j2]),
                "location": {"row": head + i1 + 1, "column": 1},
                "end_location": {"row": head + i2 + 1, "column": 1},
            }
        )
    return out


def _rewrite_class(node: cst.ClassDef, plan: Plan) -> cst.ClassDef:
    if not isinstance(node.body, cst.IndentedBlock) or not (
        plan.create or plan.add_super or plan.body
    ):
        return node
    body = list(node.body.body)
    if plan.stores:
        position = _after_init(body) - 1
        init = body[position]
        assert isinstance(init, cst.FunctionDef)
        body[position] = _store_arguments(init, plan)
    if plan.create:
        position, blank = new_method_slot(body)
        body.insert(position, _new_hook(plan, blank))
    else:
        position = max(
            i
            for i, statement in enumerate(body)
            if isinstance(statement, cst.FunctionDef) and statement.name.value == plan.hook
        )
        hook = body[position]
        assert isinstance(hook, cst.FunctionDef)
        body[position] = _extend(hook, plan)
    return node.with_changes(body=node.body.with_changes(body=body))


def _store_arguments(init: cst.FunctionDef, plan: Plan) -> cst.FunctionDef:
    """`__init__` with `self.<attr> = <param>` for each argument the hook reads, after
    its `super().__init__()` call (or first, after a docstring)."""
    suite = init.body
    if not isinstance(suite, cst.IndentedBlock):
        return init
    statements = list(suite.body)
    params = [*init.params.posonly_params, *init.params.params]
    self_name = params[0].name.value if params else "self"
    start = store_position(statements)
    lines = [
        cst.SimpleStatementLine(
            body=[
                cst.Assign(
                    targets=[cst.AssignTarget(cst.Attribute(cst.Name(self_name), cst.Name(attr)))],
                    value=cst.Name(param),
                )
            ]
        )
        for param, attr in plan.stores.items()
    ]
    statements[start:start] = lines
    return init.with_changes(body=suite.with_changes(body=statements))


def _after_init(body: list[cst.BaseStatement]) -> int:
    positions = [
        i
        for i, statement in enumerate(body)
        if isinstance(statement, cst.FunctionDef) and statement.name.value == "__init__"
    ]
    return positions[-1] + 1 if positions else len(body)


def with_method(
    node: cst.ClassDef,
    name: str,
    change: Callable[[cst.FunctionDef], cst.FunctionDef],
    create: Callable[[int], cst.FunctionDef],
) -> cst.ClassDef:
    """The class with its last method `name` (the one Python keeps) changed, or, where it
    has none, the method `create(blank_lines)` makes placed after `__init__`."""
    assert isinstance(node.body, cst.IndentedBlock)
    body = list(node.body.body)
    found = [
        i for i, s in enumerate(body) if isinstance(s, cst.FunctionDef) and s.name.value == name
    ]
    if found:
        method = body[found[-1]]
        assert isinstance(method, cst.FunctionDef)
        body[found[-1]] = change(method)
    else:
        position, blank = new_method_slot(body)
        body.insert(position, create(blank))
    return node.with_changes(body=node.body.with_changes(body=body))


def indented(suite: cst.BaseSuite) -> cst.IndentedBlock:
    """A body as an indented block, so statements can be added (`def f(self): pass`)."""
    if isinstance(suite, cst.SimpleStatementSuite):
        line = cst.SimpleStatementLine(
            body=[s.with_changes(semicolon=cst.MaybeSentinel.DEFAULT) for s in suite.body]
        )
        return cst.IndentedBlock(body=[line], header=suite.trailing_whitespace)
    assert isinstance(suite, cst.IndentedBlock)
    return suite


def new_method_slot(body: list[cst.BaseStatement]) -> tuple[int, int]:
    """Where a new method goes in a class body (right after `__init__`) and how many blank
    lines lead it, as the class separates its methods."""
    position = _after_init(body)
    return position, _blank_lines(body, position)


def _blank_lines(body: list[cst.BaseStatement], position: int) -> int:
    """As many blank lines as separate the class's methods (the next one, or the previous)."""
    for neighbour in (body[position : position + 1], body[position - 1 : position]):
        for statement in neighbour:
            if isinstance(statement, cst.FunctionDef) and statement.leading_lines:
                blank = 0
                for line in statement.leading_lines:
                    if line.comment is not None:
                        break
                    blank += 1
                if blank:
                    return blank
    return 1


def _super_call(plan: Plan) -> cst.SimpleStatementLine:
    forward = f"{plan.device_parameter}={plan.device_parameter}" if plan.device_parameter else ""
    call = cst.parse_expression(f"super().{plan.hook}({forward})")
    return cst.SimpleStatementLine(body=[cst.Expr(call)])


def _rebuild(plan: Plan) -> cst.BaseStatement:
    """`with torch.no_grad():` around the rebuild, under `if hasattr(self, "b"):` when
    construction runs the hook before the buffer exists."""
    alias = plan.torch or "torch"
    no_grad = cst.Call(func=cst.Attribute(value=cst.Name(alias), attr=cst.Name("no_grad")))
    statement: cst.BaseStatement = cst.With(
        items=[cst.WithItem(no_grad)], body=cst.IndentedBlock(body=plan.body)
    )
    if plan.guard is not None:
        test = cst.Call(
            func=cst.Name("hasattr"),
            args=[
                cst.Arg(
                    cst.Name(plan.self_name),
                    comma=cst.Comma(cst.SimpleWhitespace(""), cst.SimpleWhitespace(" ")),
                ),
                cst.Arg(cst.SimpleString(f'"{plan.guard}"')),
            ],
        )
        statement = cst.If(test=test, body=cst.IndentedBlock(body=[statement]))
    return statement


def _new_hook(plan: Plan, blank: int) -> cst.FunctionDef:
    statements: list[cst.BaseStatement] = []
    if plan.add_super:
        statements.append(_super_call(plan))
    if plan.body:
        statements.append(_rebuild(plan))
    return hook_definition(
        plan.hook, plan.self_name, plan.device_parameter, statements, plan.annotate, blank
    )


def hook_definition(
    name: str,
    self_name: str,
    device: str,
    statements: Sequence[cst.BaseStatement],
    annotate: bool,
    blank: int,
) -> cst.FunctionDef:
    """`def name(self, device=None) -> None:` (the parameter where the stack passes the
    hook the buffers' device, the annotation in the class's style), led by `blank` lines."""
    params = [cst.Param(cst.Name(self_name))]
    if device:
        params.append(
            cst.Param(
                cst.Name(device),
                default=cst.Name("None"),
                equal=cst.AssignEqual(cst.SimpleWhitespace(""), cst.SimpleWhitespace("")),
            )
        )
    return cst.FunctionDef(
        name=cst.Name(name),
        params=cst.Parameters(params=params),
        body=cst.IndentedBlock(body=list(statements) or [cst.SimpleStatementLine([cst.Pass()])]),
        returns=cst.Annotation(cst.Name("None")) if annotate else None,
        leading_lines=[cst.EmptyLine(indent=False)] * blank,
    )


def _extend(hook: cst.FunctionDef, plan: Plan) -> cst.FunctionDef:
    """The hook with the super() call first (after a docstring) and the rebuild last, or
    first when the hook may return early."""
    suite = indented(hook.body)
    statements = list(suite.body)
    start = 1 if statements and is_docstring(statements[0]) else 0
    if plan.add_super:
        statements.insert(start, _super_call(plan))
        start += 1
    if plan.body:
        rebuild = _rebuild(plan)
        if all(is_pass(s) for s in statements[start:]):
            statements[start:] = [rebuild]
        elif returns_early(hook):
            statements.insert(start, rebuild)
        else:
            statements.append(rebuild)
    return hook.with_changes(body=suite.with_changes(body=statements))


def is_pass(statement: cst.BaseStatement) -> bool:
    """A body line that does nothing (`pass`, `...`): an added statement replaces it."""
    return (
        isinstance(statement, cst.SimpleStatementLine)
        and not statement.leading_lines
        and statement.trailing_whitespace.comment is None
        and all(
            isinstance(s, cst.Pass)
            or (isinstance(s, cst.Expr) and isinstance(s.value, cst.Ellipsis))
            for s in statement.body
        )
    )


class _FindReturn(cst.CSTVisitor):
    found = False

    def visit_Return(self, node: cst.Return) -> None:
        self.found = True

    def visit_FunctionDef(self, node: cst.FunctionDef) -> bool:
        return False

    def visit_Lambda(self, node: cst.Lambda) -> bool:
        return False


def returns_early(hook: cst.FunctionDef) -> bool:
    """Whether the hook has a `return`: a statement added last might never run."""
    finder = _FindReturn()
    hook.body.visit(finder)
    return finder.found
