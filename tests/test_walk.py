"""The one CST walker (bufferlint.walk): the nodes it reaches, their order, and the
parent map built from it."""

from __future__ import annotations

from collections import deque

import libcst as cst

from bufferlint import walk

SOURCE = """
import torch

@decorator(arg)
class Rotary(torch.nn.Module):
    def __init__(self, dim: int, *, base=10_000) -> None:
        super().__init__()
        inv = 1.0 / (base ** (torch.arange(0, dim, 2).float() / dim))  # comment
        if not hasattr(self, "inv_freq") and dim > 0:
            self.register_buffer("inv_freq", inv, persistent=False)
        elif dim:
            pass
        else:
            x = [i * 2 for i in range(dim) if i]; y = {k: v for k, v in zip(x, x)}
        with torch.no_grad():
            self.inv_freq.copy_(f(lambda t: t + 1)[0])
        try:
            z = (yield x)
        except (ValueError, TypeError) as error:
            raise RuntimeError("no") from error
        finally:
            del z
        for a, *b in x:
            match a:
                case [1, *rest] if rest:
                    continue
        return f"{dim!r:>10}" if dim else lambda q=1, /, *r, s, **t: (q, r, s, t)
"""


def _all_nodes(root: cst.CSTNode) -> list[cst.CSTNode]:
    found, stack = [], [root]
    while stack:
        node = stack.pop()
        found.append(node)
        stack.extend(reversed(walk.children(node)))
    return found


# Node types whose fields are not declared in the order their code is written.
FIELD_ORDER_DIFFERS = {
    cst.Arg,  # value before keyword
    cst.ClassDef,
    cst.ExceptHandler,  # body before type
    cst.FunctionDef,
    cst.IfExp,  # test before body
    cst.MatchCase,  # body before guard
    cst.Parameters,  # posonly parameters last
}


def test_children_are_libcsts_less_whitespace_and_punctuation() -> None:
    """The same nodes as LibCST's `children` but for ones that hold no names, in document
    order but for a few node types."""
    module = cst.parse_module(SOURCE)
    out_of_order = set()
    for node in _all_nodes(module):
        ours = walk.children(node)
        theirs = list(node.children)  # LibCST's own, in the order it writes the code
        positions = [next(i for i, t in enumerate(theirs) if t is o) for o in ours]
        if positions != sorted(positions):
            out_of_order.add(type(node))
        left_out = [t for t in theirs if not any(t is o for o in ours)]
        for child in left_out:
            assert not any(isinstance(n, (cst.Name, cst.Call)) for n in _libcst_nodes(child))
    assert out_of_order == FIELD_ORDER_DIFFERS


def _libcst_nodes(root: cst.CSTNode) -> list[cst.CSTNode]:
    found, stack = [], [root]
    while stack:
        node = stack.pop()
        found.append(node)
        stack.extend(node.children)
    return found


def test_fields_are_cached_per_type() -> None:
    first, second = cst.parse_expression("f(a)"), cst.parse_expression("g(b, c)")
    assert walk.fields(first) is walk.fields(second)
    assert "whitespace_after_func" not in walk.fields(first)
    assert "lpar" not in walk.fields(first) and "args" in walk.fields(first)


def test_is_node() -> None:
    assert walk.is_node(cst.Name("x"))
    assert not walk.is_node("x") and not walk.is_node(None)
    assert not walk.is_node(cst.MaybeSentinel.DEFAULT)


def test_descendants_in_document_order_and_not_into_opaque_scopes() -> None:
    expr = cst.parse_expression("f(g(x), h(y), lambda: k(z))")
    module = cst.Module(body=[])
    calls = walk.descendants(expr, cst.Call)
    assert [module.code_for_node(c) for c in calls] == [
        "f(g(x), h(y), lambda: k(z))",
        "g(x)",
        "h(y)",
        "k(z)",
    ]
    assert walk.descendants(expr, cst.Call, walk.SCOPES) == calls[:3]
    lam = walk.descendants(expr, cst.Lambda)[0]
    assert walk.descendants(lam, cst.Call, walk.SCOPES) == calls[3:]  # the root is entered


def test_parent_map_covers_what_children_reaches() -> None:
    module = cst.parse_module(SOURCE)
    parents: dict[int, cst.CSTNode] = {}
    walk.parent_map(module, parents)
    for node in _all_nodes(module):
        for child in walk.children(node):
            assert parents[id(child)] is node
    assert len(parents) == len(_all_nodes(module)) - 1


def test_parent_map_leaves_functions_for_later() -> None:
    module = cst.parse_module(SOURCE)
    parents: dict[int, cst.CSTNode] = {}
    later: deque[cst.FunctionDef] = deque()
    walk.parent_map(module, parents, later)
    [function] = later
    assert function.name.value == "__init__" and id(function) in parents
    assert id(function.name) not in parents
    walk.parent_map(later.popleft(), parents, later)
    assert parents[id(function.name)] is function and not later
