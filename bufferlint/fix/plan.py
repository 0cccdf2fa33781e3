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

from collections.abc import Sequence
from dataclasses import dataclass, field

import libcst as cst

from bufferlint import analysis, beyond
from bufferlint.conventions import Convention
from bufferlint.facts import ClassFacts
from bufferlint.findings import Finding
from bufferlint.fix import trace
from bufferlint.fix.factories import torch_name
from bufferlint.fix.hook_body import HookBody, is_parameter_step
from bufferlint.fix.index import SourceIndex, class_methods
from bufferlint.fix.purity import SideEffects
from bufferlint.fix.replay import Unavailable
from bufferlint.fix.workspace import Workspace
from bufferlint.model import LIGHTNING_MODULES, NEUTRAL_BASES, Project, torch_class


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
    # Statements rewritten where they stand (bufferlint.fix.swaps): (old, new) nodes of
    # `index`'s tree, and what the message says of them.
    swaps: list[tuple[cst.CSTNode, cst.CSTNode]] = field(default_factory=list)
    what: str = ""
    unfixable: dict[str, str] = field(default_factory=dict)  # buffer -> why it is left
    stores: dict[str, str] = field(default_factory=dict)  # __init__ parameter -> new attribute
    reinitialized: list[str] = field(default_factory=list)  # parameters a new hook re-inits
    left_params: dict[str, str] = field(default_factory=dict)  # those it cannot, and why
    device_parameter: str = ""  # a new hook's parameter for the buffers' device (`=None`)
    then: Plan | None = None  # the same class's rebuild in a second hook (after_loading)

    @property
    def applicability(self) -> str:
        return "unsafe" if self.reasons else "safe"

    @property
    def message(self) -> str:
        unsafe = f" (unsafe: it {'; it '.join(self.reasons)})" if self.reasons else ""
        if self.what:
            return self.what + unsafe
        text = self._added()
        if self.then is not None:
            then = self.then._added()
            text += "; " + then[0].lower() + then[1:]
        text += unsafe
        for name, reason in self.left_params.items():
            text += f"; it does not re-initialize parameter `{name}`: {reason}"
        for name, reason in self.unfixable.items():
            text += f"; `{name}` is left as it is: {reason}"
        return text

    def _added(self) -> str:
        """What the fix adds to its hook, in one clause."""
        listed = names(self.rebuilt) if self.rebuilt else ""
        if self.create:
            parts = [f"calls `super().{self.hook}()`"] if self.add_super else []
            parts += [f"rebuilds {listed}"] if self.rebuilt else []
            if self.reinitialized:
                parts.append(f"re-initializes {names(self.reinitialized)} as `__init__` did")
            return f"Add `{self.hook}` that " + " and ".join(parts)
        if self.add_super:
            call = f"call `super().{self.hook}()`"
            return f"In `{self.hook}`, {call}" + (f" and rebuild {listed}" if self.rebuilt else "")
        return f"Rebuild {listed} in `{self.hook}`"


def names(listed: Sequence[str]) -> str:
    """`a`, `b` and `c`."""
    quoted = [f"`{n}`" for n in listed]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " and " + quoted[-1]


def fix_kind(finding: Finding) -> str:
    """What the finding's rule fixes (`Rule.fix_kind`)."""
    from bufferlint.rules import RULES

    rule = RULES.get(finding.code or "")
    return rule.fix_kind if rule is not None else "buffers"


def left(project: Project, fix: Plan, convention: Convention) -> list[str]:
    """What the fixed class still gets wrong, of what `fix` is for."""
    kind = fix_kind(fix.finding)
    report = analysis.account(project, fix.qualified, convention)
    if kind == "buffers":
        return [b.name for b in report.missing]
    tensors = beyond.account(project, fix.qualified, convention, report)
    if kind == "frozen":
        found = [s.name for s in tensors.frozen]
    elif kind == "device":
        found = [w.built.name for w in tensors.wrong_device]
    else:
        found = [a.site.name for a in tensors.attributes]
    return [name for name in found if name in fix.rebuilt]


def plan(finding: Finding, workspace: Workspace, convention: Convention) -> Plan:
    """The fix for one finding; raises Unavailable with the reason there is none. Where
    some of the convention's hooks run after checkpoint loading (timm), non-persistent
    buffers go into such a hook and persistent ones into the from-scratch hook, each
    group a plan of its own (the second as `then`)."""
    kind = fix_kind(finding)
    if kind in ("device", "register"):
        from bufferlint.fix import swaps

        made = swaps.device_plan if kind == "device" else swaps.register_plan
        return made(finding, workspace, convention)
    qualified = f"{finding.module}.{finding.class_name}"
    project = workspace.project
    located = workspace.class_node(qualified)
    if located is None or qualified not in project.classes:
        raise Unavailable("bufferlint cannot find the class in the current source")
    if kind == "buffers" and analysis.account(project, qualified, convention).unreached:
        from bufferlint.fix import cascade_call  # the call belongs in the holder's hook

        return cascade_call.plan(finding, workspace, convention)
    start = rebuilds(workspace, qualified, kind, convention)
    plans: list[Plan] = []
    failed: dict[str, str] = {}
    for hook, targets in _by_hook(project, qualified, kind, start.targets, convention):
        try:
            plans.append(_plan_hook(finding, workspace, convention, start, hook, targets))
        except Unavailable as exc:
            failed.update(dict.fromkeys(targets, str(exc)))
    if not plans:
        raise Unavailable(next(iter(failed.values())))
    first = plans[0]
    first.unfixable.update(failed)
    if len(plans) > 1:
        then = first.then = plans[1]
        first.unfixable.update(then.unfixable)
        first.imports.update(then.imports)
        first.left_params.update(then.left_params)
        then.left_params = {}
        then.stores = {p: a for p, a in then.stores.items() if p not in first.stores}
        first.reasons = list(dict.fromkeys([*first.reasons, *then.reasons]))
    return first


def _by_hook(
    project: Project, qualified: str, kind: str, targets: list[str], convention: Convention
) -> list[tuple[str | None, list[str]]]:
    """The hook each group of targets goes into (None: the class's own choice): a hook that
    runs after loading gets the non-persistent buffers only."""
    if not convention.after_loading:
        return [(None, targets)]
    built = analysis.account(project, qualified, convention).built
    late = [n for n in targets if kind == "buffers" and n in built and not built[n].persistent]
    scratch = [n for n in targets if n not in late]
    groups = [(convention.after_loading[0], late), (convention.from_scratch, scratch)]
    return [(hook, group) for hook, group in groups if group]


def _plan_hook(
    finding: Finding,
    workspace: Workspace,
    convention: Convention,
    start: Rebuilds,
    wanted: str | None,
    targets: list[str],
) -> Plan:
    """The rebuild of `targets` in hook `wanted` (None: the class's first hook)."""
    qualified = start.qualified
    project = workspace.project
    located = workspace.class_node(qualified)
    assert located is not None
    index, class_node = located
    cls = project.classes[qualified][0]
    hook, own, self_name = _hook_of(project, qualified, cls, index, class_node, convention, wanted)
    device = _device_parameter(cls, hook, own, convention)
    steps, all_buffers, effects = start.steps, start.buffers, start.effects
    add_super, targets, reasons = _super_call(
        project, qualified, cls, hook, own, targets, effects, all_buffers, convention
    )
    own_init = (
        index.method(class_node, cls.methods["__init__"]) if "__init__" in cls.methods else None
    )
    body = start.body(workspace, index, self_name, own_init)
    unfixable = start.add_each(body, targets)
    if unfixable and len(unfixable) == len(targets) and not add_super:
        raise Unavailable(next(iter(unfixable.values())))
    targets = [n for n in targets if n not in unfixable]
    # A hook run after loading must not re-draw parameters: it would overwrite the loaded ones.
    fresh = not own and targets and hook not in convention.after_loading
    reinitialized, left_params = (
        _reinitialize(body, steps, qualified, all_buffers) if fresh else ([], {})
    )
    reasons += body.reasons
    late = analysis.account(project, qualified, convention).late
    for name in (n for n in targets if n in late):
        reasons.append(
            f"leaves the write of `{name}` in `{convention.after_loading[0]}` (line "
            f"{late[name]}), which overwrites a loaded checkpoint's value: remove it there"
        )
    stores = body.free_names.stores
    if stores:
        stored = names([f"self.{attr} = {param}" for param, attr in stores.items()])
        reasons.append(f"adds {stored} to `__init__` for the hook to read")

    early = trace.hook_calls(project, qualified, steps, hook, convention)
    guard = None
    if early and targets:
        last = max(targets, key=start.order)
        if min(early) < start.order(last):
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
        body=_in_convention(body.statements(), targets, self_name, device, convention, index),
        rebuilt=targets,
        torch=torch_name(index),
        imports=body.imports,
        annotate=_annotates(class_node),
        reasons=list(dict.fromkeys(reasons)),
        unfixable=unfixable,
        stores=dict(stores),
        reinitialized=reinitialized,
        left_params=left_params,
        device_parameter=device if not own else "",
    )


def _device_parameter(cls: ClassFacts, hook: str, own: bool, convention: Convention) -> str:
    """The parameter the hook receives the buffers' device in (torchtitan's root's
    `buffer_device`): a new hook takes it; an existing one only if it already does."""
    wanted = convention.hook_device
    if not wanted or hook != convention.hooks[0]:
        return ""
    return wanted if not own or wanted in cls.methods[hook].params else ""


def _in_convention(
    body: list[cst.BaseStatement],
    targets: Sequence[str],
    self_name: str,
    device: str,
    convention: Convention,
    index: SourceIndex,
) -> list[cst.BaseStatement]:
    """The rebuild as the stack needs it: where it never calls `to_empty()` (torchtune) a
    buffer still on meta is given memory on the current default device first; where the
    hook receives a device (torchtitan), the rebuilt buffer moves there."""
    if not body:
        return body
    if not convention.to_empty:
        torch = torch_name(index) or "torch"
        body = [
            cst.parse_statement(
                f"{self_name}.{name} = {torch}.empty_like({self_name}.{name}, device="
                f"{torch}.get_default_device() if {self_name}.{name}.is_meta "
                f"else {self_name}.{name}.device)"
            )
            for name in targets
        ] + body
    if device:
        body = body + [
            cst.parse_statement(
                f"if {device} is not None:\n"
                f"    {self_name}.{name} = {self_name}.{name}.to({device})\n"
            )
            for name in targets
        ]
    return body


def _hook_of(
    project: Project,
    qualified: str,
    cls: ClassFacts,
    index: SourceIndex,
    class_node: cst.ClassDef,
    convention: Convention,
    wanted: str | None = None,
) -> tuple[str, bool, str]:
    """The hook the fix goes into (`wanted`, or the class's first), whether the class
    defines it itself, and the name the hook's code calls `self`."""
    hooks = (wanted,) if wanted else convention.hooks
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
    return hook, bool(own), _self_name(hook_node or init)


def _super_call(
    project: Project,
    qualified: str,
    cls: ClassFacts,
    hook: str,
    own: bool,
    targets: list[str],
    effects: SideEffects,
    all_buffers: frozenset[str],
    convention: Convention,
) -> tuple[bool, list[str], list[str]]:
    """Whether the hook must call `super()`'s, the buffers left for it to rebuild itself,
    and why that call may be unsafe."""
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
    return add_super, targets, reasons


@dataclass
class Rebuilds:
    """The buffers a class's hook misses and the construction steps that built them: what
    a rebuild is derived from, in the class's own hook (`plan`) or in a dispatcher's branch
    (bufferlint.fix.dispatcher)."""

    qualified: str
    targets: list[str]  # in the order construction first registers them
    steps: list[trace.Step]
    built: dict[str, trace.Building]
    effects: SideEffects

    @property
    def buffers(self) -> frozenset[str]:
        return frozenset(self.built)

    def order(self, name: str) -> int:
        """The construction step that first registers buffer `name`."""
        return next(
            (
                s.index
                for s in self.steps
                if s.event.kind in trace.REGISTERING and s.event.name == name
            ),
            0,
        )

    def body(
        self,
        workspace: Workspace,
        index: SourceIndex,
        self_name: str,
        own_init: cst.FunctionDef | None = None,
    ) -> HookBody:
        """An empty rebuild, written in `index`'s file, calling the module `self_name`."""
        return HookBody(
            workspace,
            self.qualified,
            index,
            self_name,
            self.effects,
            self.steps,
            self.buffers,
            own_init,
        )

    def add_each(self, body: HookBody, names: Sequence[str]) -> dict[str, str]:
        """Adds each buffer's rebuild that can be derived, undoing one that fails; returns
        those left, with the reason."""
        left: dict[str, str] = {}
        for name in names:
            try:
                body.attempt(name, lambda n=name: self.add(body, n))
            except Unavailable as exc:
                left[name] = str(exc)
        return left

    def add(self, body: HookBody, name: str) -> None:
        """Adds the rebuild of buffer `name` to `body`, step by step."""
        building = self.built.get(name)
        if building is None or not building.steps:
            if building is not None and building.skipped:
                line = building.skipped[0].event.line
                raise Unavailable(
                    f"`{name}` is built at line {line} under a condition on a tensor's state"
                )
            raise Unavailable(f"bufferlint cannot tell how `{name}` is built")
        for step in building.steps:
            body.add(step, name)


def rebuilds(workspace: Workspace, qualified: str, kind: str, convention: Convention) -> Rebuilds:
    """What the class's hook misses, of `kind` (`buffers` or `frozen` parameters), and
    the construction that built it."""
    project = workspace.project
    report = analysis.account(project, qualified, convention)
    targets = [b.name for b in report.missing]
    if kind == "frozen":
        targets = [s.name for s in beyond.account(project, qualified, convention, report).frozen]
    steps = trace.construction(project, qualified)
    start = Rebuilds(
        qualified,
        targets,
        steps,
        trace.buildings(steps),
        SideEffects(workspace, qualified),
    )
    targets.sort(key=start.order)
    return start


def _reinitialize(
    body: HookBody, steps: list[trace.Step], qualified: str, buffers: frozenset[str]
) -> tuple[list[str], dict[str, str]]:
    """Adds to a new hook the class's own parameter initialization, as construction ran
    it: FSDP calls the hook to reset the whole module, parameters included. Returns the
    parameters re-initialized and those that cannot be, with the reason."""
    done: list[str] = []
    left: dict[str, str] = {}
    for name, building in trace.parameter_buildings(steps, qualified, buffers).items():
        if not is_parameter_step(body.sites, building[0]):
            continue
        try:
            body.attempt(name, lambda b=building, n=name: [body.add(s, n) for s in b])
            done.append(name)
        except Unavailable as exc:
            left[name] = str(exc)
    return done, left


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
