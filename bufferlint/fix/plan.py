"""How a class's hook can rebuild its buffers, derived from the construction code.

For each buffer the hook misses, the steps that built it during construction (see
`trace.buildings`) are turned into statements that run inside the hook, in construction
order, all under `torch.no_grad()`:

- constant factories become in-place fills of the buffer itself, so no argument is
  needed: `torch.zeros(n)` -> `self.b.zero_()`, `torch.full((n,), v)` -> `self.b.fill_(v)`,
  `torch.tril(torch.ones(n, n))` -> `self.b.copy_(torch.tril(torch.ones_like(self.b)))`;
- a computed value is copied in place, `self.b.copy_(<expression>)`, after replaying the
  statements that set the locals it reads, with constructor parameters read back from the
  attributes `__init__` stored them in unchanged; a `self.helper()` that takes a `device`
  parameter is passed `device=self.b.device`;
- an in-place fill during construction (`self.b.fill_(v)`, `nn.init.ones_(self.b)`,
  `self.b[:] = v`) is replayed as it is;
- a buffer registered inside a helper is rebuilt by calling the helper again and copying
  its result back into the buffer's existing tensor.

`copy_`, `fill_` and replaying into the old tensor keep the buffer's device, dtype and
identity, whatever materialization did to the module.
"""

from __future__ import annotations

import builtins
import itertools
import os
from collections.abc import Sequence
from dataclasses import dataclass, field

import libcst as cst

from bufferlint import analysis, guards
from bufferlint.conventions import Convention
from bufferlint.findings import Finding
from bufferlint.fix import trace
from bufferlint.fix.index import SourceIndex, class_methods
from bufferlint.fix.purity import SideEffects, Where
from bufferlint.fix.replay import (
    MethodScope,
    Unavailable,
    binds,
    definitions,
    if_chain,
    reads,
    self_attribute,
    substitute,
)
from bufferlint.fix.workspace import Workspace
from bufferlint.model import LIGHTNING_MODULES, NEUTRAL_BASES, Project, torch_class
from bufferlint.syntax import argument, qualify

# Methods that keep every element of a constant tensor equal: dtype, device and shape.
_VALUE_PRESERVING = frozenset(
    """float double half bfloat16 bool long int short byte to contiguous clone detach view
    reshape unsqueeze squeeze expand expand_as repeat flatten t transpose permute
    """.split()
)
# Chain element kept around a replayed statement: (id of the `if`, polarity, its test).
ChainItem = tuple[int, bool, cst.BaseExpression]


@dataclass
class Plan:
    """One finding's fix: what to add to which hook."""

    finding: Finding
    qualified: str
    index: SourceIndex
    class_node: cst.ClassDef
    hook: str
    self_name: str
    create: bool
    add_super: bool
    guard: str | None  # rebuild only once this buffer exists: construction runs the hook early
    body: list[cst.BaseStatement]
    rebuilt: list[str]
    torch: str  # the name torch is imported as; "" when `import torch` must be added
    imports: dict[str, str]  # other imports the rebuild needs there: local name -> qualified
    annotate: bool  # the class annotates its methods: give the new hook `-> None`
    reasons: list[str] = field(default_factory=list)  # why the fix is unsafe

    @property
    def applicability(self) -> str:
        return "unsafe" if self.reasons else "safe"

    @property
    def message(self) -> str:
        names = _names(self.rebuilt) if self.rebuilt else ""
        call = f"call `super().{self.hook}()`"
        if self.create:
            text = f"Add `{self.hook}`"
            parts = [f"calls `super().{self.hook}()`"] if self.add_super else []
            parts += [f"rebuilds {names}"] if self.rebuilt else []
            text += " that " + " and ".join(parts)
        elif self.add_super:
            text = f"In `{self.hook}`, {call}" + (f" and rebuild {names}" if self.rebuilt else "")
        else:
            text = f"Rebuild {names} in `{self.hook}`"
        if self.reasons:
            text += f" (unsafe: it {'; it '.join(self.reasons)})"
        return text


def _names(names: Sequence[str]) -> str:
    quoted = [f"`{n}`" for n in names]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " and " + quoted[-1]


def torch_name(index: SourceIndex) -> str:
    """What the file calls torch: `import torch as th` gives "th"; "" when not imported."""
    imports = index.facts.imports
    if imports.get("torch") == "torch":
        return "torch"
    return next((local for local, target in imports.items() if target == "torch"), "")


def plan(finding: Finding, workspace: Workspace, convention: Convention) -> Plan:
    """The fix for one BL001/BL002 finding; raises Unavailable with the reason there is none."""
    qualified = f"{finding.module}.{finding.class_name}"
    project = workspace.project
    located = workspace.class_node(qualified)
    if located is None or qualified not in project.classes:
        raise Unavailable("bufferlint cannot find the class in the current source")
    index, class_node = located
    cls = project.classes[qualified][0]
    hooks = convention.hooks
    own = [h for h in hooks if h in cls.methods]
    hook = (own or [h for h in hooks if project.find_method(qualified, h)] or list(hooks))[0]
    hook_node = index.method(class_node, cls.methods[hook]) if own else None
    if own and (
        hook_node is None
        or cls.methods[hook].kind != "method"
        or index.parent(index.parent(hook_node)) is not class_node
    ):
        raise Unavailable(f"`{hook}` is not a plain method defined in the class body")
    init = index.method(class_node, cls.methods["__init__"]) if "__init__" in cls.methods else None
    self_name = _self_name(hook_node or init)

    report = analysis.account(project, qualified, convention)
    targets = [b.name for b in report.missing]
    steps = trace.construction(project, qualified)
    built = trace.buildings(steps)
    all_buffers = frozenset(built)
    effects = SideEffects(workspace, qualified)
    reasons: list[str] = []
    add_super = False
    inherited = project.find_method(qualified, hook, after=qualified)
    if own:
        events = cls.methods[hook].events
        calls_super = any(e.kind in ("super", "explicit") and e.name == hook for e in events)
        if not calls_super and inherited is not None:
            by_parent = analysis.account(project, inherited[0], convention).rebuilt
            if by_parent & set(targets):
                add_super = True
                targets = [n for n in targets if n not in by_parent]
                reasons += [
                    f"calls `super().{hook}()`, which {r}"
                    for r in effects.of_method(hook, all_buffers, after=qualified)[:1]
                ]
    else:
        external = _external_hook(project, qualified, hook, convention)
        add_super = inherited is not None or external
        unknown = _unknown_bases(project, qualified)
        if not add_super and unknown:
            reasons.append(
                f"adds `{hook}` to a class whose base `{unknown[0]}` bufferlint cannot see: "
                f"if that base defines `{hook}`, the new one must call it"
            )

    first_built = {}
    for step in steps:
        if step.event.kind in ("register", "buffer"):
            first_built.setdefault(step.event.name, step.index)
    targets.sort(key=lambda name: first_built.get(name, 0))
    builder = _Builder(workspace, qualified, index, self_name, effects, steps, all_buffers)
    for name in targets:
        building = built.get(name)
        if building is None or not building.steps:
            if building is not None and building.skipped:
                line = building.skipped[0].event.line
                raise Unavailable(
                    f"`{name}` is built at line {line} under a condition on a tensor's state"
                )
            raise Unavailable(f"bufferlint cannot tell how `{name}` is built")
        for step in building.steps:
            builder.add(step, name)
    reasons += builder.reasons

    early = trace.hook_calls(project, qualified, steps, hook, convention)
    guard = None
    if early and targets:
        last = max(targets, key=lambda name: first_built.get(name, 0))
        if min(early) < first_built.get(last, 0):
            guard = last
    return Plan(
        finding=finding,
        qualified=qualified,
        index=index,
        class_node=class_node,
        hook=hook,
        self_name=self_name,
        create=not own,
        add_super=add_super,
        guard=guard,
        body=builder.statements(),
        rebuilt=targets,
        torch=torch_name(index),
        imports=builder.imports,
        annotate=_annotates(class_node),
        reasons=list(dict.fromkeys(reasons)),
    )


def _self_name(node: cst.FunctionDef | None) -> str:
    if node is not None:
        params = [*node.params.posonly_params, *node.params.params]
        if params:
            return params[0].name.value
    return "self"


def _annotates(class_node: cst.ClassDef) -> bool:
    return any(method.returns is not None for method in class_methods(class_node))


def _external_hook(project: Project, qualified: str, hook: str, convention: Convention) -> bool:
    """Whether a torch layer among the bases defines the hook."""
    return any(
        convention.layer_defines_hook(torch_class(name) or "", hook)
        for name in project.mro(qualified)
    )


def _unknown_bases(project: Project, qualified: str) -> list[str]:
    return [
        name
        for name in project.mro(qualified)[1:]
        if name not in project.classes
        and torch_class(name) is None
        and name not in LIGHTNING_MODULES
        and name not in NEUTRAL_BASES
    ]


class _Builder:
    """Collects the hook's statements for the buffers of one class, in construction order."""

    def __init__(
        self,
        workspace: Workspace,
        qualified: str,
        index: SourceIndex,
        self_name: str,
        effects: SideEffects,
        steps: list[trace.Step],
        buffers: frozenset[str],
    ) -> None:
        self.workspace = workspace
        self.qualified = qualified
        self.index = index  # the file the hook is in
        self.self_name = self_name
        self.effects = effects
        self.steps = steps
        self.values = trace.guard_values(steps)
        self.buffers = buffers
        self.items: list[tuple[tuple[ChainItem, ...], cst.BaseSmallStatement]] = []
        self.done: set[int] = set()  # ids of the statements already replayed
        self.recalled: set[int] = set()  # indices of the helper calls already replayed
        self.reasons: list[str] = []
        self.imports: dict[str, str] = {}  # names the hook's file must import: local -> qualified

    # -- entry -------------------------------------------------------------------------
    def add(self, step: trace.Step, name: str) -> None:
        if step.replayable:
            self._inline(step, name)
            return
        via = next((v for v in reversed(step.via) if v.replayable), None)
        if via is None:
            raise Unavailable(f"`{name}` is built by a helper that construction reaches oddly")
        self._recall(via, name)

    def statements(self) -> list[cst.BaseStatement]:
        out: list[cst.BaseStatement] = []
        for _, group in itertools.groupby(self.items, key=lambda item: _chain_key(item[0])):
            items = list(group)
            lines: list[cst.BaseStatement] = [
                cst.SimpleStatementLine(body=[small]) for _, small in items
            ]
            for _, polarity, test in reversed(items[0][0]):
                condition = test if polarity else _negate(test)
                lines = [cst.If(test=condition, body=cst.IndentedBlock(body=lines))]
            out.extend(lines)
        return out

    # -- the method a step runs in -------------------------------------------------------
    def _scope(self, step: trace.Step) -> MethodScope:
        located = self.workspace.method_node(step.owner, step.method)
        if located is None:
            raise Unavailable(f"bufferlint cannot read `{step.method.name}` of `{step.owner}`")
        index, node = located
        key = ("scope", self.qualified, id(node))
        if key not in self.workspace.memo:
            project = self.workspace.project
            self.workspace.memo[key] = MethodScope.of(
                index,
                node,
                lambda attr: (
                    project.find_method(self.qualified, attr) is None
                    and project.find_method(self.qualified, attr, setter=True) is None
                ),
            )
        scope = self.workspace.memo[key]
        assert isinstance(scope, MethodScope)
        return scope

    def _locate(
        self, step: trace.Step, scope: MethodScope
    ) -> tuple[cst.CSTNode, cst.BaseSmallStatement]:
        event = step.event
        node = scope.index.event_node(event.line, event.column, event.kind, event.name)
        small = scope.index.statement_of(node) if node is not None else None
        if node is None or small is None:
            raise Unavailable(f"bufferlint cannot find the code at line {event.line}")
        return node, small

    def _chain(
        self, step: trace.Step, scope: MethodScope, small: cst.BaseSmallStatement
    ) -> dict[int, bool]:
        """Which `if`s around `small` the hook must keep (True) or drop (False)."""
        values = self.values[step.index]
        callers = len(step.caller_guards)
        if trace.combine(values[:callers]) != guards.TRUE:
            raise Unavailable(
                f"line {step.event.line} runs only under a condition in the code that calls "
                f"`{step.method.name}`"
            )
        chain = if_chain(scope.index, small, scope.node)
        path = step.event.guards
        if len(chain) != len(path):
            raise Unavailable(
                f"bufferlint cannot follow the conditions around line {step.event.line}"
            )
        keep: dict[int, bool] = {}
        for (node, _), guard, value in zip(chain, path, values[callers:], strict=True):
            if value == guards.TRUE:
                keep[id(node)] = False
            elif value == guards.CONFIG and not guards.reads_buffers(guard.condition, self.buffers):
                keep[id(node)] = True
            else:
                raise Unavailable(f"line {step.event.line} runs only if `{guard.code}`")
        return keep

    # -- inline replay -----------------------------------------------------------------
    def _inline(self, step: trace.Step, name: str) -> None:
        scope = self._scope(step)
        node, small = self._locate(step, scope)
        if id(small) in self.done:
            return
        self.done.add(id(small))
        keep = self._chain(step, scope, small)
        kind = step.event.kind
        target = self_attribute(self.self_name, name)
        rerun: list[cst.CSTNode] = []  # original code the hook re-runs, judged for effects
        if kind == "fill":
            generated = [small]
            rerun.append(small)
        elif kind == "assign" and isinstance(small, cst.Assign) and _is_tuple_target(small):
            generated = self._unpack(small, scope)
            rerun.append(small.value)
        else:
            value = _built_value(kind, node, small)
            if value is None:
                raise Unavailable(
                    f"bufferlint cannot read the value built at line {step.event.line}"
                )
            constant = self._constant(value, scope, small, target)
            if constant is None:
                rerun.append(value)
                copy = cst.Call(
                    func=cst.Attribute(value=target, attr=cst.Name("copy_")),
                    args=[cst.Arg(value=value)],
                )
                generated = [cst.Expr(copy)]
            else:
                generated = [cst.Expr(constant)]
                rerun.append(constant)
        needed: set[str] = set()
        for statement in generated:
            needed |= reads(statement)
        needed |= self._test_reads(scope, small, keep)
        self._emit(step, scope, small, keep, generated, needed, rerun, frozenset({name}), name)

    def _unpack(self, small: cst.Assign, scope: MethodScope) -> list[cst.BaseSmallStatement]:
        """`self.cos, self.sin = v` -> `cos, sin = v` then in-place copies."""
        taken = reads(small) | scope.locals
        copies: list[cst.BaseSmallStatement] = []

        def local(element: cst.BaseExpression) -> cst.BaseExpression:
            if (
                isinstance(element, cst.Attribute)
                and isinstance(element.value, cst.Name)
                and element.value.value == scope.self_name
            ):
                attr = element.attr.value
                if attr not in self.buffers:
                    return cst.Name("_")
                fresh = _fresh(attr, taken)
                taken.add(fresh)
                copy = cst.Call(
                    func=cst.Attribute(
                        value=self_attribute(self.self_name, attr), attr=cst.Name("copy_")
                    ),
                    args=[cst.Arg(cst.Name(fresh))],
                )
                copies.append(cst.Expr(copy))
                return cst.Name(fresh)
            if isinstance(element, (cst.Tuple, cst.List)):
                return element.with_changes(
                    elements=[e.with_changes(value=local(e.value)) for e in element.elements]
                )
            return element

        targets = [t.with_changes(target=local(t.target)) for t in small.targets]
        return [small.with_changes(targets=targets), *copies]

    # -- calling a helper again ------------------------------------------------------------
    def _recall(self, via: trace.Step, name: str) -> None:
        if via.index in self.recalled:
            return
        self.recalled.add(via.index)
        scope = self._scope(via)
        _, small = self._locate(via, scope)
        keep = self._chain(via, scope, small)
        under = [
            s.event.name
            for s in self.steps
            if via in s.via and s.event.kind in trace.BUILDING and s.event.name in self.buffers
        ]
        names = list(dict.fromkeys(under)) or [name]
        taken = reads(small) | binds(small) | scope.locals
        saved: dict[str, str] = {}
        for buffer in names:
            saved[buffer] = _fresh(buffer, taken)
            taken.add(saved[buffer])
        before = [
            cst.Assign(
                targets=[cst.AssignTarget(cst.Name(saved[b]))],
                value=self_attribute(self.self_name, b),
            )
            for b in names
        ]
        after = [
            cst.Assign(
                targets=[cst.AssignTarget(self_attribute(self.self_name, b))],
                value=cst.Call(
                    func=cst.Attribute(value=cst.Name(saved[b]), attr=cst.Name("copy_")),
                    args=[cst.Arg(self_attribute(self.self_name, b))],
                ),
            )
            for b in names
        ]
        needed = reads(small) | self._test_reads(scope, small, keep)
        generated = [*before, small, *after]
        self._emit(via, scope, small, keep, generated, needed, [small], frozenset(names), None)

    # -- shared ------------------------------------------------------------------------------
    def _test_reads(
        self, scope: MethodScope, small: cst.BaseSmallStatement, keep: dict[int, bool]
    ) -> set[str]:
        out: set[str] = set()
        for node, _ in if_chain(scope.index, small, scope.node):
            if keep.get(id(node)):
                out |= reads(node.test)
        return out

    def _emit(
        self,
        step: trace.Step,
        scope: MethodScope,
        small: cst.BaseSmallStatement,
        keep: dict[int, bool],
        generated: list[cst.BaseSmallStatement],
        needed: set[str],
        rerun: list[cst.CSTNode],
        allowed: frozenset[str],
        device_for: str | None,
    ) -> None:
        """Adds the definitions `generated` needs, then `generated`, renamed for the hook."""
        defs, unresolved = definitions(scope, small, needed)
        mapping = self._mapping(scope, unresolved, [*defs, small])
        where = Where(scope.index, scope.self_name, step.owner, allowed, frozenset(scope.locals))
        tests = [
            node.test for node, _ in if_chain(scope.index, small, scope.node) if keep[id(node)]
        ]
        judged = [
            *(d for d in defs if id(d) not in self.done),
            *rerun,
            *(cst.Expr(t) for t in tests),
        ]
        self.reasons += self.effects.of_statements(
            [n if isinstance(n, cst.BaseSmallStatement) else cst.Expr(n) for n in judged], where
        )
        for definition in defs:
            if id(definition) in self.done:
                continue
            self.done.add(id(definition))
            chain = self._kept_chain(scope, definition, keep, mapping)
            self.items.append((chain, self._rename(definition, mapping, device_for)))
        chain = self._kept_chain(scope, small, keep, mapping)
        for statement in generated:
            self.items.append((chain, self._rename(statement, mapping, None)))

    def _kept_chain(
        self,
        scope: MethodScope,
        small: cst.BaseSmallStatement,
        keep: dict[int, bool],
        mapping: dict[str, cst.BaseExpression],
    ) -> tuple[ChainItem, ...]:
        out = []
        for node, polarity in if_chain(scope.index, small, scope.node):
            if node.test is None or id(node) not in keep:
                raise Unavailable(f"bufferlint cannot follow the conditions in `{scope.name}`")
            if keep[id(node)]:
                test = substitute(node.test, mapping)
                out.append((id(node), polarity, test))
        return tuple(out)

    def _rename(
        self,
        statement: cst.BaseSmallStatement,
        mapping: dict[str, cst.BaseExpression],
        device_for: str | None,
    ) -> cst.BaseSmallStatement:
        renamed = substitute(statement, mapping)
        if device_for is not None:
            renamed = renamed.visit(_PassDevice(self, device_for))
        assert isinstance(renamed, cst.BaseSmallStatement)
        return renamed.with_changes(semicolon=cst.MaybeSentinel.DEFAULT)

    def _mapping(
        self,
        scope: MethodScope,
        unresolved: set[str],
        replayed: list[cst.BaseSmallStatement],
    ) -> dict[str, cst.BaseExpression]:
        """How the hook reads each name the replayed code takes from outside itself."""
        mapping: dict[str, cst.BaseExpression] = {}
        if scope.self_name != self.self_name:
            mapping[scope.self_name] = cst.Name(self.self_name)
        for name in sorted(unresolved - {scope.self_name}):
            reader = next((s for s in replayed if name in reads(s)), replayed[-1])
            line = _LineOf(scope.index, reader)  # for a message: positions cost a codegen
            if name in scope.params:
                if name not in scope.stored:
                    raise Unavailable(
                        f"`{name}` (a parameter of `{scope.name}`, read at line {line}) is not "
                        f"stored unchanged on `self`, so the hook cannot know it"
                    )
                mapping[name] = self_attribute(self.self_name, scope.stored[name])
            elif name in scope.locals:
                raise Unavailable(
                    f"`{name}` (read at line {line}) is not set on every path through "
                    f"`{scope.name}` before it"
                )
            elif scope.index.path != self.index.path and not self._same_global(scope, name):
                raise Unavailable(
                    f"`{name}` (read at line {line} of {os.path.basename(scope.index.path)}) "
                    f"is not defined in {os.path.basename(self.index.path)}"
                )
        return mapping

    def _same_global(self, scope: MethodScope, name: str) -> bool:
        """Whether a global of another file's code means the same in the hook's file, or
        can be made to by importing it there (a package outside the project only)."""
        there = scope.index.facts.imports.get(name)
        if there is None:
            return hasattr(builtins, name) and name not in self.index.module_names()
        here = self.index.facts.imports.get(name)
        if here is not None or name in self.index.module_names():
            return here == there
        if self.workspace.is_project_module(there.split(".")[0]):
            return False
        self.imports[name] = there
        return True

    # -- constant factories ---------------------------------------------------------------
    def _constant(
        self,
        value: cst.BaseExpression,
        scope: MethodScope,
        small: cst.BaseSmallStatement,
        target: cst.BaseExpression,
    ) -> cst.Call | None:
        """An in-place rebuild that needs nothing but the buffer itself, if there is one."""
        found = self._constant_of(value, scope, target)
        if found is not None or not isinstance(value, cst.Name):
            return found
        try:  # `mask = torch.tril(...)` then `register_buffer("mask", mask)`
            defs, _ = definitions(scope, small, {value.value})
        except Unavailable:
            return None
        if len(defs) == 1 and isinstance(defs[0], cst.Assign) and len(defs[0].targets) == 1:
            if binds(defs[0]) == {value.value} and value.value not in reads(defs[0]):
                return self._constant_of(defs[0].value, scope, target)
        return None

    def _constant_of(
        self, value: cst.BaseExpression, scope: MethodScope, target: cst.BaseExpression
    ) -> cst.Call | None:
        imports = scope.index.facts.imports
        unwrapped = value
        while (
            isinstance(unwrapped, cst.Call)
            and isinstance(unwrapped.func, cst.Attribute)
            and unwrapped.func.attr.value in _VALUE_PRESERVING
            and qualify(unwrapped.func, imports) is None
        ):
            unwrapped = unwrapped.func.value
        if not isinstance(unwrapped, cst.Call):
            return None
        function = qualify(unwrapped.func, imports) or ""
        method = unwrapped.func.attr.value if isinstance(unwrapped.func, cst.Attribute) else ""

        def call(name: str, *args: cst.BaseExpression) -> cst.Call:
            return cst.Call(
                func=cst.Attribute(value=target, attr=cst.Name(name)),
                args=[cst.Arg(a) for a in args],
            )

        if function in ("torch.zeros", "torch.zeros_like") or method == "new_zeros":
            return call("zero_")
        if function in ("torch.ones", "torch.ones_like") or method == "new_ones":
            return call("fill_", cst.Float("1.0"))
        if unwrapped is not value:
            return None  # other values may change under a dtype or shape change
        if function in ("torch.full", "torch.full_like") or method == "new_full":
            fill = argument(unwrapped, 1, "fill_value")
            return call("fill_", fill) if fill is not None else None
        if function in ("torch.tensor", "torch.as_tensor") and len(unwrapped.args) == 1:
            literal = unwrapped.args[0].value
            if _is_scalar_literal(literal):
                return call("fill_", literal)
        if function in ("torch.tril", "torch.triu") and unwrapped.args:
            inner = unwrapped.args[0].value
            if isinstance(inner, cst.Call) and qualify(inner.func, imports) == "torch.ones":
                alias = torch_name(self.index) or "torch"
                ones = cst.Call(
                    func=cst.Attribute(value=cst.Name(alias), attr=cst.Name("ones_like")),
                    args=[cst.Arg(target)],
                )
                rebuilt = unwrapped.with_changes(
                    args=[unwrapped.args[0].with_changes(value=ones), *unwrapped.args[1:]]
                )
                return call("copy_", rebuilt)
        return None


class _PassDevice(cst.CSTTransformer):
    """Passes `device=self.<buffer>.device` to `self.helper(...)` calls whose helper takes a
    `device` parameter that construction left at its default, as Lit-GPT's fix did."""

    def __init__(self, builder: _Builder, buffer: str) -> None:
        self.builder = builder
        self.buffer = buffer

    def leave_Call(self, original: cst.Call, updated: cst.Call) -> cst.Call:
        func = updated.func
        if not (
            isinstance(func, cst.Attribute)
            and isinstance(func.value, cst.Name)
            and func.value.value == self.builder.self_name
        ):
            return updated
        project = self.builder.workspace.project
        found = project.find_method(self.builder.qualified, func.attr.value)
        located = self.builder.workspace.method_node(*found) if found else None
        if located is None:
            return updated
        params = located[1].params
        positional = [p.name.value for p in (*params.posonly_params, *params.params)][1:]
        accepted = positional + [p.name.value for p in params.kwonly_params]
        if "device" not in accepted or any(a.star for a in updated.args):
            return updated
        if any(a.keyword is not None and a.keyword.value == "device" for a in updated.args):
            return updated
        given = sum(1 for a in updated.args if a.keyword is None)
        if "device" in positional and positional.index("device") < given:
            return updated
        device = cst.Attribute(
            value=self_attribute(self.builder.self_name, self.buffer), attr=cst.Name("device")
        )
        args = list(updated.args)
        if args and args[-1].comma is cst.MaybeSentinel.DEFAULT:
            args[-1] = args[-1].with_changes(
                comma=cst.Comma(whitespace_after=cst.SimpleWhitespace(" "))
            )
        equal = cst.AssignEqual(
            whitespace_before=cst.SimpleWhitespace(""), whitespace_after=cst.SimpleWhitespace("")
        )
        args.append(cst.Arg(keyword=cst.Name("device"), value=device, equal=equal))
        return updated.with_changes(args=args)


def _built_value(
    kind: str, node: cst.CSTNode, small: cst.BaseSmallStatement
) -> cst.BaseExpression | None:
    if kind == "register" and isinstance(node, cst.Call):
        return argument(node, 1, "tensor")
    if isinstance(small, (cst.Assign, cst.AnnAssign)) and small.value is not None:
        value = small.value
        if kind == "buffer" and isinstance(value, cst.Call):
            return argument(value, 0, "data")
        if kind == "assign":
            return value
    return None


def _is_tuple_target(small: cst.Assign) -> bool:
    return any(isinstance(t.target, (cst.Tuple, cst.List)) for t in small.targets)


def _is_scalar_literal(node: cst.BaseExpression) -> bool:
    if isinstance(node, cst.UnaryOperation) and isinstance(node.operator, cst.Minus):
        node = node.expression
    if isinstance(node, (cst.Integer, cst.Float)):
        return True
    return isinstance(node, cst.Name) and node.value in ("True", "False")


def _negate(test: cst.BaseExpression) -> cst.BaseExpression:
    if isinstance(test, (cst.Name, cst.Attribute, cst.Call, cst.Subscript)) or test.lpar:
        operand = test
    else:
        operand = test.with_changes(lpar=[cst.LeftParen()], rpar=[cst.RightParen()])
    return cst.UnaryOperation(operator=cst.Not(), expression=operand)


def _chain_key(chain: tuple[ChainItem, ...]) -> tuple[tuple[int, bool], ...]:
    return tuple((node, polarity) for node, polarity, _ in chain)


def _fresh(name: str, taken: set[str]) -> str:
    candidate = name
    while candidate in taken:
        candidate += "_"
    return candidate


@dataclass(frozen=True)
class _LineOf:
    """A node's line, looked up only when a message is formatted."""

    index: SourceIndex
    node: cst.CSTNode

    def __str__(self) -> str:
        return str(self.index.line_of(self.node))
