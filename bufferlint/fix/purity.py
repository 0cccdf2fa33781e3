"""Whether re-running construction code in the hook can do more than rebuild buffers.

A rebuild is "safe" when everything it re-runs is a known side-effect-free computation:
torch and math functions, tensor methods, and project helpers made only of those. It is
"unsafe" when it draws random numbers (the values then differ from construction, and every
later draw shifts), or calls code whose effects cannot be seen (a helper that sets other
attributes, a submodule, a function from another package).
"""

from __future__ import annotations

import builtins
from collections.abc import Iterable
from dataclasses import dataclass

import libcst as cst

from bufferlint import walk
from bufferlint.fix.index import SourceIndex
from bufferlint.fix.replay import binds, root_name
from bufferlint.fix.workspace import Workspace
from bufferlint.syntax import dotted, qualify, string_value

RANDOM_FUNCTIONS = frozenset(
    """rand rand_like randn randn_like randint randint_like randperm normal bernoulli
    multinomial poisson binomial dropout dropout1d dropout2d dropout3d alpha_dropout
    feature_alpha_dropout rrelu gumbel_softmax""".split()
)
RANDOM_METHODS = frozenset(
    """normal_ uniform_ random_ bernoulli_ exponential_ geometric_ cauchy_ log_normal_
    bernoulli multinomial rrelu_""".split()
)
CONSTANT_INITS = frozenset({"ones_", "zeros_", "constant_", "eye_", "dirac_", "calculate_gain"})
# Methods that act on a module (a submodule reached through `self.x`), not on a tensor.
MODULE_METHODS = frozenset(
    """reset_parameters register_buffer register_parameter register_module add_module apply
    to_empty load_state_dict train eval requires_grad_ zero_grad""".split()
)
PURE_BUILTINS = frozenset(
    """abs all any bool complex dict divmod enumerate float frozenset getattr hasattr int
    isinstance len list map max min pow range reversed round set slice sorted str sum tuple
    zip ValueError TypeError RuntimeError AssertionError""".split()
)
MAX_DEPTH = 4
_DEFINITIONS = frozenset({cst.FunctionDef, cst.ClassDef})
_BLOCKS = (
    cst.BaseStatement,
    cst.BaseSmallStatement,
    cst.BaseSuite,
    cst.Else,
    cst.ExceptHandler,
    cst.ExceptStarHandler,
    cst.Finally,
    cst.MatchCase,
)


@dataclass(frozen=True)
class Where:
    """The code being judged: its file, the name `self` has there, and its class."""

    index: SourceIndex
    self_name: str | None
    owner: str | None  # qualified class for `self.method()` calls
    allowed: frozenset[str]  # buffers the code may overwrite: the ones being rebuilt
    local: frozenset[str] = frozenset()


class SideEffects:
    """Reasons, if any, why re-running code could change behaviour beyond the rebuild."""

    def __init__(self, workspace: Workspace, qualified: str) -> None:
        self.workspace = workspace
        self.qualified = qualified  # the instance's class: `self.m()` resolves on it
        self._memo = workspace.memo

    # -- entry points ------------------------------------------------------------------
    def of_statements(
        self, nodes: Iterable[cst.CSTNode], where: Where, depth: int = 0
    ) -> list[str]:
        reasons: list[str] = []
        for node in nodes:
            reasons += self._statement(node, where, depth)
        return _unique(reasons)

    def of_method(self, name: str, allowed: frozenset[str], after: str | None = None) -> list[str]:
        """Re-running `self.name()` (or `super().name()` when `after` is the caller's class)."""
        found = self.workspace.project.find_method(self.qualified, name, after=after)
        if found is None:
            return [f"calls `{name}()`, which bufferlint cannot see"]
        located = self.workspace.method_node(found[0], found[1])
        if located is None:
            return [f"calls `{name}()`, which bufferlint cannot read"]
        index, node = located
        return self._function(node, index, found[0], allowed, 0)

    # -- functions ---------------------------------------------------------------------
    def _function(
        self,
        node: cst.FunctionDef,
        index: SourceIndex,
        owner: str | None,
        allowed: frozenset[str],
        depth: int,
    ) -> list[str]:
        key = ("effects", self.qualified, id(node), allowed)
        if key in self._memo:
            return self._memo[key]  # type: ignore[return-value]
        self._memo[key] = []  # recursion: assume nothing more while walking itself
        if depth > MAX_DEPTH:
            reasons = [f"calls `{node.name.value}()` through too many helpers to check"]
        else:
            params = [*node.params.posonly_params, *node.params.params]
            self_name = params[0].name.value if owner is not None and params else None
            local = frozenset(_locals(node))
            where = Where(index, self_name, owner, allowed, local)
            reasons = self.of_statements(node.body.body, where, depth + 1)
        self._memo[key] = reasons
        return reasons

    # -- statements --------------------------------------------------------------------
    def _statement(self, node: cst.CSTNode, where: Where, depth: int) -> list[str]:
        if isinstance(node, (cst.FunctionDef, cst.ClassDef)):
            return []
        if isinstance(node, (cst.Global, cst.Nonlocal, cst.Del)):
            return ["changes names outside the rebuild"]
        reasons: list[str] = []
        if not isinstance(node, cst.BaseSmallStatement):
            # A compound statement or a block: its statements, and the calls in its header.
            for child in node.children:
                if isinstance(child, _BLOCKS):
                    reasons += self._statement(child, where, depth)
                else:
                    for call in _calls(child):
                        reasons += self._call(call, where, depth)
            return reasons
        if isinstance(node, (cst.Assign, cst.AnnAssign, cst.AugAssign)):
            targets = (
                [t.target for t in node.targets] if isinstance(node, cst.Assign) else [node.target]
            )
            for target in targets:
                reasons += self._target(target, where)
        if isinstance(node, cst.Expr) and isinstance(node.value, cst.Call):
            reasons += self._registration(node.value, where)
        reasons += self._child_reads(node, where)
        for call in _calls(node):
            reasons += self._call(call, where, depth)
        return reasons

    def _child_reads(self, node: cst.CSTNode, where: Where) -> list[str]:
        """A read of a submodule's tensor (`self.proj.bias`): FSDP runs the parent's hook
        first, when the child is still on meta (or not yet initialized after `to_empty()`),
        so the rebuild is right only in stacks that reset children first."""
        if where.self_name is None:
            return []
        children = self._children()
        return [
            f"reads `{where.self_name}.{child}.{name}` of the submodule `{child}`, which FSDP "
            f"may not have materialized when this hook runs"
            for child, name in _submodule_reads(node, where.self_name)
            if child in children
        ]

    def _children(self) -> frozenset[str]:
        """The attributes that the class's construction code assigns a module to."""
        key = ("children", self.qualified)
        if key not in self._memo:
            project = self.workspace.project
            found: set[str] = set()
            for name in project.mro(self.qualified):
                if name not in project.classes:
                    continue
                cls = project.classes[name][0]
                for method in (*cls.methods.values(), *cls.setters.values()):
                    found |= {
                        attr
                        for attr, made in method.children
                        if made.rpartition(".")[2] not in TENSORS | _TENSOR_CLASSES
                    }
            self._memo[key] = frozenset(found)
        return self._memo[key]  # type: ignore[return-value]

    def _target(self, target: cst.BaseExpression, where: Where) -> list[str]:
        if isinstance(target, (cst.Tuple, cst.List)):
            return [r for e in target.elements for r in self._target(e.value, where)]
        if isinstance(target, cst.StarredElement):
            return self._target(target.value, where)
        if isinstance(target, cst.Name):
            return []
        root = root_name(target)
        if root is not None and root == where.self_name:
            attr = _self_attr(target, root)
            if attr in where.allowed:
                return []
            return [f"sets `self.{attr}`"]
        if root is not None and root not in where.local:
            return [f"changes `{root}`, which outlives the rebuild"]
        return []

    def _registration(self, call: cst.Call, where: Where) -> list[str]:
        func = call.func
        if (
            isinstance(func, cst.Attribute)
            and func.attr.value == "register_buffer"
            and root_name(func.value) == where.self_name
            and call.args
        ):
            name = string_value(call.args[0].value)
            if name not in where.allowed:
                return [f"registers buffer `{name}`"]
        return []

    # -- calls -------------------------------------------------------------------------
    def _call(self, call: cst.Call, where: Where, depth: int) -> list[str]:
        func = call.func
        if isinstance(func, cst.Attribute):
            method = func.attr.value
            receiver = func.value
            if isinstance(receiver, cst.Name) and receiver.value == where.self_name:
                if method == "register_buffer":
                    return []  # judged as a statement
                return self._self_method(method, where, depth)
            if isinstance(receiver, cst.Call) and dotted(receiver.func) == "super":
                return self._super_method(method, where)
            root = root_name(receiver)
            if root is not None and root == where.self_name:
                attr = _self_attr(receiver, root)
                if method in MODULE_METHODS:
                    return [f"calls `self.{attr}.{method}()`"]
                if method.endswith("_") and attr not in where.allowed:
                    return [f"changes `self.{attr}` in place"]
            # `nn.init` is `torch.nn.init` when the file imports `nn` from torch.
            qualified = (
                None
                if root == where.self_name
                else qualify(receiver, where.index.facts.imports, where.local)
            )
            if qualified is not None:
                return _library_call(f"{qualified}.{method}", call)
            if method in RANDOM_METHODS:
                return [f"draws random numbers (`.{method}()`)"]
            return []
        if isinstance(func, cst.Name):
            name = func.value
            if name in where.local:
                return [f"calls the local `{name}`"]
            qualified = where.index.facts.imports.get(name)
            if qualified is not None:
                return _library_call(qualified, call)
            helper = where.index.module_function(name)
            if helper is not None:
                return self._function(helper, where.index, None, frozenset(), depth)
            if name in PURE_BUILTINS:
                return []
            if hasattr(builtins, name):
                return [f"calls `{name}()`"]
            return [f"calls `{name}()`, which bufferlint cannot see"]
        return ["calls a computed callable"]

    def _self_method(self, name: str, where: Where, depth: int) -> list[str]:
        project = self.workspace.project
        found = project.find_method(self.qualified, name)
        if found is None:
            return [f"calls `self.{name}()`, which is no method bufferlint can see"]
        located = self.workspace.method_node(found[0], found[1])
        if located is None:
            return [f"calls `self.{name}()`, which bufferlint cannot read"]
        index, node = located
        reasons = self._function(node, index, found[0], where.allowed, depth)
        return [f"calls `self.{name}()`, which {r}" for r in reasons[:1]]

    def _super_method(self, name: str, where: Where) -> list[str]:
        reasons = self.of_method(name, where.allowed, after=where.owner)
        return [f"calls `super().{name}()`, which {r}" for r in reasons[:1]]


# torch.nn classes that wrap a tensor rather than build a module.
TENSORS = frozenset({"Parameter", "Buffer"})


# What a tensor tells without its data, which a meta tensor tells too.
_METADATA = frozenset({"shape", "dtype", "ndim", "is_floating_point", "size", "dim", "numel"})
_TENSOR_CLASSES = frozenset({"Tensor", "FloatTensor", "LongTensor", "ParameterList"})


def _submodule_reads(node: cst.CSTNode, self_name: str) -> list[tuple[str, str]]:
    """(child, attribute) for each `self.child.attribute` that `node` reads as a value:
    not called as a method, nor only asked its shape or dtype."""
    found: list[tuple[str, str]] = []
    stack = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, (cst.FunctionDef, cst.ClassDef, cst.Lambda)):
            continue
        if isinstance(current, cst.Call) and isinstance(current.func, cst.Attribute):
            stack.extend(a.value for a in current.args)
            # `self.proj.weight.size()` asks only metadata; `self.proj.forward(x)` calls it.
            if current.func.attr.value not in _METADATA and not _read_of(current.func, self_name):
                stack.append(current.func.value)
            continue
        if isinstance(current, cst.Attribute):
            if current.attr.value in _METADATA:
                continue
            read = _read_of(current, self_name)
            if read is not None:
                found.append(read)
                continue
        stack.extend(walk.children(current))
    return list(dict.fromkeys(found))


def _read_of(node: cst.BaseExpression, self_name: str) -> tuple[str, str] | None:
    """(child, attribute) for `self.child.attribute`."""
    if (
        isinstance(node, cst.Attribute)
        and isinstance(node.value, cst.Attribute)
        and isinstance(node.value.value, cst.Name)
        and node.value.value.value == self_name
    ):
        return node.value.attr.value, node.attr.value
    return None


def _library_call(qualified: str, call: cst.Call) -> list[str]:
    last = qualified.rsplit(".", 1)[-1]
    if qualified.startswith(("torch.", "numpy.")) or qualified in ("torch", "numpy"):
        if ".random." in f"{qualified}." or qualified.startswith("torch.distributions"):
            return [f"draws random numbers (`{qualified}`)"]
        if last in RANDOM_FUNCTIONS or last in RANDOM_METHODS:
            return [f"draws random numbers (`{qualified}`)"]
        if qualified.startswith("torch.nn.init.") and last not in CONSTANT_INITS:
            return [f"draws random numbers (`{qualified}`)"]
        if qualified.startswith("torch.nn.") and last[:1].isupper() and last not in TENSORS:
            return [f"builds a module (`{qualified}`), which draws random numbers"]
        if last.startswith("set_") or last in ("manual_seed", "seed"):
            return [f"changes global state (`{qualified}`)"]
        return []
    if qualified.startswith("math.") or qualified in ("math", "functools.reduce", "operator"):
        return []
    return [f"calls `{qualified}`, whose effects bufferlint cannot see"]


def _self_attr(node: cst.BaseExpression, self_name: str) -> str:
    """`b` for `self.b`, `self.b[0]`, `self.b.data`."""
    chain = []
    while isinstance(node, (cst.Attribute, cst.Subscript)):
        if isinstance(node, cst.Attribute):
            chain.append(node.attr.value)
        node = node.value
    return chain[-1] if chain else self_name


def _calls(node: cst.CSTNode) -> list[cst.Call]:
    """Calls in `node`, in document order, not inside nested functions or classes."""
    return walk.descendants(node, cst.Call, _DEFINITIONS)


def _locals(node: cst.FunctionDef) -> set[str]:
    """Parameters and names a function binds (its own scope only)."""
    names: set[str] = set()
    stack: list[cst.CSTNode] = [node.params, node.body]
    while stack:
        current = stack.pop()
        if isinstance(current, cst.FunctionDef):
            continue
        if isinstance(current, cst.Param):
            names.add(current.name.value)
        elif isinstance(current, (cst.Assign, cst.AnnAssign, cst.AugAssign)):
            names |= binds(current)
        elif isinstance(current, cst.For) and isinstance(current.target, cst.Name):
            names.add(current.target.value)
        stack.extend(walk.children(current))
    return names


def _unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))
