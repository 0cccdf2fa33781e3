"""The statement structure the extractor walks: the statements of a body and the blocks
of a compound statement, in document order.
"""

from __future__ import annotations

import libcst as cst


def statements(body: object) -> list[cst.CSTNode]:
    """The statements of a block, a one-line suite, or a list of statements."""
    if isinstance(body, (cst.IndentedBlock, cst.SimpleStatementSuite)):
        return list(body.body)
    if isinstance(body, (list, tuple)):
        return list(body)
    return []


def blocks(stmt: cst.CSTNode) -> list[object]:
    """The statement blocks of a compound statement, in document order."""
    found: list[object] = []
    if isinstance(stmt, cst.If):
        found.append(stmt.body)
        if stmt.orelse is not None:
            found.append([stmt.orelse] if isinstance(stmt.orelse, cst.If) else stmt.orelse.body)
    elif isinstance(stmt, (cst.For, cst.While)):
        found.append(stmt.body)
        if stmt.orelse is not None:
            found.append(stmt.orelse.body)
    elif isinstance(stmt, cst.With):
        found.append(stmt.body)
    elif isinstance(stmt, (cst.Try, cst.TryStar)):
        found.append(stmt.body)
        found.extend(handler.body for handler in stmt.handlers)
        if stmt.orelse is not None:
            found.append(stmt.orelse.body)
        if stmt.finalbody is not None:
            found.append(stmt.finalbody.body)
    elif isinstance(stmt, cst.Match):
        found.extend(case.body for case in stmt.cases)
    return found


def header_expressions(stmt: cst.CSTNode) -> list[cst.BaseExpression]:
    """The expressions a loop or `with` evaluates before its block."""
    if isinstance(stmt, cst.For):
        return [stmt.iter]
    if isinstance(stmt, cst.While):
        return [stmt.test]
    if isinstance(stmt, cst.With):
        return [item.item for item in stmt.items]
    return []


def class_body_items(stmt: cst.CSTNode) -> list[cst.CSTNode]:
    """Methods and nested classes, also those under `if` or `try` in the class body."""
    if isinstance(stmt, (cst.FunctionDef, cst.ClassDef)):
        return [stmt]
    items: list[cst.CSTNode] = []
    for block in blocks(stmt):
        for inner in statements(block):
            items.extend(class_body_items(inner))
    return items
