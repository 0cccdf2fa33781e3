"""What a value stored on `self` is, for the rules beyond buffers: a tensor at all (a plain
attribute holding one escapes `to_empty()`), a tensor made on the default device (a hook
that rebuilds a buffer with one moves it off the module's device), the attributes it
aliases. Read from LibCST nodes by the method walker (bufferlint.events), which feeds it
what the method's earlier statements bound to its locals.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import libcst as cst

from bufferlint.facts import FACTORIES, FACTORY, TENSOR
from bufferlint.syntax import argument, dotted

# torch functions and tensor methods whose result is a tensor on their operands' device.
TENSOR_OPS = frozenset(
    """tril triu outer exp log cos sin sqrt rsqrt pow cat stack polar complex where einsum
    matmul flip roll cumsum cumprod abs clamp sigmoid tanh reciprocal""".split()
)
TENSOR_METHODS = frozenset(
    """float double half bfloat16 bool long int clone detach contiguous unsqueeze squeeze
    view reshape expand repeat repeat_interleave flatten transpose permute t cos sin exp log
    pow mul add sub div neg sqrt rsqrt reciprocal masked_fill cumsum flip narrow""".split()
)
PARAMETER_CLASSES = frozenset({"torch.nn.Parameter", "torch.nn.parameter.Parameter"})
_DTYPE_WORDS = frozenset(
    """float float16 float32 float64 bfloat16 half double int int8 int16 int32 int64 long
    bool uint8 complex64 complex128""".split()
)


@dataclass(frozen=True)
class Value:
    """What an expression evaluates to, as far as the rules ask."""

    holds: str = ""  # FACTORY, TENSOR, or "" when not known to be a tensor
    fresh: bool = False  # a tensor made on the default device
    via: str = ""  # the `self` method whose result it is, called without a device keyword
    via_args: int = 0  # how many positional arguments that call passes
    aliases: tuple[str, ...] = ()  # `self` attributes the value is, or is derived from

    def derived(self) -> Value:
        """The same value seen through an operation: no longer the factory call itself."""
        holds = TENSOR if self.holds else ""
        return Value(holds, self.fresh, self.via, self.via_args, self.aliases)


UNKNOWN = Value()


def combine(values: list[Value]) -> Value:
    """A display or an operation over several values: a tensor if any part is one; made
    on the default device if a part is and no part is one of the module's own tensors."""
    holds = TENSOR if any(v.holds for v in values) else ""
    aliases = tuple(dict.fromkeys(a for v in values for a in v.aliases))
    fresh = any(v.fresh for v in values) and not aliases
    via = next((v for v in values if v.via), UNKNOWN)
    return Value(holds, fresh, via.via, via.via_args, aliases)


class ValueReader:
    """Reads values in one method body. `qualify` resolves dotted names through the file's
    imports; `self_name` is the method's first parameter."""

    def __init__(self, self_name: str, qualify: Callable[[cst.BaseExpression], str | None]):
        self.self_name = self_name
        self.qualify = qualify
        self.locals: dict[str, Value] = {}
        self.placed = 0  # depth of `with torch.device(...)` blocks around the statement

    def bind(self, target: cst.BaseExpression, value: cst.BaseExpression | None) -> None:
        """Records what an assignment binds to plain local names."""
        if value is None:
            return
        if isinstance(target, cst.Name):
            self.locals[target.value] = self.read(value)
        elif isinstance(target, (cst.Tuple, cst.List)):
            parts = value.elements if isinstance(value, (cst.Tuple, cst.List)) else None
            whole = self.read(value) if parts is None else UNKNOWN
            for position, element in enumerate(target.elements):
                if parts is not None and position < len(parts):
                    self.bind(element.value, parts[position].value)
                elif isinstance(element.value, cst.Name):
                    self.locals[element.value.value] = whole.derived()

    def places(self, item: cst.WithItem) -> bool:
        """Whether a `with` item sets the default device (`torch.device(d)`, `d` not None)."""
        node = item.item
        return (
            isinstance(node, cst.Call)
            and self.qualify(node.func) == "torch.device"
            and bool(node.args)
            and not _is_none(node.args[0].value)
        )

    def fields(
        self, value: cst.BaseExpression, code: Callable[[cst.CSTNode], str]
    ) -> dict[str, object]:
        """The event fields that say what a stored value is (bufferlint.facts.Event)."""
        read = self.read(value)
        if read == UNKNOWN:
            return {}
        out: dict[str, object] = {"holds": read.holds, "aliases": read.aliases}
        if read.fresh or read.via:
            out.update(fresh=read.fresh, via=read.via, via_args=read.via_args)
            out["code"] = " ".join(code(value).split())
        return out

    def read(self, node: cst.BaseExpression) -> Value:
        value = self._read(node)
        if self.placed:  # under `with torch.device(d)`, helpers' factories make on `d` too
            return Value(value.holds, False, "", 0, value.aliases)
        return value

    def _read(self, node: cst.BaseExpression) -> Value:
        value = self._unparenthesized(node)
        # `(torch.zeros(n))` is no factory call as the prefilter reads the text; a display
        # may open with one bracket, `(torch.zeros(n), ...)`
        brackets = len(node.lpar) - isinstance(node, cst.Tuple)
        return value.derived() if value.holds == FACTORY and brackets > 0 else value

    def _unparenthesized(self, node: cst.BaseExpression) -> Value:
        if isinstance(node, cst.Name):  # the factory call is another statement's text
            return self.locals.get(node.value, UNKNOWN).derived()
        if isinstance(node, cst.Attribute):
            if isinstance(node.value, cst.Name) and node.value.value == self.self_name:
                return Value(aliases=(node.attr.value,))
            if node.attr.value in ("T", "mT", "data", "real", "imag"):
                return self._read(node.value).derived()
            return UNKNOWN
        if isinstance(node, (cst.Tuple, cst.List, cst.Set)):
            parts = [self._read(e.value) for e in node.elements]
            return _display(combine(parts), parts[:1])
        if isinstance(node, cst.Dict):
            elements = [e for e in node.elements if isinstance(e, cst.DictElement)]
            parts = [self._read(e.value) for e in elements]
            keyed = bool(elements) and elements[0] is node.elements[0]
            keyed = keyed and isinstance(elements[0].key, (cst.Name, cst.SimpleString))
            return _display(combine(parts), parts[:1] if keyed else [])
        if isinstance(node, cst.BinaryOperation):
            return combine([self._read(node.left), self._read(node.right)])
        if isinstance(node, cst.UnaryOperation):
            return self._read(node.expression).derived()
        if isinstance(node, cst.Subscript):
            return self._read(node.value).derived()
        if isinstance(node, cst.Call):
            return self._call(node)
        return UNKNOWN

    def _call(self, node: cst.Call) -> Value:
        func = node.func
        name = self.qualify(func) or ""
        if name.startswith("torch.") and name.count(".") == 1:
            word = name[len("torch.") :]
            if word in FACTORIES:
                return Value(FACTORY, fresh=not _places(node))
            if word.endswith("_like"):
                return Value(TENSOR)  # on its argument's device
            if word in TENSOR_OPS:
                parts = [self._read(a.value) for a in node.args if a.keyword is None]
                value = combine(parts)
                return Value(TENSOR, value.fresh and not _places(node), value.via, value.via_args)
            return UNKNOWN
        if not isinstance(func, cst.Attribute):
            return UNKNOWN
        method = func.attr.value
        if isinstance(func.value, cst.Name) and func.value.value == self.self_name:
            if any(a.keyword is not None and "device" in a.keyword.value for a in node.args):
                return UNKNOWN
            positional = sum(1 for a in node.args if a.keyword is None and not a.star)
            return Value(via=method, via_args=positional)
        inner = self._read(func.value)
        if method == "to":
            keep = inner.holds == FACTORY and not _moves(node, self.qualify)
            held = inner.holds if keep else (TENSOR if inner.holds else "")
            fresh = inner.fresh and not _moves(node, self.qualify)
            return Value(held, fresh, inner.via if fresh else "", inner.via_args, inner.aliases)
        if method in TENSOR_METHODS:
            holds = inner.holds if inner.holds == FACTORY else (TENSOR if inner.holds else "")
            return Value(holds, inner.fresh, inner.via, inner.via_args, inner.aliases)
        return UNKNOWN


def is_frozen(
    value: cst.BaseExpression | None, qualify: Callable[[cst.BaseExpression], str | None]
) -> bool:
    """`nn.Parameter(t, requires_grad=False)`: a parameter that no optimizer moves."""
    if not isinstance(value, cst.Call) or qualify(value.func) not in PARAMETER_CLASSES:
        return False
    flag = next(
        (a.value for a in value.args if a.keyword and a.keyword.value == "requires_grad"),
        None,
    )
    return isinstance(flag, cst.Name) and flag.value == "False"


def _display(whole: Value, first: list[Value]) -> Value:
    """A display of values: a factory call itself when its first element is one, as the
    prefilter reads `self.x = (torch.zeros(n), ...)` or `{"a": torch.zeros(n)}`."""
    if first and first[0].holds == FACTORY and first[0].via == "":
        return Value(FACTORY, whole.fresh, whole.via, whole.via_args, whole.aliases)
    return whole.derived()


def _places(call: cst.Call) -> bool:
    """Whether a factory is given a device (anything but a literal None)."""
    device = argument(call, 99, "device")
    return device is not None and not _is_none(device)


def _moves(call: cst.Call, qualify: Callable[[cst.BaseExpression], str | None]) -> bool:
    """Whether `.to(...)` may move the tensor: anything but dtypes alone."""
    for arg in call.args:
        if arg.keyword is not None:
            if arg.keyword.value == "device" and not _is_none(arg.value):
                return True
            continue
        value = arg.value
        name = qualify(value) or dotted(value) or ""
        if name.startswith("torch.") and name[len("torch.") :] in _DTYPE_WORDS:
            continue
        if isinstance(value, cst.Attribute) and value.attr.value == "dtype":
            continue
        if isinstance(value, cst.Name) and value.value == "dtype":
            continue
        return True
    return False


def _is_none(node: cst.BaseExpression) -> bool:
    return isinstance(node, cst.Name) and node.value == "None"
