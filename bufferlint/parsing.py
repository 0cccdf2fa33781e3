"""LibCST's parser, made safe for any input.

LibCST's native parser recurses once per nesting level on the C stack, and some of its
grammar rules take quadratic time or memory in the depth: 2,000 nested parentheses or a
20,000-term `a and b and ...` overflow the main thread's 8 MiB stack and kill the process
with SIGSEGV, which no `except` can catch; 20,000 nested parentheses eat all memory. So:

- CPython's own parser goes first (a tenth of LibCST's cost): what it rejects as nested
  too deeply (it allows 200 parentheses and a few thousand levels of anything) cannot run
  on CPython either, and is reported as a parse failure without reaching LibCST;
- what it accepts is parsed, and walked, in a thread with a large stack and a high
  recursion limit, so that the deepest code CPython accepts (an `and` chain of any
  length, 3,000 chained subscripts) parses and is analysed like any other; and it is
  parsed without LibCST's check of each node (`parse_compiled`);
- any other SyntaxError is LibCST's to judge: it reads syntax newer than the running
  Python (PEP 695 on 3.11, say) and its message is the one reported.
"""

from __future__ import annotations

import ast
import os
import queue
import sys
import threading
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    import libcst as cst

T = TypeVar("T")

STACK_BYTES = 512 * 1024 * 1024  # address space only: pages are touched as needed
RECURSION_LIMIT = 100_000  # Python frames in that thread: about 5 KiB of stack each
# CPython's SyntaxErrors that mean "nested too deeply", not "not Python".
_NESTING_MESSAGES = (
    "too many nested parentheses",
    "f-string: expressions nested too deeply",
    "f-string: too many nested parenthesis",
)


class TooDeep(Exception):
    """Source nested beyond what CPython parses; `line` and `column` are 1-based."""

    def __init__(self, message: str, line: int = 1, column: int = 1) -> None:
        super().__init__(message)
        self.line = line
        self.column = column


def check_nesting(source: str) -> None:
    """Raises TooDeep when CPython's parser rejects `source` for its nesting, the one
    thing LibCST cannot be trusted with."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # invalid escapes and the like: not our business
            compile(source, "<bufferlint>", "exec", ast.PyCF_ONLY_AST, dont_inherit=True)
    except (RecursionError, MemoryError) as exc:
        name = type(exc).__name__
        raise TooDeep(f"too deeply nested to parse ({name} in CPython's parser)") from None
    except SyntaxError as exc:
        if exc.msg in _NESTING_MESSAGES:
            raise TooDeep(f"too deeply nested to parse: {exc.msg}", exc.lineno or 1, 1) from None
    except ValueError:  # NUL bytes: LibCST reports them in its own words
        pass


class _DeepThread:
    """One long-lived thread with a large stack that runs calls handed to it: starting a
    thread with a 512 MiB stack per parse cost more than parsing a small statement."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.calls: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        previous = threading.stack_size(STACK_BYTES)
        try:
            # A daemon: Ctrl-C interrupts the caller's wait; exiting does not wait for it.
            self.thread = threading.Thread(target=self._serve, name="bufferlint-deep", daemon=True)
            self.thread.start()
        finally:
            threading.stack_size(previous)

    def _serve(self) -> None:
        while (call := self.calls.get()) is not None:
            call()


_deep: _DeepThread | None = None
_submit = threading.Lock()


def run_deep(function: Callable[..., T], *args: object) -> T:
    """`function(*args)` in a thread with a large stack and recursion limit, for walks
    over trees as deep as CPython accepts; exceptions propagate."""
    global _deep
    if _deep is not None and threading.current_thread() is _deep.thread:
        return function(*args)  # already on the large stack
    results: list[T] = []
    errors: list[BaseException] = []
    done = threading.Event()

    def call() -> None:
        try:
            results.append(function(*args))
        except BaseException as exc:  # re-raised in the caller's thread
            errors.append(exc)
        finally:
            done.set()

    with _submit:
        if _deep is None or _deep.pid != os.getpid():  # none yet, or a forked child
            try:
                _deep = _DeepThread()
            except (ValueError, RuntimeError):  # no settable stacks, or no address space
                return function(*args)
        limit = sys.getrecursionlimit()
        sys.setrecursionlimit(max(limit, RECURSION_LIMIT))
        try:
            _deep.calls.put(call)
            done.wait()
        finally:
            sys.setrecursionlimit(limit)
    if errors:
        raise errors[0]
    return results[0]


def parse_module(source: str, compiles: bool = False) -> cst.Module:
    """`cst.parse_module`, except that it never crashes the process: raises TooDeep, or
    `cst.ParserSyntaxError`, or RecursionError/MemoryError past even the large stack.
    `compiles`: CPython parsed the text this source is part of, so it is not checked."""
    import libcst as cst  # here: a run that parses nothing never waits for its import

    if not compiles:
        check_nesting(source)
        return run_deep(cst.parse_module, source)
    return run_deep(parse_compiled, source)


def parse_compiled(source: str) -> cst.Module:
    """`cst.parse_module` for a text that CPython's parser accepted, without LibCST's check
    of each node it builds (`CSTNode.__post_init__`: a seventh of parsing, a cost LibCST's
    own comment would move out of the parser). That check guards trees built by hand; one
    built by the parser from valid Python passes it. The fixer's own nodes, and the parse
    that verifies a fix, are still checked. Node classes are shared by every thread, so
    nodes built elsewhere while this runs go unchecked too: call it on the large stack
    (`run_deep`), where bufferlint parses one text at a time."""
    import libcst as cst

    base = cst.CSTNode
    check = base.__dict__.get("__post_init__")
    if check is None:  # not where this LibCST version checks: parse as it does
        return cst.parse_module(source)
    base.__post_init__ = _unchecked  # type: ignore[method-assign]
    try:
        return cst.parse_module(source)
    finally:
        base.__post_init__ = check  # type: ignore[method-assign]


def _unchecked(self: object) -> None:
    pass
