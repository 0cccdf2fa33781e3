"""Small readers of LibCST expressions, shared by the extractor and the fixer: dotted
names, string literals, call arguments, and the qualified names that dotted names stand
for through a file's imports.
"""

from __future__ import annotations

from collections.abc import Container, Mapping

import libcst as cst


def dotted(node: cst.BaseExpression) -> str | None:
    """`a.b.c` for a chain of names, else None."""
    if isinstance(node, cst.Name):
        return node.value
    if isinstance(node, cst.Attribute):
        head = dotted(node.value)
        return None if head is None else f"{head}.{node.attr.value}"
    return None


def string_value(node: cst.BaseExpression) -> str | None:
    """The value of a plain string literal, else None."""
    if isinstance(node, cst.SimpleString):
        value = node.evaluated_value
        return value if isinstance(value, str) else None
    return None


def qualify(
    node: cst.BaseExpression, imports: Mapping[str, str], shadowed: Container[str] = ()
) -> str | None:
    """What a dotted name means through a file's imports (local name -> qualified name):
    `torch.zeros` for `th.zeros` under `import torch as th`. None for an expression that
    is no dotted name, and for one whose head is not imported or is `shadowed` (a local)."""
    name = dotted(node)
    if name is None:
        return None
    head, _, rest = name.partition(".")
    if head in shadowed:
        return None
    target = imports.get(head)
    if target is None:
        return None
    return f"{target}.{rest}" if rest else target


def argument(call: cst.Call, position: int, keyword: str) -> cst.BaseExpression | None:
    """The value passed for a parameter, by keyword or at its position."""
    for arg in call.args:
        if arg.keyword is not None and arg.keyword.value == keyword:
            return arg.value
    positional = [arg for arg in call.args if arg.keyword is None and not arg.star]
    return positional[position].value if position < len(positional) else None
