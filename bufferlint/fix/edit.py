"""Puts plans into a file's CST and renders it: everything outside the edited hooks (and
the `import torch` line, when one is needed) keeps its bytes, since LibCST reproduces
the source it parsed, comments, quotes and line endings included."""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from typing import Any

import libcst as cst
from libcst.codemod import CodemodContext
from libcst.codemod.visitors import AddImportsVisitor

from bufferlint.facts import dotted
from bufferlint.fix.plan import Plan


def render(module: cst.Module, plans: Sequence[Plan]) -> str:
    """The file's source with every plan applied."""
    by_class = {id(p.class_node): p for p in plans}
    updated = module.visit(_Apply(by_class))
    assert isinstance(updated, cst.Module)
    if any(p.body and not p.torch for p in plans):
        updated = _import_torch(updated)
    return updated.code


def _import_torch(module: cst.Module) -> cst.Module:
    """Adds `import torch` where isort puts it: before the first `from torch ...` (or
    `import torch.x`) at the top level; elsewhere LibCST's AddImportsVisitor decides."""
    body = list(module.body)
    for position, statement in enumerate(body):
        if isinstance(statement, cst.SimpleStatementLine) and any(
            _from_torch(small) for small in statement.body
        ):
            line = cst.SimpleStatementLine(
                body=[cst.Import(names=[cst.ImportAlias(name=cst.Name("torch"))])],
                leading_lines=statement.leading_lines,
            )
            body[position : position + 1] = [line, statement.with_changes(leading_lines=[])]
            return module.with_changes(body=body)
    context = CodemodContext()
    AddImportsVisitor.add_needed_import(context, "torch")
    return AddImportsVisitor(context).transform_module(module)


def _from_torch(small: cst.BaseSmallStatement) -> bool:
    if isinstance(small, cst.ImportFrom) and not small.relative and small.module is not None:
        return (dotted(small.module) or "").split(".")[0] == "torch"
    if isinstance(small, cst.Import):
        return any((dotted(a.name) or "").startswith("torch.") for a in small.names)
    return False


def edits(before: str, after: str) -> list[dict[str, Any]]:
    """ruff's JSON edits (1-based rows and columns, end exclusive) turning `before` into `after`."""
    old = before.splitlines(keepends=True)
    new = after.splitlines(keepends=True)
    out = []
    matcher = difflib.SequenceMatcher(None, old, new, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            continue
        out.append(
            {
                "content": "".join(new[j1:j2]),
                "location": {"row": i1 + 1, "column": 1},
                "end_location": {"row": i2 + 1, "column": 1},
            }
        )
    return out


class _Apply(cst.CSTTransformer):
    def __init__(self, plans: dict[int, Plan]) -> None:
        self.plans = plans

    def leave_ClassDef(self, original: cst.ClassDef, updated: cst.ClassDef) -> cst.ClassDef:
        plan = self.plans.get(id(original))
        if plan is None or not isinstance(updated.body, cst.IndentedBlock):
            return updated
        body = list(updated.body.body)
        if plan.create:
            position = _after_init(body)
            body.insert(position, _new_hook(plan, _blank_lines(body, position)))
        else:
            position = max(
                i
                for i, statement in enumerate(body)
                if isinstance(statement, cst.FunctionDef) and statement.name.value == plan.hook
            )
            hook = body[position]
            assert isinstance(hook, cst.FunctionDef)
            body[position] = _extend(hook, plan)
        return updated.with_changes(body=updated.body.with_changes(body=body))


def _after_init(body: list[cst.BaseStatement]) -> int:
    positions = [
        i
        for i, statement in enumerate(body)
        if isinstance(statement, cst.FunctionDef) and statement.name.value == "__init__"
    ]
    return positions[-1] + 1 if positions else len(body)


def _blank_lines(body: list[cst.BaseStatement], position: int) -> int:
    """As many blank lines as separate the class's methods (the next one, or the previous)."""
    for neighbour in (body[position : position + 1], body[position - 1 : position]):
        for statement in neighbour:
            if isinstance(statement, cst.FunctionDef) and statement.leading_lines:
                blank = 0
                for line in statement.leading_lines:
                    if line.comment is not None:
                        break
                    blank += 1
                if blank:
                    return blank
    return 1


def _super_call(plan: Plan) -> cst.SimpleStatementLine:
    call = cst.Call(
        func=cst.Attribute(value=cst.Call(func=cst.Name("super")), attr=cst.Name(plan.hook))
    )
    return cst.SimpleStatementLine(body=[cst.Expr(call)])


def _rebuild(plan: Plan) -> cst.BaseStatement:
    """`with torch.no_grad():` around the rebuild, under `if hasattr(self, "b"):` when
    construction runs the hook before the buffer exists."""
    alias = plan.torch or "torch"
    no_grad = cst.Call(func=cst.Attribute(value=cst.Name(alias), attr=cst.Name("no_grad")))
    statement: cst.BaseStatement = cst.With(
        items=[cst.WithItem(no_grad)], body=cst.IndentedBlock(body=plan.body)
    )
    if plan.guard is not None:
        test = cst.Call(
            func=cst.Name("hasattr"),
            args=[
                cst.Arg(
                    cst.Name(plan.self_name),
                    comma=cst.Comma(cst.SimpleWhitespace(""), cst.SimpleWhitespace(" ")),
                ),
                cst.Arg(cst.SimpleString(f'"{plan.guard}"')),
            ],
        )
        statement = cst.If(test=test, body=cst.IndentedBlock(body=[statement]))
    return statement


def _new_hook(plan: Plan, blank: int) -> cst.FunctionDef:
    statements: list[cst.BaseStatement] = []
    if plan.add_super:
        statements.append(_super_call(plan))
    if plan.body:
        statements.append(_rebuild(plan))
    return cst.FunctionDef(
        name=cst.Name(plan.hook),
        params=cst.Parameters(params=[cst.Param(cst.Name(plan.self_name))]),
        body=cst.IndentedBlock(body=statements or [cst.SimpleStatementLine([cst.Pass()])]),
        returns=cst.Annotation(cst.Name("None")) if plan.annotate else None,
        leading_lines=[cst.EmptyLine(indent=False)] * blank,
    )


def _extend(hook: cst.FunctionDef, plan: Plan) -> cst.FunctionDef:
    """The hook with the super() call first (after a docstring) and the rebuild last, or
    first when the hook may return early."""
    suite = hook.body
    if isinstance(suite, cst.SimpleStatementSuite):
        line = cst.SimpleStatementLine(
            body=[s.with_changes(semicolon=cst.MaybeSentinel.DEFAULT) for s in suite.body]
        )
        suite = cst.IndentedBlock(body=[line], header=suite.trailing_whitespace)
    statements = list(suite.body)
    start = 1 if statements and _is_docstring(statements[0]) else 0
    if plan.add_super:
        statements.insert(start, _super_call(plan))
        start += 1
    if plan.body:
        rebuild = _rebuild(plan)
        if all(_is_pass(s) for s in statements[start:]):
            statements[start:] = [rebuild]
        elif _returns(hook):
            statements.insert(start, rebuild)
        else:
            statements.append(rebuild)
    return hook.with_changes(body=suite.with_changes(body=statements))


def _is_docstring(statement: cst.BaseStatement) -> bool:
    return (
        isinstance(statement, cst.SimpleStatementLine)
        and len(statement.body) == 1
        and isinstance(statement.body[0], cst.Expr)
        and isinstance(statement.body[0].value, (cst.SimpleString, cst.ConcatenatedString))
    )


def _is_pass(statement: cst.BaseStatement) -> bool:
    return (
        isinstance(statement, cst.SimpleStatementLine)
        and not statement.leading_lines
        and statement.trailing_whitespace.comment is None
        and all(
            isinstance(s, cst.Pass)
            or (isinstance(s, cst.Expr) and isinstance(s.value, cst.Ellipsis))
            for s in statement.body
        )
    )


class _FindReturn(cst.CSTVisitor):
    found = False

    def visit_Return(self, node: cst.Return) -> None:
        self.found = True

    def visit_FunctionDef(self, node: cst.FunctionDef) -> bool:
        return False

    def visit_Lambda(self, node: cst.Lambda) -> bool:
        return False


def _returns(hook: cst.FunctionDef) -> bool:
    finder = _FindReturn()
    hook.body.visit(finder)
    return finder.found
