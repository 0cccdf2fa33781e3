"""What a rule is: its documentation, its examples, its check, and what else may act on its
findings (the fixer, the runtime). The examples drive the rule's tests and its page, as in
Fixit, so that code, tests and docs cannot drift."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:  # the analysis imports LibCST, which `--version` must not wait for
    from bufferlint.analysis import Built, ClassReport
    from bufferlint.beyond import Tensors
    from bufferlint.conventions import Convention
    from bufferlint.model import Project

DOCS_URL = "https://github.com/bufferlint/bufferlint/blob/main/rules/{code}.md"


class Rule:
    """One rule. Subclasses set the class attributes; the registry holds one instance."""

    code: ClassVar[str]
    name: ClassVar[str]
    summary: ClassVar[str]
    what: ClassVar[str]
    why: ClassVar[str]
    example: ClassVar[str]  # must be flagged
    use_instead: ClassVar[str]  # must be clean
    fix_safety: ClassVar[str]
    options: ClassVar[str] = (
        "- `convention` (`--convention NAME`): the materialization convention findings are "
        "judged under; default `reset-parameters`.\n"
        "- `reset-methods` (`--reset-method NAME`, repeatable): the hooks of the "
        "`reset-methods` convention, your own loop over the model."
    )
    references: ClassVar[tuple[str, ...]] = ()
    fixable: ClassVar[bool] = False  # `--fix` can write a fix for its findings
    # What that fix does (bufferlint.fix.plan): rebuild the "buffers" or the "frozen"
    # parameters in the hook, move a hook's rebuild onto the buffer's "device", or
    # "register" an attribute as a buffer.
    fix_kind: ClassVar[str] = "buffers"
    runtime_checked: ClassVar[bool] = False  # `--runtime` can build and judge its findings
    # `--runtime` also runs the hooks with the default device away from the module's, so
    # that a tensor made on the default device shows up on one device (docs/runtime.md).
    device_stand_in: ClassVar[bool] = False
    level: ClassVar[str] = "error"  # SARIF and CI annotation level

    @property
    def url(self) -> str:
        return DOCS_URL.format(code=self.code)

    def __repr__(self) -> str:
        return f"<rule {self.code} {self.name}>"


@dataclass(frozen=True)
class JudgedClass:
    """What a class rule sees of one module class: the analysis of its buffers under its
    convention, and those whose missing rebuild belongs to it rather than to a parent."""

    report: ClassReport
    missing: Sequence[Built]
    convention: Convention
    path: str  # the file the class is in, for naming other files relative to it
    project: Project | None = None  # the class model, for the rules beyond buffers

    @cached_property
    def tensors(self) -> Tensors:
        """The class's tensors beyond buffers (bufferlint.beyond), computed once for the
        rules that ask."""
        from bufferlint import beyond

        assert self.project is not None
        return beyond.account(self.project, self.report.qualified, self.convention, self.report)


@dataclass(frozen=True)
class Flag:
    """A class rule's finding: the message and the buffers it names."""

    message: str
    buffers: Sequence[Built]


class ClassRule(Rule):
    """A rule judged once per module class."""

    def check(self, judged: JudgedClass) -> Flag | None:
        raise NotImplementedError


class DirectiveRule(Rule):
    """A rule judged on the suppression directives of a file (bufferlint.suppressions)."""

    def unused(self, kind: str, unused: Sequence[str], unknown: Sequence[str]) -> str | None:
        raise NotImplementedError


def describe(buffers: Sequence[Built], path: str, persistence: bool = True) -> str:
    """`cos` (line 12, non-persistent) and `sin` (line 13 of base.py, persistent); without
    `persistence`, for tensors that are no buffers: `x` (line 12)."""
    parts = []
    for b in buffers:
        where = f"line {b.line}" if b.path == path else f"line {b.line} of {relative(b.path, path)}"
        if persistence:
            where += ", persistent" if b.persistent else ", non-persistent"
        parts.append(f"`{b.name}` ({where})")
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def pronouns(buffers: Sequence[Built]) -> tuple[str, str, str]:
    """("buffer", "it", "its") or ("buffers", "them", "their")."""
    return ("buffer", "it", "its") if len(buffers) == 1 else ("buffers", "them", "their")


def caveats(judged: JudgedClass, buffers: Sequence[Built]) -> str:
    """What a message adds after its first clause: a guard that defeats a rebuild, and
    whether a checkpoint could repair the buffers."""
    text = ""
    guarded = [judged.report.guarded[b.name] for b in buffers if b.name in judged.report.guarded]
    if guarded:
        text += (
            f"; the rebuild at line {guarded[0].line} runs only if "
            f"`{guarded[0].condition}`, which does not hold after `to_empty()`"
        )
    text += _after_loading(judged, buffers)
    if not all(b.persistent for b in buffers):
        text += "; a checkpoint cannot restore non-persistent buffers"
    if judged.convention.dispatches() and any(b.persistent for b in buffers):
        text += "; a checkpoint restores persistent ones only if it holds them"
    return text


def _after_loading(judged: JudgedClass, buffers: Sequence[Built]) -> str:
    """Where persistent buffers go when some hooks run after the checkpoint is loaded
    (timm): into the from-scratch hook, since a post-load write overwrites the loaded value."""
    convention = judged.convention
    persistent = [b.name for b in buffers if b.persistent]
    if not convention.after_loading or not persistent:
        return ""
    late, scratch = convention.after_loading[0], convention.from_scratch
    quoted = ", ".join(f"`{n}`" for n in persistent)
    text = (
        f"; {quoted} {'is' if len(persistent) == 1 else 'are'} persistent: rebuild "
        f"{'it' if len(persistent) == 1 else 'them'} in `{scratch}`, not in `{late}`, "
        "which runs after a checkpoint is loaded and would overwrite the loaded value"
    )
    written = {n: judged.report.late[n] for n in persistent if n in judged.report.late}
    if written:
        name, line = next(iter(written.items()))
        text += f" (as `{late}` does to `{name}` at line {line})"
    return text


def rebuilder(judged: JudgedClass) -> str:
    """Who should have rebuilt the buffers: "`reset_parameters`", or for a dispatching
    convention the hook that sees the class ("`_init_weights` of `XModel`" for a model)."""
    convention = judged.convention
    if not convention.dispatches():
        return convention.hook_words()
    hook, report = convention.hooks[0], judged.report
    if report.judges == (report.qualified,):
        return f"`{hook}` of `{report.qualified.rpartition('.')[2]}`"
    if not report.judges:
        return f"the base `{hook}` of `{_base(convention)}`"
    return f"`{hook}`"


def advice(judged: JudgedClass, them: str, their: str) -> str:
    """How to rebuild them, in the convention's own terms."""
    convention = judged.convention
    if not convention.dispatches():
        return f"rebuild {them} there {placed(judged, their)}"
    owner = judged.report.qualified.rpartition(".")[2]
    branch = f"an `isinstance(module, {owner})` branch"
    if judged.report.judges == (judged.report.qualified,):
        return f"rebuild {them} there, in {branch}"
    return (
        f"add {branch} that rebuilds {them} to the `{convention.hooks[0]}` of the "
        f"`{_base(convention)}` subclass that holds `{owner}`"
    )


def _base(convention: Convention) -> str:
    return convention.bases[0].rpartition(".")[2]


def placed(judged: JudgedClass, their: str) -> str:
    """Where the convention's hook rebuilds buffers: "on their own device"."""
    return judged.convention.rebuild_where.format(their=their)


def relative(target: str, start: str) -> str:
    return os.path.relpath(target, os.path.dirname(start))
