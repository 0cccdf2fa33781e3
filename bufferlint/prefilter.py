"""Which top-level statements LibCST must parse, decided from raw text.

Parsing is what a lint of a large tree costs, yet only a class whose construction
reaches a buffer can be reported. Reaching one needs a *builder* somewhere in the class's
MRO: a class whose own code calls `register_buffer` or assigns `nn.Buffer(...)`, so whose
statement contains the text `register_buffer` or `Buffer`. Every other class on the way
names its base in its `class X(...)` header, or an `import ... as` alias of that base.
So, without parsing:

- `index` splits a file into top-level statements and records its class headers;
- `reach` follows headers, from the statements that hold those tokens, to every class
  that may inherit a builder.

Only those statements (plus every statement that imports, since names resolve through
imports) go to LibCST, at their own line numbers; the engine fills in any other class
the class model asks for. Whether a statement holds a class or an import is decided
conservatively: a mention in a comment or string counts too.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from bufferlint.conventions import DISPATCHERS
from bufferlint.facts import FACTORIES

# What a builder's code must contain: `self.register_buffer(...)`, or a call of
# `torch.nn.Buffer` under its own name or an alias that the file imports it as.
TOKENS = ("register_buffer", "Buffer")
_CALL = r"\s*(?:\\\s*)*\("
# The other tensors the rules judge start from a statement whose text shows them: a
# frozen parameter (`nn.Parameter(t, requires_grad=False)`, or `self.p = nn.Parameter(t)`
# then `self.p.requires_grad_(False)`), or an attribute assigned a factory call
# (`self.x = torch.zeros(n)`, bufferlint.facts.FACTORY). The text of each is a token too.
_FREEZES = re.compile(r"requires_grad(?:_\(\s*False\s*\)|\s*=\s*False)")
_FROZEN_ATTR = re.compile(r"(\w+\s*\.\s*\w+)\s*\.\s*\Z")  # `self.p.` before `requires_grad`
_OPENING = 2000  # characters looked at for the call that a `requires_grad=False` is in
# An attribute assigned a factory call: the text after its `=` up to the factory's name,
# and its target up to the `=` (on the `=`'s line): an attribute of a name, as the walker
# reads `self.x = ...` (not `self.model.x = ...`). Each is matched only behind a name
# that `str.find` meets: a pattern starting with `.` would try every position of a text.
_VALUE = re.compile(r"\s*[(\[{]?\s*(?:(?:\w+|\"[^\"\r\n]*\"|'[^'\r\n]*')\s*:\s*)?(?:\w+\s*\.\s*)*")
_TARGET = re.compile(r"(?<![\w.])\w+\s*\.\s*\w+\s*(?::[^=\r\n]*)?\Z")
_CALLED = re.compile(r"\s*\(")
_BEHIND = 160  # characters looked at before a factory's name for its `=`


def _holders(text: str, parameters: Sequence[str] = ("Parameter",)) -> Iterator[int]:
    """Offsets of the statements' texts that hold a frozen parameter or an attribute
    assigned a factory call (where the name of the factory starts). `parameters`: the
    names `nn.Parameter` goes by in the file."""
    at = text.find("requires_grad")
    while at >= 0:
        if (
            _FREEZES.match(text, at)
            and (at == 0 or not _WORD_CHAR.match(text, at - 1))
            and _freezes_parameter(text, at, parameters)
        ):
            yield at
        at = text.find("requires_grad", at + 13)
    for name in FACTORIES:
        at = text.find(name)
        while at >= 0:
            end = at + len(name)
            if (at == 0 or not _WORD_CHAR.match(text, at - 1)) and _CALLED.match(text, end):
                equal = text.rfind("=", max(0, at - _BEHIND), at)
                if (
                    equal > 0
                    and text[equal - 1] not in "=!<>+-*/%&|^@:"
                    and _VALUE.fullmatch(text, equal + 1, at)
                    and _TARGET.search(text, text.rfind("\n", 0, equal) + 1, equal)
                ):
                    yield at
            at = text.find(name, end)


def _freezes_parameter(text: str, at: int, parameters: Sequence[str]) -> bool:
    """Whether the `requires_grad` at `at` may freeze a parameter: the keyword of a call
    of `Parameter` (a call whose arguments hold strings or comments counts too), or
    `self.p.requires_grad_(False)` (or `= False`) after an assignment of `self.p` that a
    mention of `Parameter` follows."""
    line = text[text.rfind("\n", 0, at) + 1 : at]
    if "#" in line and not any(quote in line for quote in "'\""):
        return False  # in a comment
    before = text[max(0, at - _OPENING) : at]
    attribute = _FROZEN_ATTR.search(before)
    if attribute is not None:
        target = re.escape(re.sub(r"\s+", "", attribute.group(1))).replace(r"\.", r"\s*\.\s*")
        assigned = re.search(rf"\b{target}\s*(?::[^=\r\n]*)?=(?!=)", text[:at])
        return assigned is not None and any(
            text.find(name, assigned.end(), at) >= 0 for name in parameters
        )
    if before.rstrip().endswith("."):
        return False  # `x.requires_grad = False` on anything but an attribute: no parameter
    depth = 0
    for position in range(len(before) - 1, -1, -1):
        char = before[position]
        if char in "'\"#":
            return True  # the parentheses cannot be read: a call of anything
        if char in ")]}":
            depth += 1
        elif char in "([{":
            if depth == 0:
                callee = before[:position].rstrip()
                return char == "(" and any(callee.endswith(name) for name in parameters)
            depth -= 1
    return len(before) == _OPENING  # no opening within reach: a long call of anything


def _parameter_names(aliases: Iterable[tuple[str, str]]) -> list[str]:
    return ["Parameter", *(alias for name, alias in aliases if name == "Parameter")]


def _builder_tokens(text: str, aliases: Iterable[tuple[str, str]]) -> Iterator[int]:
    """Offsets of a builder's tokens: `register_buffer` anywhere, calls of `Buffer` or an
    alias."""
    at = text.find("register_buffer")
    while at >= 0:
        yield at
        at = text.find("register_buffer", at + 1)
    names = ["Buffer", *(alias for name, alias in aliases if name == "Buffer")]
    for name in dict.fromkeys(names):
        for match in _words(re.compile(re.escape(name) + _CALL), text):
            yield match.start()


# Statement flags. DISPATCH: the statement mentions a dispatcher (`_init_weights`), whose
# class judges the modules of its file under a dispatching convention; BUILDS: it holds a
# builder's token (its TOKEN may also be a frozen parameter's or a factory's).
TOKEN, IMPORT, CLASS, DISPATCH, BUILDS = 1, 2, 4, 8, 16

_Q3S, _Q3D = "'" * 3, '"' * 3
_STRING_OR_COMMENT = re.compile(
    r"#[^\r\n]*+"
    + f"|{_Q3S}(?:[^'\\\\]++|\\\\.|'(?!''))*+{_Q3S}"
    + f'|{_Q3D}(?:[^"\\\\]++|\\\\.|"(?!""))*+{_Q3D}'
    + r"|'(?:[^'\\\r\n]++|\\.)*+'"
    + r'|"(?:[^"\\\r\n]++|\\.)*+"',
    re.S,
)
# A line that may start a top-level statement: code in column 0 that continues nothing.
_LINE_START = re.compile(r"^(?=[^\s#)\]}])(?!(?:else|elif|except|finally)\b)", re.M)
# Patterns start with a literal, which `re` scans for fast; `_words` checks what a
# leading `\b` would (with `\b` first, `re` tries every position).
_HEADER = re.compile(r"class\s+(\w+)\s*")
# `class` split from its name or bases by a backslash: headers cannot be read reliably.
_ODD = re.compile(r"class\s*\\|class\s+\w+\s*\\")
_IMPORT_WORD = re.compile(r"import\b")
_IMPORT_STATEMENT = re.compile(r"import\s*(?:\([^)]*\)|[^\r\n]*(?:\\\r?\n[^\r\n]*)*)")
_WORD_CHAR = re.compile(r"\w")
_ALIAS = re.compile(r"([A-Za-z_]\w*)\s+as\s+([A-Za-z_]\w*)")
_WORD = re.compile(r"\w+")
_DOTTED = re.compile(r"([A-Za-z_][\w.]*)(\s*=(?!=))?")
_FROM = re.compile(r"from\s+(\.*[\w.]*)\s+import\s*(\([^)]*\)|[^\r\n]*(?:\\\r?\n[^\r\n]*)*)")
_IMPORT = re.compile(r"import\s+([^\r\n]*(?:\\\r?\n[^\r\n]*)*)")
_COMMENT = re.compile(r"#[^\r\n]*")
_NAME = re.compile(r"([\w.]+)(?:\s+as\s+(\w+))?")
_NEWLINES = re.compile(r"\r\n|\r|\n")
_DEFINITION = re.compile(r"(?:@|def\b|class\b|async\s+def\b)")


@dataclass(frozen=True)
class Header:
    """One `class Name` in the text, also in comments and strings; `real` when it reads
    as a header (`class Name(`, `class Name:`), not prose."""

    name: str
    offset: int
    bases: frozenset[str]  # every word between the parentheses
    real: bool
    dotted: tuple[str, ...] = ()  # the dotted names between them, keywords left out


@dataclass
class FileIndex:
    """What the prefilter knows about one file's text, without parsing it."""

    tokens: bool
    headers: tuple[Header, ...]
    aliases: tuple[tuple[str, str], ...]  # (name, local alias) from import statements
    bindings: tuple[tuple[str, str], ...]  # (local name, what it imports, dots kept)
    odd: bool  # headers may be missing: never split, always parse whole
    # Mentions a dispatcher (`_init_weights`), whose models judge the classes of their file
    # and of the files they import; `by_name`: one tests class names (`__name__`), which
    # reaches classes of any file.
    dispatch: bool = False
    by_name: bool = False
    builds: bool = False  # holds a builder's own tokens (`register_buffer`, `Buffer`)
    starts: tuple[int, ...] | None = None  # top-level statement offsets, once split
    flags: bytes = b""  # TOKEN | IMPORT | CLASS | DISPATCH | BUILDS per statement
    # Per statement and per name, built at first use: scanning every header on each call
    # is quadratic in a file of thousands of classes.
    _lookups: tuple[dict[int, list[str]], dict[str, list[int]], dict[str, int]] | None = field(
        default=None, init=False, repr=False, compare=False
    )

    def statement_of(self, offset: int) -> int:
        """The statement that holds `offset` (needs `split`)."""
        assert self.starts is not None
        return bisect.bisect_right(self.starts, offset) - 1

    def split(self, text: str) -> None:
        """Finds the top-level statements and flags them; an odd file stays one."""
        if self.starts is not None:
            return
        self.starts = tuple([0] if self.odd else statements(text))
        flags = bytearray(len(self.starts))
        for offset in _builder_tokens(text, self.aliases):
            flags[self.statement_of(offset)] |= TOKEN | BUILDS
        for offset in _holders(text, _parameter_names(self.aliases)):
            flags[self.statement_of(offset)] |= TOKEN
        for match in _words(_IMPORT_WORD, text):
            number = self.statement_of(match.start())
            if self.odd or not _DEFINITION.match(text, self.starts[number]):
                flags[number] |= IMPORT
        for header in self.headers:
            if header.real:
                flags[self.statement_of(header.offset)] |= CLASS
        for name in DISPATCHERS:
            at = text.find(name)
            while at >= 0:
                flags[self.statement_of(at)] |= DISPATCH
                at = text.find(name, at + len(name))
        self.flags = bytes(flags)

    def _lookup(self) -> tuple[dict[int, list[str]], dict[str, list[int]], dict[str, int]]:
        """Real headers' names per statement and statements per name; the first offset of
        every header's name (needs `split`)."""
        if self._lookups is None:
            names: dict[int, list[str]] = {}
            statements: dict[str, list[int]] = {}
            first: dict[str, int] = {}
            for header in self.headers:
                first[header.name] = min(first.get(header.name, header.offset), header.offset)
                if header.real:
                    number = self.statement_of(header.offset)
                    names.setdefault(number, []).append(header.name)
                    statements.setdefault(header.name, []).append(number)
            self._lookups = names, statements, first
        return self._lookups

    def names_in(self, statement: int) -> list[str]:
        """Class names that the statement's headers define (needs `split`)."""
        return list(self._lookup()[0].get(statement, ()))

    def defining(self, name: str) -> list[int]:
        """The statements with a header for `name` (needs `split`)."""
        return sorted(set(self._lookup()[1].get(name, ())))

    def safe(self, statement: int) -> bool:
        """Whether LibCST finds this statement's classes at the same lines when earlier
        class statements are left out: the forward search for `class Name` cannot stop
        earlier only if no `class Name` occurs before the statement."""
        assert self.starts is not None
        start = self.starts[statement]
        first = self._lookup()[2]
        return all(first[name] >= start for name in self.names_in(statement))


def index(text: str, split: bool = False) -> FileIndex:
    """The prefilter's view of one file; `split` also finds statements now (the engine
    splits files with tokens at once, others only when a statement is needed)."""
    headers = []
    for match in _words(_HEADER, text):
        bases: frozenset[str] = frozenset()
        dotted: tuple[str, ...] = ()
        at = match.end()
        if text.startswith("[", at):  # type parameters (3.12)
            at = _closing(text, at, "[", "]")
            while at < len(text) and text[at] in " \t":
                at += 1
        if text.startswith("(", at):
            inside = text[at + 1 : _closing(text, at, "(", ")")]
            bases = frozenset(_WORD.findall(inside))
            dotted = tuple(m.group(1) for m in _DOTTED.finditer(inside) if not m.group(2))
        real = text.startswith(("(", ":", "["), match.end())
        headers.append(Header(match.group(1), match.start(), bases, real, dotted))
    aliases = {
        pair
        for statement in _words(_IMPORT_STATEMENT, text)
        for pair in _ALIAS.findall(statement.group())
        if pair[0] != pair[1]
    }
    holders = _holders(text, _parameter_names(aliases))
    builds = any(token in text for token in TOKENS)
    result = FileIndex(
        tokens=builds or next(holders, None) is not None,
        headers=tuple(headers),
        aliases=tuple(sorted(aliases)),
        bindings=tuple(sorted(set(_bindings(text)))),
        odd=any(_words(_ODD, text)) and any(_words(_ODD, _code(text))),
        dispatch=any(name in text for name in DISPATCHERS),
        by_name=any(_tests_names(text, name) for name in DISPATCHERS),
        builds=builds,
    )
    if split or result.odd:
        result.split(text)
    return result


def _tests_names(text: str, dispatcher: str) -> bool:
    """Whether a definition of `dispatcher` mentions `__name__` before the next definition
    or class at its own indentation or less."""
    for match in re.finditer(rf"^([ \t]*)def\s+{re.escape(dispatcher)}\b", text, re.M):
        indent = len(match.group(1))
        end = re.compile(rf"^[ \t]{{0,{indent}}}(?:def|class|@)\b", re.M).search(text, match.end())
        if "__name__" in text[match.end() : end.start() if end else len(text)]:
            return True
    return False


def _bindings(text: str) -> Iterator[tuple[str, str]]:
    """(local name, imported dotted name) for every import statement; `*` for a star
    import. Relative names keep their dots. Imports in strings count too."""
    for match in _words(_FROM, text):
        base = match.group(1)
        names = _COMMENT.sub("", match.group(2)).strip("()")
        if names.strip() == "*":
            yield "*", base
            continue
        for item in _NAME.finditer(names):
            name, alias = item.group(1), item.group(2)
            if name != "as":
                yield alias or name, f"{base}.{name}" if base.strip(".") else base + name
    for match in _words(_IMPORT, text):
        line_start = text.rfind("\n", 0, match.start()) + 1
        if text[line_start : match.start()].strip():  # `from x import`, or `, import`
            continue
        for item in _NAME.finditer(_COMMENT.sub("", match.group(1))):
            name, alias = item.group(1), item.group(2)
            if name != "as":
                yield (alias, name) if alias else (name.split(".")[0], name.split(".")[0])


def _words(pattern: re.Pattern[str], text: str) -> Iterator[re.Match[str]]:
    """Matches of `pattern` that start a word."""
    for match in pattern.finditer(text):
        start = match.start()
        if start == 0 or not _WORD_CHAR.match(text, start - 1):
            yield match


def _closing(text: str, at: int, opening: str, closing: str) -> int:
    """The offset of the bracket that closes the one at `at` (or the end of text)."""
    depth = 0
    for position in range(at, len(text)):
        char = text[position]
        if char == opening:
            depth += 1
        elif char == closing:
            depth -= 1
            if depth == 0:
                return position
    return len(text)


def _code(text: str) -> str:
    """`text` with strings and comments blanked, offsets kept."""
    return _STRING_OR_COMMENT.sub(_blank, text)


def _blank(match: re.Match[str]) -> str:
    """A string or comment as its first character then blanks, line feeds kept: a line
    that starts with a string still starts a statement."""
    text = match.group()
    if "\n" not in text:
        return text[0] + " " * (len(text) - 1)
    return text[0] + "\n".join(" " * len(line) for line in text[1:].split("\n"))


def statements(text: str) -> list[int]:
    """Offsets where top-level statements start: column-0 code outside brackets, strings,
    continuation lines and decorators. A wrong split cannot go unnoticed: a statement cut
    inside a string or bracket does not parse, and the engine then parses the whole file."""
    code = _code(text)
    starts = [0]
    depth = 0
    previous = 0
    decorated = code.startswith("@")  # the statement so far is decorators only
    count = code.count
    for match in _LINE_START.finditer(code):
        position = match.start()
        if position == 0:
            continue
        depth += (
            count("(", previous, position)
            + count("[", previous, position)
            + count("{", previous, position)
            - count(")", previous, position)
            - count("]", previous, position)
            - count("}", previous, position)
        )
        previous = position
        if depth != 0 or _continued(code, position):
            continue
        if decorated:
            decorated = code.startswith("@", position)
            continue
        starts.append(position)
        decorated = code.startswith("@", position)
    return starts


def _continued(code: str, position: int) -> bool:
    """Whether the last code line before `position` ends in a backslash."""
    end = position
    while end > 0:
        begin = code.rfind("\n", 0, end - 1) + 1
        line = code[begin:end].rstrip()
        if line:
            return line.endswith("\\")
        end = begin
    return False


def first_lines(text: str, starts: Sequence[int]) -> list[int]:
    """The 1-based line on which each statement starts."""
    lines = []
    line, previous = 1, 0
    plain = "\r" not in text  # only `\n` ends lines: counted without a regex
    for start in starts:
        line += (
            text.count("\n", previous, start)
            if plain
            else len(_NEWLINES.findall(text, previous, start))
        )
        previous = start
        lines.append(line)
    return lines


def reach(indexes: Sequence[FileIndex], seeds: Iterable[str]) -> tuple[set[str], list[list[int]]]:
    """Class names that may inherit from `seeds` (builders), and per file the positions
    (into `headers`) of the headers that define them; aliases carry names along."""
    by_base: dict[str, list[tuple[int, int]]] = {}
    renames: dict[str, set[str]] = {}
    for number, found in enumerate(indexes):
        for position, header in enumerate(found.headers):
            for word in header.bases if header.real else ():
                by_base.setdefault(word, []).append((number, position))
        for name, alias in found.aliases:
            renames.setdefault(name, set()).add(alias)
    names = set(seeds)
    queue = list(names)
    marked: list[list[int]] = [[] for _ in indexes]
    while queue:
        word = queue.pop()
        for alias in renames.get(word, ()):
            if alias not in names:
                names.add(alias)
                queue.append(alias)
        for number, position in by_base.get(word, ()):
            marked[number].append(position)
            name = indexes[number].headers[position].name
            if name not in names:
                names.add(name)
                queue.append(name)
    return names, [sorted(set(m)) for m in marked]
