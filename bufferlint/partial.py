"""Facts for chosen top-level statements of a file, identical to what a whole-file
`extract.extract` finds for them.

The statements go to LibCST at their own lines: every other statement becomes a
triple-quoted string spanning the same lines, which LibCST reads as one token. So line
and column numbers need no mapping, and `extract`'s forward text search for each node
(from the last find, which never lies past the node searched for) finds what it would
find in the whole file, provided that:

- what the left-out statements import takes effect where they stood (class bases resolve
  through imports seen so far): CPython's parser reads those statements, and `extract`
  applies what they bind when it meets their placeholder;
- no kept statement defines a class whose `class Name` also occurs earlier in the file
  (the search for it could stop there in one text and not the other; `FileIndex.safe`);
- everything found lies inside the statement it belongs to (checked afterwards).

Anything else, or a parse failure, falls back to parsing the whole file.
"""

from __future__ import annotations

import ast
import bisect
import re
import warnings
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from bufferlint import trees
from bufferlint.facts import ClassFacts, FileFacts, ImportUpdate, ParseFailure, resolve_relative
from bufferlint.prefilter import CLASS, IMPORT, FileIndex, first_lines

if TYPE_CHECKING:
    from bufferlint.extract import Located

_NEWLINE = re.compile(r"\r\n|\r|\n")


@dataclass
class Parsed:
    """What LibCST found in one file so far: all of it (`whole`) or some statements."""

    imports: dict[str, str] = field(default_factory=dict)
    star_imports: list[str] = field(default_factory=list)
    statements: dict[int, list[ClassFacts]] = field(default_factory=dict)
    whole: list[ClassFacts] | None = None
    error: ParseFailure | None = None
    started: bool = False  # imports are known (every parse reads all import statements)

    def has(self, statements: Iterable[int]) -> bool:
        """Whether nothing is left to parse for `statements`."""
        if self.error is not None or self.whole is not None:
            return True
        return self.started and all(n in self.statements for n in statements)

    def classes(self) -> list[ClassFacts]:
        """Every class found so far, in document order."""
        if self.whole is not None:
            return list(self.whole)
        return [cls for n in sorted(self.statements) for cls in self.statements[n]]

    def facts(self, path: str, module: str) -> FileFacts:
        """A FileFacts with every class found so far (a fresh object each call)."""
        return FileFacts(
            path=path,
            module=module,
            imports=dict(self.imports),
            star_imports=list(self.star_imports),
            classes=self.classes(),
            error=self.error,
        )


def parse(
    text: str,
    path: str,
    module: str,
    is_package: bool,
    index: FileIndex,
    wanted: Iterable[int] | None,
    parsed: Parsed | None = None,
    compiles: bool = False,
) -> Parsed:
    """`parsed` extended by the statements `wanted` (None: the whole file). `compiles`:
    CPython parsed the whole text, so no part of it is nested too deeply to parse."""
    parsed = parsed or Parsed()
    if parsed.whole is not None or parsed.error is not None:
        return parsed
    if wanted is None or index.starts is None or len(index.starts) == 1:
        return _whole(text, path, module, is_package, compiles)
    starts = index.starts
    imports = {n for n, flag in enumerate(index.flags) if flag & IMPORT}
    new = set(wanted) - set(parsed.statements)
    if not new and parsed.started:
        return parsed
    keep = set(new)
    if not all(index.safe(n) for n in keep if index.flags[n] & CLASS):
        return _whole(text, path, module, is_package, compiles)
    # Import statements go to CPython's parser (many times cheaper than LibCST), and what
    # they bind takes effect where their placeholder stands; else LibCST reads them too.
    updates = _import_updates(text, starts, imports - keep, module, is_package)
    placeholder_imports = None
    if updates is None:
        keep |= imports
    else:
        placeholder_imports = [
            [u for n in run for u in updates.get(n, ())] for run in _runs(len(starts), keep)
        ]
    # LibCST: only once there is something to parse
    import libcst as cst

    from bufferlint.extract import extract, is_placeholder

    reduced_text = reduced(text, starts, keep)
    parsed_trees: list[tuple[cst.Module, Located]] = []
    facts = extract(
        reduced_text,
        path,
        module,
        is_package,
        placeholder_imports,
        compiles,
        (lambda *found: parsed_trees.append(found)) if trees.wanted() else None,
    )
    if facts.error is not None:
        return _whole(text, path, module, is_package, compiles)
    lines = first_lines(text, starts)
    found: dict[int, list[ClassFacts]] = {n: [] for n in keep}
    for cls in facts.classes:
        number = bisect.bisect_right(lines, cls.line) - 1
        end = lines[number + 1] if number + 1 < len(lines) else None
        if number not in keep or not _inside(cls, lines[number], end):
            return _whole(text, path, module, is_package, compiles)
        found[number].append(cls)
    parsed.imports, parsed.star_imports, parsed.started = facts.imports, facts.star_imports, True
    for number, classes in found.items():
        parsed.statements.setdefault(number, classes)
    for tree, located in parsed_trees:
        body = [statement for statement in tree.body if not is_placeholder(statement)]
        numbers = sorted(keep)
        statements = dict(zip(numbers, body, strict=False))
        # One top-level statement per piece, as the fixer splits the file.
        if len(body) == len(keep) and all(
            statement.name.value in index.names_in(number)
            for number, statement in statements.items()
            if isinstance(statement, cst.ClassDef)
        ):
            kept_lines = sum(lines[n + 1] - lines[n] if n + 1 < len(lines) else 1 for n in numbers)
            trees.keep(path, text, tree, statements, located, kept_lines)
    return parsed


def _whole(text: str, path: str, module: str, is_package: bool, compiles: bool) -> Parsed:
    from bufferlint.extract import extract

    facts = extract(text, path, module, is_package, compiles=compiles)
    return Parsed(facts.imports, facts.star_imports, {}, facts.classes, facts.error, True)


def _runs(count: int, keep: set[int]) -> list[list[int]]:
    """The statements each of `reduced`'s placeholders stands for, in order."""
    runs: list[list[int]] = []
    for number in range(count):
        if number in keep:
            continue
        if runs and runs[-1][-1] == number - 1:
            runs[-1].append(number)
        else:
            runs.append([number])
    return runs


def _import_updates(
    text: str, starts: Sequence[int], numbers: Iterable[int], module: str, is_package: bool
) -> dict[int, list[ImportUpdate]] | None:
    """What each of these top-level statements binds by import, read with CPython's
    parser as `extract` reads it: at module level and in `if`, `try`, `with`, loops and
    `match`, not in functions or classes. None if one is not CPython's syntax."""
    ends = [*starts[1:], len(text)]
    found: dict[int, list[ImportUpdate]] = {}
    for number in sorted(numbers):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                tree = ast.parse(text[starts[number] : ends[number]])
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            return None
        found[number] = list(_bindings(tree.body, module, is_package))
    return found


def _bindings(body: list[ast.stmt], module: str, is_package: bool) -> Iterator[ImportUpdate]:
    for stmt in body:
        if isinstance(stmt, ast.Import):
            for alias in stmt.names:
                if alias.asname:
                    yield alias.asname, alias.name
                else:
                    head = alias.name.split(".")[0]
                    yield head, head
        elif isinstance(stmt, ast.ImportFrom):
            base = stmt.module
            if stmt.level:
                base = resolve_relative(module, is_package, stmt.level, base)
            if base is None:
                continue
            for alias in stmt.names:
                if alias.name == "*":
                    yield None, base
                    break
                yield alias.asname or alias.name, f"{base}.{alias.name}" if base else alias.name
        elif not isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            for block in _ast_blocks(stmt):
                yield from _bindings(block, module, is_package)


# `try ... except*` (3.11) as a plain `try` where the Python has no such node (3.10).
_TRIES = (ast.Try, getattr(ast, "TryStar", ast.Try))


def _ast_blocks(stmt: ast.stmt) -> list[list[ast.stmt]]:
    """The statement blocks of a compound statement, as `extract._blocks` walks them."""
    if isinstance(stmt, (ast.If, ast.For, ast.AsyncFor, ast.While)):
        return [stmt.body, stmt.orelse]
    if isinstance(stmt, (ast.With, ast.AsyncWith)):
        return [stmt.body]
    if isinstance(stmt, _TRIES):
        return [stmt.body, *(h.body for h in stmt.handlers), stmt.orelse, stmt.finalbody]
    if isinstance(stmt, ast.Match):
        return [case.body for case in stmt.cases]
    return []


def _inside(cls: ClassFacts, first: int, end: int | None) -> bool:
    """Whether the class and everything found in it lies in lines [first, end)."""
    lines = [cls.line]
    for method in (*cls.methods.values(), *cls.setters.values()):
        lines.append(method.line)
        lines.extend(event.line for event in method.events)
    return all(first <= line and (end is None or line < end) for line in lines)


def reduced(text: str, starts: list[int] | tuple[int, ...], keep: set[int]) -> str:
    """`text` with each run of statements not in `keep` replaced by one triple-quoted
    string over the same lines: cheap to parse, and nothing moves."""
    newline = _NEWLINE.search(text)
    eol = newline.group() if newline else "\n"
    ends = [*starts[1:], len(text)]
    parts: list[str] = []
    skipped = 0
    for number, (start, end) in enumerate(zip(starts, ends, strict=True)):
        if number in keep:
            if skipped:
                parts.append(_placeholder(skipped, eol))
                skipped = 0
            parts.append(text[start:end])
        else:
            skipped += len(_NEWLINE.findall(text, start, end))
    if skipped:
        parts.append(_placeholder(skipped, eol))
    return "".join(parts)


def _placeholder(lines: int, eol: str) -> str:
    """A statement that spans `lines` line breaks."""
    return '"""' + eol * (lines - 1) + '"""' + eol
