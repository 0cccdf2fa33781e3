"""Walks LibCST trees by reading their nodes' dataclass fields, one cached list of fields
per node type: LibCST's own visitor rebuilds every node it passes. Whitespace, brackets
and punctuation are left out, since nothing in bufferlint asks about them.
"""

from __future__ import annotations

import dataclasses
from collections import deque
from collections.abc import Collection, Iterator
from typing import TypeVar

import libcst as cst

_Node = TypeVar("_Node", bound=cst.CSTNode)

# Fields that hold only whitespace and punctuation: never worth descending into.
SKIPPED_FIELDS = frozenset(
    {"lpar", "rpar", "comma", "semicolon", "lbracket", "rbracket", "lbrace", "rbrace", "colon"}
    | {"dot", "equal", "operator", "header", "footer", "leading_lines", "lines_after_decorators"}
    | {"trailing_whitespace", "newline", "asynchronous"}
)
# Nested scopes: the code in them does not run with the code around them.
SCOPES = frozenset({cst.Lambda, cst.FunctionDef, cst.ClassDef})
_FIELDS: dict[type, tuple[str, ...]] = {}
_NODE_TYPES: dict[type, bool] = {}  # whether values of a type are CST nodes


def fields(node: cst.CSTNode) -> tuple[str, ...]:
    """The fields of `node` that may hold nodes worth walking to, in declaration order:
    the order the code is written in, but for definitions, parameters, keyword arguments,
    `a if b else c`, and `except` and `case` clauses."""
    kind = type(node)
    names = _FIELDS.get(kind)
    if names is None:
        names = _FIELDS[kind] = tuple(
            f.name
            for f in dataclasses.fields(kind)
            if f.name not in SKIPPED_FIELDS and not f.name.startswith("whitespace")
        )
    return names


def is_node(value: object) -> bool:
    """`isinstance(value, cst.CSTNode)` by a lookup per type: CSTNode is an ABC, whose
    check is slow."""
    kind = type(value)
    known = _NODE_TYPES.get(kind)
    if known is None:
        known = _NODE_TYPES[kind] = isinstance(value, cst.CSTNode)
    return known


def children(node: cst.CSTNode) -> list[cst.CSTNode]:
    """The nodes held in `node`'s fields, directly or in a sequence."""
    found = []
    for name in _FIELDS.get(type(node)) or fields(node):
        value = getattr(node, name)
        kind = type(value)
        if kind is list or kind is tuple:
            found.extend(item for item in value if is_node(item))
        elif is_node(value):
            found.append(value)
    return found


def preorder(node: cst.CSTNode) -> Iterator[cst.CSTNode]:
    """`node` and every node below it, in the order the code is written (see `fields`)."""
    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        stack.extend(reversed(children(current)))


def descendants(
    node: cst.CSTNode, kind: type[_Node], opaque: Collection[type] = frozenset()
) -> list[_Node]:
    """`node` and the nodes below it of type `kind`, depth first in field order, not
    looking inside nodes of the `opaque` types below `node`. Types match exactly: LibCST's
    classes are ABCs, slow to check, and its parser makes no subclasses of them."""
    found: list[_Node] = []
    stack = [node]
    while stack:
        current = stack.pop()
        current_kind = type(current)
        if current_kind is kind:
            found.append(current)
        if current is not node and current_kind in opaque:
            continue
        stack.extend(reversed(children(current)))
    return found


def parent_map(
    root: cst.CSTNode, parents: dict[int, cst.CSTNode], later: deque[cst.FunctionDef] | None = None
) -> None:
    """Adds each node's parent, by the node's id, for the nodes below `root`. With `later`,
    the functions below `root` are not entered but left there, to be mapped when a node in
    one is asked for. The walk of `children`, inlined: the fixer maps every node of every
    class it looks at."""
    stack = [root]
    pop, push = stack.pop, stack.append
    known_fields, node_types, function = _FIELDS, _NODE_TYPES, cst.FunctionDef
    while stack:
        node = pop()
        for name in known_fields.get(type(node)) or fields(node):
            value = getattr(node, name)
            kind = type(value)
            if kind is list or kind is tuple:
                for child in value:
                    known = node_types.get(type(child))
                    if known or (known is None and is_node(child)):
                        parents[id(child)] = node
                        if later is not None and type(child) is function:
                            later.append(child)
                        else:
                            push(child)
            else:
                known = node_types.get(kind)
                if known or (known is None and is_node(value)):
                    parents[id(value)] = node
                    push(value)
