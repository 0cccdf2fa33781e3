"""The fix for a layer a root-only stack's hook never reaches (torchtitan 0.1.x,
bufferlint.cascade): the layer's own `init_weights` is right, so the call belongs in the
holder's: `self.bias.init_weights(buffer_device=buffer_device)`, or for a container the loop
torchtitan writes (`for layer in self.layers.values(): layer.init_weights(...)`). A holder
without the hook gets one, calling `super()`'s when a parent has one. `buffer_device` is
forwarded when the holder's hook receives it and the layer's takes it."""

from __future__ import annotations

from dataclasses import dataclass

import libcst as cst

from bufferlint import analysis, cascade
from bufferlint.conventions import Convention
from bufferlint.facts import MethodFacts
from bufferlint.findings import Finding
from bufferlint.fix.edit import hook_definition, indented, is_pass, returns_early, with_method
from bufferlint.fix.factories import torch_name
from bufferlint.fix.plan import Plan
from bufferlint.fix.replay import Unavailable
from bufferlint.fix.workspace import Workspace
from bufferlint.model import Project
from bufferlint.syntax import dotted

LISTS = ("ModuleList", "Sequential")
DICTS = ("ModuleDict",)


@dataclass
class CallPlan(Plan):
    """A fix that makes another class's hook (the holder's) call the layer's."""

    call: list[cst.BaseStatement] | None = None
    device: str = ""  # the new hook's device parameter, forwarded to super()'s

    @property
    def message(self) -> str:
        holder = self.class_node.name.value
        code = cst.Module(body=self.call or []).code.strip().replace("\n", " ")
        code = " ".join(code.split())
        if self.create:
            text = f"Add `{self.hook}` to `{holder}`"
            text += ", calling `super()`'s," if self.add_super else ""
            return text + f" that calls `{code}`"
        return f"In `{holder}.{self.hook}`, call `{code}`"

    def rewrite(self, node: cst.ClassDef) -> cst.ClassDef:
        call = self.call
        assert call is not None
        return with_method(node, self.hook, lambda hook: _with_call(hook, call), self._new_hook)

    def _new_hook(self, blank: int) -> cst.FunctionDef:
        assert self.call is not None
        statements = list(self.call)
        if self.add_super:
            forward = f"{self.device}={self.device}" if self.device else ""
            statements.insert(0, cst.parse_statement(f"super().{self.hook}({forward})\n"))
        return hook_definition(
            self.hook, self.self_name, self.device, statements, self.annotate, blank
        )


def plan(finding: Finding, workspace: Workspace, convention: Convention) -> CallPlan:
    """The call that lets the root's hook reach the layer; raises Unavailable with the
    reason there is none."""
    layer = f"{finding.module}.{finding.class_name}"
    project = workspace.project
    hook = convention.hooks[0]
    report = analysis.account(project, layer, convention)
    why: list[str] = []
    for held in report.unreached:
        name = held.holder.rpartition(".")[2]
        if held.calls:
            why.append(f"`{name}.{hook}` calls it, but nothing reaches `{name}.{hook}` itself")
        elif project.classes[held.holder][1].path != project.classes[layer][1].path:
            why.append(f"`{name}` is in another file: add the call to its `{hook}` there")
        elif not cascade.reaches(project, held.holder, convention):
            why.append(f"nothing reaches `{name}.{hook}` either")
        else:
            try:
                return _call_in(workspace, convention, finding, layer, held)
            except Unavailable as exc:
                why.append(str(exc))
    raise Unavailable("; ".join(why) or "bufferlint cannot tell which hook should call it")


def _call_in(
    workspace: Workspace,
    convention: Convention,
    finding: Finding,
    layer: str,
    held: cascade.Holding,
) -> CallPlan:
    project = workspace.project
    hook = convention.hooks[0]
    located = workspace.class_node(held.holder)
    if located is None:
        raise Unavailable(f"bufferlint cannot find `{held.holder}` in the current source")
    index, node = located
    cls = project.classes[held.holder][0]
    own = cls.methods.get(hook)
    if own is not None and own.kind != "method":
        raise Unavailable(f"`{hook}` of `{cls.name}` is not a plain method")
    inherited = project.find_method(held.holder, hook, after=held.holder)
    hook_node = index.method(node, own) if own is not None else None
    self_name = _first_param(hook_node) if hook_node is not None else "self"
    device = convention.hook_device
    receives = own.params if own is not None else (device,) if device else ()
    layer_hook = project.find_method(layer, hook)
    assert layer_hook is not None  # the cascade reports only layers that have the hook
    forward = (
        f"{device}={device}"
        if device and device in receives and device in layer_hook[1].params
        else ""
    )
    _callable_with(workspace, layer_hook, forward, device)
    shape = _holding(project, node, held, self_name)
    target = f"{self_name}.{held.attribute}"
    if shape == "direct":
        code = f"{target}.{hook}({forward})\n"
    else:
        _all_have_hook(project, held, hook)
        items = f"{target}.values()" if shape == "dict" else target
        code = f"for layer in {items}:\n    layer.{hook}({forward})\n"
    return CallPlan(
        finding=finding,
        qualified=layer,
        index=index,
        class_node=node,
        hook=hook,
        self_name=self_name,
        create=own is None,
        add_super=own is None and inherited is not None,
        guard=None,
        body=[],
        rebuilt=[b.name for b in analysis.account(project, layer, convention).missing],
        torch=torch_name(index),
        imports={},
        annotate=any(
            isinstance(s, cst.FunctionDef) and s.returns is not None for s in node.body.body
        ),
        call=[cst.parse_statement(code)],
        device=device if own is None else "",
    )


def _callable_with(
    workspace: Workspace, found: tuple[str, MethodFacts], forward: str, device: str
) -> None:
    """The layer's hook must take the call as written: every other parameter has a default."""
    owner, method = found
    located = workspace.method_node(owner, method)
    if located is None:
        raise Unavailable(f"bufferlint cannot find `{owner}.{method.name}` in the current source")
    params = located[1].params
    given = {device} if forward else set()
    required = [
        p.name.value
        for p in [*params.posonly_params, *params.params][1:] + list(params.kwonly_params)
        if p.default is None and p.name.value not in given
    ]
    if required:
        short = owner.rpartition(".")[2]
        raise Unavailable(
            f"`{short}.{method.name}` needs {', '.join(f'`{n}`' for n in required)}, which "
            "bufferlint cannot supply: add the call by hand"
        )


def _holding(project: Project, node: cst.ClassDef, held: cascade.Holding, self_name: str) -> str:
    """How the holder keeps the layer in `self.<attribute>`: "direct", "list" or "dict"."""
    scan = _Holds(held.attribute)
    node.visit(scan)
    if scan.shapes == {"direct"}:
        return "direct"
    if scan.shapes and scan.shapes <= {"list", "item"}:
        return "list"
    if scan.shapes and scan.shapes <= {"dict", "item"}:
        return "dict"
    holder = held.holder.rpartition(".")[2]
    raise Unavailable(
        f"bufferlint cannot tell how `{holder}` holds `self.{held.attribute}` "
        "(one module, a list or a dict): add the call to its hook by hand"
    )


def _all_have_hook(project: Project, held: cascade.Holding, hook: str) -> None:
    """A loop calls the hook on every item: each class put there must define it."""
    for owner, _, attribute, written in cascade.children(project, held.holder):
        if attribute != held.attribute or written.rpartition(".")[2] in LISTS + DICTS:
            continue
        named = cascade.class_named(project, written, owner)
        if not project.has_class(named) or project.find_method(named, hook) is None:
            short = written.rpartition(".")[2]
            raise Unavailable(
                f"`self.{held.attribute}` also holds `{short}`, which has no `{hook}`: "
                "a loop calling it on every item would fail"
            )


class _Holds(cst.CSTVisitor):
    """What the class's code puts into `self.<attribute>`."""

    def __init__(self, attribute: str) -> None:
        self.attribute = attribute
        self.shapes: set[str] = set()

    def _is_target(self, node: cst.BaseExpression) -> bool:
        return isinstance(node, cst.Attribute) and node.attr.value == self.attribute

    def visit_Assign(self, node: cst.Assign) -> None:
        for target in node.targets:
            if self._is_target(target.target):
                self.shapes.add(_shape(node.value))
            elif isinstance(target.target, cst.Subscript) and self._is_target(target.target.value):
                self.shapes.add("item")

    def visit_Call(self, node: cst.Call) -> None:
        func = node.func
        if isinstance(func, cst.Attribute) and self._is_target(func.value):
            if func.attr.value in ("append", "extend", "insert"):
                self.shapes.add("list")
            elif func.attr.value == "update":
                self.shapes.add("dict")


def _shape(value: cst.BaseExpression) -> str:
    if isinstance(value, cst.Call):
        name = (dotted(value.func) or "").rpartition(".")[2]
        if name in LISTS:
            return "list"
        if name in DICTS:
            return "dict"
        return "direct"
    return "unknown"


def _with_call(hook: cst.FunctionDef, call: list[cst.BaseStatement]) -> cst.FunctionDef:
    """The hook with the call last, or first when the hook may return early."""
    suite = indented(hook.body)
    statements = list(suite.body)
    if statements and all(is_pass(s) for s in statements):
        statements = call
    elif returns_early(hook):
        statements = [*call, *statements]
    else:
        statements = [*statements, *call]
    return hook.with_changes(body=suite.with_changes(body=statements))


def _first_param(node: cst.FunctionDef) -> str:
    params = [*node.params.posonly_params, *node.params.params]
    return params[0].name.value if params else "self"
