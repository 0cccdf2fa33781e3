"""Fixes that rewrite one statement where it stands, rather than add a rebuild to the hook:
a hook's rebuild on the default device becomes an in-place copy (with the buffer's device
passed to a helper that takes one), and a tensor kept in a plain attribute becomes a
non-persistent buffer, registered as the file registers its others.
"""

from __future__ import annotations

import libcst as cst

from bufferlint import analysis, beyond
from bufferlint.conventions import Convention
from bufferlint.findings import Finding
from bufferlint.fix.device import PassDevice
from bufferlint.fix.factories import torch_name
from bufferlint.fix.index import SourceIndex, class_methods
from bufferlint.fix.plan import Plan, names
from bufferlint.fix.replay import Unavailable, reads, self_attribute
from bufferlint.fix.workspace import Workspace
from bufferlint.syntax import argument, dotted

Located = tuple[SourceIndex, cst.ClassDef, str]


def device_plan(finding: Finding, workspace: Workspace, convention: Convention) -> Plan:
    """In-place copies for the hook's rebuilds on the default device; raises Unavailable."""
    qualified, (index, class_node, self_name) = _located(finding, workspace)
    project = workspace.project
    report = analysis.account(project, qualified, convention)
    wrong = beyond.account(project, qualified, convention, report).wrong_device
    if not wrong:
        raise Unavailable("the hook's rebuilds no longer leave the module's device")
    alias = torch_name(index) or "torch"
    swaps: list[tuple[cst.CSTNode, cst.CSTNode]] = []
    done: set[int] = set()
    for rebuild in wrong:
        name = rebuild.built.name
        line, small = _statement(index, rebuild.line, rebuild.column, rebuild.kind, name)
        if id(line) in done:
            continue  # `self.cos, self.sin = ...` rebuilds both
        done.add(id(line))
        _in_hook(index, line, convention, name)
        value = _value(small, rebuild.kind)
        items = [cst.WithItem(_call(alias, "no_grad"))]
        if rebuild.helper:
            device = PassDevice(workspace, qualified, self_name, name, rebuild.parameter)
            value = value.visit(device)
        else:  # made by factories: made on the buffer's device, not copied across
            on = cst.Attribute(value=self_attribute(self_name, name), attr=cst.Name("device"))
            items.append(cst.WithItem(_call(alias, "device", on)))
        copies = _copies(small, value, self_name, set(report.built), rebuild.kind)
        block = cst.With(
            items=_comma_separated(items),
            body=cst.IndentedBlock(body=copies),
            leading_lines=line.leading_lines,
        )
        swaps.append((line, block))
    rebuilt = [w.built.name for w in wrong]
    what = f"Rebuild {names(rebuilt)} in place in `{_method_of(index, swaps[0][0])}`"
    return _plan(finding, qualified, index, class_node, self_name, swaps, rebuilt, what, [])


def register_plan(finding: Finding, workspace: Workspace, convention: Convention) -> Plan:
    """Non-persistent buffers for the attributes that hold tensors; raises Unavailable."""
    qualified, (index, class_node, self_name) = _located(finding, workspace)
    project = workspace.project
    report = analysis.account(project, qualified, convention)
    attributes = beyond.account(project, qualified, convention, report).attributes
    if not attributes:
        raise Unavailable("no attribute holds a tensor any longer")
    buffer_class = _buffer_spelling(index, class_node)
    swaps: list[tuple[cst.CSTNode, cst.CSTNode]] = []
    reasons = []
    for attribute in attributes:
        site = attribute.site
        line, small = _statement(index, site.line, attribute.column, "assign", site.name)
        if not isinstance(small, (cst.Assign, cst.AnnAssign)) or small.value is None:
            raise Unavailable(f"bufferlint cannot read how `{site.name}` is assigned")
        targets = small.targets if isinstance(small, cst.Assign) else [small]
        if len(targets) != 1 or not isinstance(targets[0].target, cst.Attribute):
            raise Unavailable(f"`{site.name}` is assigned together with other names")
        value = small.value
        if isinstance(value, (cst.Tuple, cst.List, cst.Dict, cst.Set)):
            raise Unavailable(f"`{site.name}` holds a collection: register each tensor in it")
        if attribute.aliases:
            value = cst.Call(func=cst.Attribute(value=value, attr=cst.Name("clone")))
            reasons.append(
                f"makes `{site.name}` a copy of buffer `{attribute.aliases[0]}`, no longer the "
                "same tensor: an update to one no longer shows in the other"
            )
        if attribute.reassigned:
            reasons.append(
                f"registers `{site.name}`, which other code assigns (line "
                f"{attribute.reassigned[0]}): a buffer only accepts a tensor or None"
            )
        registration = _registration(self_name, site.name, value, buffer_class)
        swaps.append((line, line.with_changes(body=[registration])))
    rebuilt = [a.site.name for a in attributes]
    kind = "buffers" if len(rebuilt) > 1 else "buffer"
    what = f"Register {names(rebuilt)} as non-persistent {kind}"
    return _plan(finding, qualified, index, class_node, self_name, swaps, rebuilt, what, reasons)


def _located(finding: Finding, workspace: Workspace) -> tuple[str, Located]:
    qualified = f"{finding.module}.{finding.class_name}"
    located = workspace.class_node(qualified)
    if located is None or qualified not in workspace.project.classes:
        raise Unavailable("bufferlint cannot find the class in the current source")
    index, class_node = located
    init = next((m for m in class_methods(class_node) if m.name.value == "__init__"), None)
    params = init.params.params if init is not None else ()
    return qualified, (index, class_node, params[0].name.value if params else "self")


def _statement(
    index: SourceIndex, line: int, column: int, kind: str, name: str
) -> tuple[cst.SimpleStatementLine, cst.BaseSmallStatement]:
    """The statement line an event was recorded for, which must hold that statement alone."""
    node = index.event_node(line, column, kind, name) if column else None
    if node is None:
        node = next(
            (n for n in _line_nodes(index, line) if isinstance(n, (cst.Assign, cst.AnnAssign))),
            None,
        )
    small = index.statement_of(node) if node is not None else None
    parent = index.parent(small) if small is not None else None
    if small is None or not isinstance(parent, cst.SimpleStatementLine):
        raise Unavailable(f"bufferlint cannot find the statement at line {line}")
    if len(parent.body) != 1:
        raise Unavailable(f"line {line} holds more than one statement")
    return parent, small


def _line_nodes(index: SourceIndex, line: int) -> list[cst.CSTNode]:
    """The nodes the facts' walk located on a line (an assignment's column is its target's)."""
    index.chunks.at_line(line)
    located = index.chunks.located.items()
    return [n for (row, _), found in located if row == line for n in found]


def _in_hook(index: SourceIndex, line: cst.CSTNode, convention: Convention, name: str) -> None:
    method = _method_of(index, line)
    if method not in convention.hooks:
        raise Unavailable(
            f"`{name}` is rebuilt in `{method}`, which construction may run too: rebuild it "
            "in the hook itself"
        )


def _method_of(index: SourceIndex, node: cst.CSTNode) -> str:
    function = next((a for a in index.ancestors(node) if isinstance(a, cst.FunctionDef)), None)
    return function.name.value if function is not None else ""


def _value(small: cst.BaseSmallStatement, kind: str) -> cst.BaseExpression:
    if kind == "register" and isinstance(small, cst.Expr) and isinstance(small.value, cst.Call):
        found = argument(small.value, 1, "tensor")
        if found is not None:
            return found
    if isinstance(small, (cst.Assign, cst.AnnAssign)) and small.value is not None:
        return small.value
    raise Unavailable("bufferlint cannot read the rebuilt value")


def _copies(
    small: cst.BaseSmallStatement,
    value: cst.BaseExpression,
    self_name: str,
    buffers: set[str],
    kind: str,
) -> list[cst.BaseStatement]:
    """`self.b.copy_(value)`, or for `self.a, self.b = value`: `a, b = value` and a copy each."""
    if kind == "register" or not isinstance(small, cst.Assign):
        call = _small_call(small)
        name = _registered(call) if kind == "register" else _target_name(small, self_name)
        return [_line(_copy(self_name, name, value))]
    target = small.targets[0].target if len(small.targets) == 1 else None
    if target is not None and not isinstance(target, (cst.Tuple, cst.List)):
        return [_line(_copy(self_name, _target_name(small, self_name), value))]
    if target is None:
        raise Unavailable("the rebuild assigns several targets at once")
    elements = [e.value for e in target.elements]
    attrs = [_self_attr(e, self_name) for e in elements]
    if any(a is None or a not in buffers for a in attrs) or any(
        isinstance(e, cst.StarredElement) for e in target.elements
    ):
        raise Unavailable("the rebuild unpacks into names that are not buffers")
    taken = reads(small)
    fresh = []
    for attr in attrs:
        assert attr is not None
        local = attr
        while local in taken:
            local += "_"
        taken.add(local)
        fresh.append(local)
    unpack = cst.Assign(
        targets=[
            cst.AssignTarget(
                target.with_changes(
                    elements=[
                        e.with_changes(value=cst.Name(n))
                        for e, n in zip(target.elements, fresh, strict=True)
                    ]
                )
            )
        ],
        value=value,
    )
    copies = [_copy(self_name, a or "", cst.Name(n)) for a, n in zip(attrs, fresh, strict=True)]
    return [_line(unpack), *(_line(c) for c in copies)]


def _small_call(small: cst.BaseSmallStatement) -> cst.Call:
    if isinstance(small, cst.Expr) and isinstance(small.value, cst.Call):
        return small.value
    raise Unavailable("bufferlint cannot read the rebuild")


def _registered(call: cst.Call) -> str:
    name = argument(call, 0, "name")
    if isinstance(name, cst.SimpleString) and isinstance(name.evaluated_value, str):
        return name.evaluated_value
    raise Unavailable("the rebuild registers a buffer by a computed name")


def _target_name(small: cst.BaseSmallStatement, self_name: str) -> str:
    targets = small.targets if isinstance(small, cst.Assign) else [small]  # type: ignore[list-item]
    found = _self_attr(targets[0].target, self_name) if len(targets) == 1 else None  # type: ignore[union-attr]
    if found is None:
        raise Unavailable("bufferlint cannot read what the rebuild assigns")
    return found


def _self_attr(node: cst.BaseExpression, self_name: str) -> str | None:
    if isinstance(node, cst.Attribute) and isinstance(node.value, cst.Name):
        if node.value.value == self_name:
            return node.attr.value
    return None


def _copy(self_name: str, name: str, value: cst.BaseExpression) -> cst.Expr:
    func = cst.Attribute(value=self_attribute(self_name, name), attr=cst.Name("copy_"))
    return cst.Expr(cst.Call(func=func, args=[cst.Arg(value)]))


def _line(small: cst.BaseSmallStatement) -> cst.SimpleStatementLine:
    return cst.SimpleStatementLine(body=[small])


def _call(module: str, name: str, *args: cst.BaseExpression) -> cst.Call:
    func = cst.Attribute(value=cst.Name(module), attr=cst.Name(name))
    return cst.Call(func=func, args=[cst.Arg(a) for a in args])


def _comma_separated(items: list[cst.WithItem]) -> list[cst.WithItem]:
    comma = cst.Comma(whitespace_after=cst.SimpleWhitespace(" "))
    return [i.with_changes(comma=comma) for i in items[:-1]] + items[-1:]


def _buffer_spelling(index: SourceIndex, class_node: cst.ClassDef) -> cst.BaseExpression | None:
    """How the file writes `nn.Buffer`, when the class's module registers buffers that way."""
    del class_node  # the whole file's style counts, not one class's
    for cls in index.facts.classes:
        for method in cls.methods.values():
            for event in method.events:
                if event.kind != "buffer":
                    continue
                node = index.event_node(event.line, event.column, event.kind, event.name)
                if isinstance(node, cst.Assign) and isinstance(node.value, cst.Call):
                    if dotted(node.value.func) is not None:
                        return node.value.func
    return None


def _registration(
    self_name: str, name: str, value: cst.BaseExpression, buffer_class: cst.BaseExpression | None
) -> cst.BaseSmallStatement:
    equal = cst.AssignEqual(
        whitespace_before=cst.SimpleWhitespace(""), whitespace_after=cst.SimpleWhitespace("")
    )
    persistent = cst.Arg(keyword=cst.Name("persistent"), value=cst.Name("False"), equal=equal)
    if buffer_class is not None:
        call = cst.Call(func=buffer_class, args=[cst.Arg(value), persistent])
        return cst.Assign(targets=[cst.AssignTarget(self_attribute(self_name, name))], value=call)
    register = cst.Attribute(value=cst.Name(self_name), attr=cst.Name("register_buffer"))
    args = [cst.Arg(cst.SimpleString(f'"{name}"')), cst.Arg(value), persistent]
    return cst.Expr(cst.Call(func=register, args=args))


def _plan(
    finding: Finding,
    qualified: str,
    index: SourceIndex,
    class_node: cst.ClassDef,
    self_name: str,
    swaps: list[tuple[cst.CSTNode, cst.CSTNode]],
    rebuilt: list[str],
    what: str,
    reasons: list[str],
) -> Plan:
    return Plan(
        finding=finding,
        qualified=qualified,
        index=index,
        class_node=class_node,
        hook="",
        self_name=self_name,
        create=False,
        add_super=False,
        guard=None,
        body=[],
        rebuilt=rebuilt,
        torch=torch_name(index),
        imports={},
        annotate=False,
        reasons=list(dict.fromkeys(reasons)),
        swaps=swaps,
        what=what,
    )
