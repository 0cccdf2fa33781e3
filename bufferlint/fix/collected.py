"""What a hook's rebuild has collected so far: its statements under the `if`s they keep,
undone for a buffer whose rebuild fails, and guarded for one construction may leave `None`.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

import libcst as cst

from bufferlint.fix.free_names import FreeNames
from bufferlint.fix.replay import Unavailable, self_attribute
from bufferlint.fix.sites import Sites
from bufferlint.walk import children

# Chain element kept around a replayed statement: (id of the `if`, polarity, its test).
ChainItem = tuple[int, bool, cst.BaseExpression]


class Collected:
    """The statements of one hook, with what undoing a buffer's rebuild must restore."""

    self_name: str
    sites: Sites

    def __init__(self, free_names: FreeNames) -> None:
        self.free_names = free_names
        self.items: list[tuple[tuple[ChainItem, ...], cst.BaseSmallStatement]] = []
        self.done: set[int] = set()  # ids of the statements already replayed
        self.recalled: set[int] = set()  # indices of the helper calls already replayed
        self.reasons: list[str] = []
        # Replayed definitions: id of the construction statement -> its position in
        # `items`; and those of them rewritten to their branch that is not None.
        self.defined: dict[int, int] = {}
        self.presented: set[int] = set()

    @property
    def imports(self) -> dict[str, str]:
        """Names the hook's file must import: local name -> qualified name."""
        return self.free_names.imports

    def attempt(self, name: str, rebuild: Callable[[], None]) -> None:
        """Runs `rebuild` for buffer `name`, keeping what it added only if it succeeds:
        one buffer that cannot be rebuilt leaves the others' rebuilds as they are. A
        buffer construction may leave `None` is rebuilt under `if self.b is not None:`,
        with the definitions replayed for it alone."""
        saved = self._saved()
        start = len(self.items)
        try:
            rebuild()
        except Unavailable:
            self._restore(saved)
            raise
        tests: list[cst.BaseExpression] = []
        if self.sites.may_be_absent(name):  # `"b" in self._buffers`
            buffers = cst.Attribute(value=cst.Name(self.self_name), attr=cst.Name("_buffers"))
            tests.append(
                cst.Comparison(
                    left=cst.SimpleString(f'"{name}"'),
                    comparisons=[cst.ComparisonTarget(cst.In(), buffers)],
                )
            )
        if self.sites.nullable(name):
            tests.append(
                cst.Comparison(
                    left=self_attribute(self.self_name, name),
                    comparisons=[cst.ComparisonTarget(cst.IsNot(), cst.Name("None"))],
                )
            )
        if tests:
            test = (
                tests[0] if len(tests) == 1 else cst.BooleanOperation(tests[0], cst.And(), tests[1])
            )
            key = -1 - len(self.items)
            own = set(self.defined.values())
            for position in range(start, len(self.items)):
                chain, small = self.items[position]
                if position in own or _writes(small, self.self_name, name):
                    self.items[position] = ((*chain, (key, True, test)), small)

    def share(self, definitions: list[cst.CSTNode]) -> None:
        """Takes replayed `definitions` out from under another buffer's `is not None`
        guard: the buffer being rebuilt needs them too. One rewritten to its branch that
        is not None cannot be shared."""
        for definition in definitions:
            position = self.defined.get(id(definition))
            if position is None:
                continue
            chain, small = self.items[position]
            if all(key >= 0 for key, _, _ in chain):
                continue
            if id(definition) in self.presented:
                raise Unavailable(
                    "it reads a local that the rebuild of another buffer sets only where "
                    "that buffer is not None"
                )
            self.items[position] = (tuple(c for c in chain if c[0] >= 0), small)

    def _saved(self) -> tuple[object, ...]:
        return (
            list(self.items),
            set(self.done),
            set(self.recalled),
            list(self.reasons),
            dict(self.free_names.imports),
            dict(self.free_names.stores),
            dict(self.defined),
            set(self.presented),
        )

    def _restore(self, saved: tuple[object, ...]) -> None:
        self.items, self.done, self.recalled, self.reasons = saved[:4]  # type: ignore[assignment]
        self.free_names.imports, self.free_names.stores = saved[4:6]  # type: ignore[assignment]
        self.defined, self.presented = saved[6:]  # type: ignore[assignment]

    def statements(self) -> list[cst.BaseStatement]:
        """The hook's new statements, under the `if`s they keep."""
        out: list[cst.BaseStatement] = []
        for _, group in itertools.groupby(self.items, key=lambda item: _chain_key(item[0])):
            items = list(group)
            lines: list[cst.BaseStatement] = [
                small.with_changes(leading_lines=[])
                if isinstance(small, cst.BaseCompoundStatement)
                else cst.SimpleStatementLine(body=[small])
                for _, small in items
            ]
            for _, polarity, test in reversed(items[0][0]):
                condition = test if polarity else _negate(test)
                lines = [cst.If(test=condition, body=cst.IndentedBlock(body=lines))]
            out.extend(lines)
        return out


def _writes(small: cst.CSTNode, self_name: str, name: str) -> bool:
    """Whether a hook statement touches `self.<name>`."""
    stack = [small]
    while stack:
        node = stack.pop()
        if (
            isinstance(node, cst.Attribute)
            and node.attr.value == name
            and isinstance(node.value, cst.Name)
            and node.value.value == self_name
        ):
            return True
        stack.extend(children(node))
    return False


def _negate(test: cst.BaseExpression) -> cst.BaseExpression:
    if isinstance(test, (cst.Name, cst.Attribute, cst.Call, cst.Subscript)) or test.lpar:
        operand = test
    else:
        operand = test.with_changes(lpar=[cst.LeftParen()], rpar=[cst.RightParen()])
    return cst.UnaryOperation(operator=cst.Not(), expression=operand)


def _chain_key(chain: tuple[ChainItem, ...]) -> tuple[tuple[int, bool], ...]:
    return tuple((node, polarity) for node, polarity, _ in chain)
