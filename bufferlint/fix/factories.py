"""Rebuilds of constant factories that need nothing but the buffer itself:
`torch.zeros(n)` -> `self.b.zero_()`, `torch.full((n,), v)` -> `self.b.fill_(v)`,
`torch.tril(torch.ones(n, n))` -> `self.b.copy_(torch.tril(torch.ones_like(self.b)))`.
"""

from __future__ import annotations

import libcst as cst

from bufferlint.fix.index import SourceIndex
from bufferlint.fix.replay import MethodScope, Unavailable, binds, code_of, definitions, reads
from bufferlint.fix.sites import present
from bufferlint.syntax import argument, qualify

# Methods that keep every element of a constant tensor equal: dtype, device and shape.
_VALUE_PRESERVING = frozenset(
    """float double half bfloat16 bool long int short byte to contiguous clone detach view
    reshape unsqueeze squeeze expand expand_as repeat flatten t transpose permute
    """.split()
)


def torch_name(index: SourceIndex) -> str:
    """What the file calls torch: `import torch as th` gives "th"; "" when not imported."""
    imports = index.facts.imports
    if imports.get("torch") == "torch":
        return "torch"
    return next((local for local, target in imports.items() if target == "torch"), "")


def constant_rebuild(
    value: cst.BaseExpression,
    scope: MethodScope,
    small: cst.BaseSmallStatement,
    target: cst.BaseExpression,
    hook_index: SourceIndex,
    nullable: bool = False,
) -> cst.Call | None:
    """An in-place rebuild of `target` from the `value` that `small` builds it with, if
    one needs nothing but the buffer itself; `hook_index` is the hook's file. Where the
    hook rebuilds only a buffer that is not None (`nullable`), a local set to
    `t if flag else None` stands for `t`."""
    found = _rebuild_of(value, scope, target, hook_index)
    if found is not None or not isinstance(value, cst.Name):
        return found
    try:  # `mask = torch.tril(...)` then `register_buffer("mask", mask)`
        defs, _ = definitions(scope, small, {value.value})
    except Unavailable:
        return None
    if len(defs) == 1 and isinstance(defs[0], cst.Assign) and len(defs[0].targets) == 1:
        if binds(defs[0]) == {value.value} and value.value not in reads(defs[0]):
            source = present(defs[0].value) if nullable else defs[0].value
            return _rebuild_of(source, scope, target, hook_index)
    return None


def _rebuild_of(
    value: cst.BaseExpression,
    scope: MethodScope,
    target: cst.BaseExpression,
    hook_index: SourceIndex,
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
    if unwrapped is not value and not _keeps_triangle(value, unwrapped, imports):
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
            alias = torch_name(hook_index) or "torch"
            ones = cst.Call(
                func=cst.Attribute(value=cst.Name(alias), attr=cst.Name("ones_like")),
                args=[cst.Arg(target)],
            )
            rebuilt = unwrapped.with_changes(
                args=[unwrapped.args[0].with_changes(value=ones), *unwrapped.args[1:]]
            )
            return call("copy_", rebuilt)
    return None


def _keeps_triangle(value: cst.BaseExpression, inner: cst.Call, imports: dict[str, str]) -> bool:
    """Whether `value` is `torch.tril(torch.ones(n, m))` under conversions and views that
    only add leading dimensions (`.view(1, 1, n, m)`): the triangle of a ones tensor of the
    buffer's own shape is then the same."""
    if qualify(inner.func, imports) not in ("torch.tril", "torch.triu") or not inner.args:
        return False
    ones = inner.args[0].value
    if not (isinstance(ones, cst.Call) and qualify(ones.func, imports) == "torch.ones"):
        return False
    sizes = [code_of(a.value) for a in ones.args if a.keyword is None]
    if len(sizes) != 2:
        return False
    node = value
    while node is not inner:
        assert isinstance(node, cst.Call) and isinstance(node.func, cst.Attribute)
        method = node.func.attr.value
        if method in ("view", "reshape"):
            args = [code_of(a.value) for a in node.args]
            if args[-2:] != sizes or any(a != "1" for a in args[:-2]):
                return False
        elif method in ("expand", "repeat", "permute", "transpose", "t", "flatten", "squeeze"):
            return False
        node = node.func.value
    return True


def _is_scalar_literal(node: cst.BaseExpression) -> bool:
    if isinstance(node, cst.UnaryOperation) and isinstance(node.operator, cst.Minus):
        node = node.expression
    if isinstance(node, (cst.Integer, cst.Float)):
        return True
    return isinstance(node, cst.Name) and node.value in ("True", "False")


# Methods after which a 1-d `arange(n)` still has `n` elements along its last dimension.
_KEEP_LAST = frozenset({"float", "double", "half", "bfloat16", "long", "int", "to", "contiguous"})


def sized_by_buffer(
    value: cst.BaseExpression,
    target: cst.BaseExpression,
    imports: dict[str, str],
    unknown: set[str],
) -> cst.BaseExpression | None:
    """`torch.arange(n)...` with `n` read back from the buffer's own last dimension
    (`target.shape[-1]`), when `n` reads a name in `unknown`: an arange keeps its
    length through dtype conversions, `.unsqueeze(0)` and `.expand(..., -1)`."""
    if not isinstance(value, cst.Call):
        return None
    func = value.func
    if isinstance(func, cst.Attribute) and qualify(func, imports) is None:
        method = func.attr.value
        args = [a.value for a in value.args]
        keeps = method in _KEEP_LAST or (
            method == "unsqueeze" and len(args) == 1 and _integer(args[0], 0)
        )
        if method == "expand" and args:
            last = args[-1]
            if len(args) == 1 and isinstance(last, (cst.Tuple, cst.List)) and last.elements:
                last = last.elements[-1].value
            keeps = _integer(last, -1)
        if not keeps:
            return None
        inner = sized_by_buffer(func.value, target, imports, unknown)
        return None if inner is None else value.with_changes(func=func.with_changes(value=inner))
    if qualify(func, imports) != "torch.arange":
        return None
    positional = [a for a in value.args if a.keyword is None]
    if len(positional) == 2 and _integer(positional[0].value, 0):
        end = positional[1]
    elif len(positional) == 1:
        end = positional[0]
    else:
        return None
    if not reads(end.value) & unknown:
        return None
    shape = cst.Subscript(
        value=cst.Attribute(value=target, attr=cst.Name("shape")),
        slice=[cst.SubscriptElement(cst.Index(cst.UnaryOperation(cst.Minus(), cst.Integer("1"))))],
    )
    args = [a.with_changes(value=shape) if a is end else a for a in value.args]
    return value.with_changes(args=args)


def _integer(node: cst.BaseExpression, number: int) -> bool:
    if isinstance(node, cst.UnaryOperation) and isinstance(node.operator, cst.Minus):
        return isinstance(node.expression, cst.Integer) and -int(node.expression.value) == number
    return isinstance(node, cst.Integer) and int(node.value) == number
