"""Facts for chosen top-level statements of a file, identical to what a whole-file
`extract.extract` finds for them.

The statements go to LibCST at their own lines: every other statement becomes a
triple-quoted string spanning the same lines, which LibCST reads as one token. So line
and column numbers need no mapping, and `extract`'s forward text search for each node
(from the last find, which never lies past the node searched for) finds what it would
find in the whole file, provided that:

- every statement that imports is kept (class bases resolve through imports seen so far);
- no kept statement defines a class whose `class Name` also occurs earlier in the file
  (the search for it could stop there in one text and not the other; `FileIndex.safe`);
- everything found lies inside the statement it belongs to (checked afterwards).

Anything else, or a parse failure, falls back to parsing the whole file.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from bufferlint.facts import ClassFacts, FileFacts, ParseFailure
from bufferlint.prefilter import CLASS, IMPORT, FileIndex, first_lines

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
) -> Parsed:
    """`parsed` extended by the statements `wanted` (None: the whole file)."""
    parsed = parsed or Parsed()
    if parsed.whole is not None or parsed.error is not None:
        return parsed
    if wanted is None or index.starts is None or len(index.starts) == 1:
        return _whole(text, path, module, is_package)
    starts = index.starts
    imports = {n for n, flag in enumerate(index.flags) if flag & IMPORT}
    new = set(wanted) - set(parsed.statements)
    if not new and parsed.started:
        return parsed
    keep = new | imports
    if not all(index.safe(n) for n in keep if index.flags[n] & CLASS):
        return _whole(text, path, module, is_package)
    from bufferlint.extract import extract  # LibCST: only once there is something to parse

    facts = extract(reduced(text, starts, keep), path, module, is_package)
    if facts.error is not None:
        return _whole(text, path, module, is_package)
    lines = first_lines(text, starts)
    found: dict[int, list[ClassFacts]] = {n: [] for n in keep}
    for cls in facts.classes:
        number = bisect.bisect_right(lines, cls.line) - 1
        end = lines[number + 1] if number + 1 < len(lines) else None
        if number not in keep or not _inside(cls, lines[number], end):
            return _whole(text, path, module, is_package)
        found[number].append(cls)
    parsed.imports, parsed.star_imports, parsed.started = facts.imports, facts.star_imports, True
    for number, classes in found.items():
        parsed.statements.setdefault(number, classes)
    return parsed


def _whole(text: str, path: str, module: str, is_package: bool) -> Parsed:
    from bufferlint.extract import extract

    facts = extract(text, path, module, is_package)
    return Parsed(facts.imports, facts.star_imports, {}, facts.classes, facts.error, True)


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
