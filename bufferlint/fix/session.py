"""Runs fixes: plans each finding's fix, proves it (the fixed file parses and the class is
no longer reported), and repeats lint-and-fix on the edited texts until nothing changes,
as ruff does. Nothing touches the disk until `write`.
"""

from __future__ import annotations

import difflib
import os
import pickle
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bufferlint import conventions
from bufferlint.cache import digest_of
from bufferlint.conventions import Convention
from bufferlint.engine import Result, Settings, lint
from bufferlint.extract import extract
from bufferlint.findings import Finding
from bufferlint.fix import dispatcher, files
from bufferlint.fix.edit import edits as _edits
from bufferlint.fix.edit import render
from bufferlint.fix.memo import FixMemo
from bufferlint.fix.plan import Plan, left, plan
from bufferlint.fix.replay import Unavailable
from bufferlint.fix.settled import Gaps, Settled, settled
from bufferlint.fix.workspace import Loaded, Workspace
from bufferlint.model import Project
from bufferlint.pool import LintWorkers
from bufferlint.prefilter import FileIndex
from bufferlint.rules import fixable
from bufferlint.sources import SourceError, SourceFile, read_source
from bufferlint.whole import facts_for, lint_facts

MAX_ROUNDS = 8
NO_FIX = "no automatic fix"


@dataclass
class FixRun:
    """The outcome of fixing in memory: new texts, what was fixed, what remains."""

    paths: Sequence[str]
    settings: Settings
    unsafe: bool
    originals: dict[str, files.SourceBytes] = field(default_factory=dict)
    texts: dict[str, str] = field(default_factory=dict)  # every file that changed
    fixed: list[Finding] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # one line each, with the path
    result: Result = field(default_factory=Result)  # findings left after fixing

    def diff(self) -> str:
        """A unified diff of every changed file, as `ruff --diff` prints it."""
        out = []
        for path, text in sorted(self.texts.items()):
            before = self.originals[path].text
            for line in difflib.unified_diff(
                before.splitlines(keepends=True),
                text.splitlines(keepends=True),
                fromfile=path,
                tofile=path,
            ):
                if not line.endswith(("\n", "\r")):
                    line += "\n\\ No newline at end of file\n"
                out.append(line)
        return "".join(out)

    def write(self) -> None:
        """Writes every changed file. A file that cannot be written is left as it was and
        becomes a problem; its findings are then reported from the disk again."""
        failed = set()
        for path, text in sorted(self.texts.items()):
            error = files.write(self.originals[path], text)
            if error is not None:
                failed.add(path)
                self.problems.append(f"{path}: not fixed: {error}")
        if failed:
            self.fixed = [f for f in self.fixed if f.path not in failed]
            self.result = lint(self.paths, self.settings)
            attach_fixes(self.result, self.settings, self.unsafe)


def attach_fixes(
    result: Result,
    settings: Settings,
    unsafe: bool = False,
    project: Project | None = None,
    edits: bool = True,
    splits: Mapping[str, FileIndex] | None = None,
    workers: LintWorkers | None = None,
) -> None:
    """Gives each BL001/BL002 finding its fix in ruff's JSON shape (applicability, message,
    edits: the fix on its own, or None without `edits`); says in the message why a finding
    has none. An unsafe fix is marked hidden unless `unsafe`, so that `[*]` shows only
    what `--fix` would apply. `project`, the class model the findings came from, spares
    parsing their files again, and `splits` (the lint's, by digest) splitting them again.
    A file that one of the lint's `workers` parsed is planned there, on the tree it kept
    (bufferlint.trees); what no worker could plan is planned here.
    """
    sources = _fixable_sources(result.findings)
    if project is None:
        loaded = [found[1] for found in map(_load, sources) if found is not None]
    else:
        loaded = [found for found in (_known(s, project) for s in sources) if found]
    if not loaded:
        return
    workspace = Workspace(loaded, project, splits)
    memo = FixMemo(settings.convention, unsafe, edits) if settings.cache else None
    pending = [
        f
        for f in result.findings
        if f.code in fixable()
        and f.path in workspace.files
        and (memo is None or not memo.recall(f, workspace))
    ]
    if workers is not None and workers.placed:
        pending = _attach_in_workers(pending, workspace, workers, settings, unsafe, edits)
    _attach(pending, workspace, settings.convention, unsafe, edits, memo)


def _known(source: SourceFile, project: Project) -> Loaded | None:
    """A file with the facts the model holds for it, which may be some classes only."""
    facts = project.modules.get(source.module)
    if facts is None or facts.path != source.path:
        found = _load(source)
        return None if found is None else found[1]
    try:
        return Loaded(source, read_source(source.path), facts)
    except SourceError:
        return None


def _fixable_sources(findings: Sequence[Finding]) -> list[SourceFile]:
    """The files with a finding to fix, in the order `discover` lists them."""
    sources = {
        f.path: SourceFile(f.path, f.module, f.import_root, _is_package(f.path))
        for f in findings
        if f.code in fixable()
    }
    return [sources[path] for path in sorted(sources, key=Path)]


def _is_package(path: str) -> bool:
    return os.path.basename(path) in ("__init__.py", "__init__.pyi")


def _attach(
    findings: Sequence[Finding],
    workspace: Workspace,
    convention: Convention,
    unsafe: bool,
    edits: bool = True,
    memo: FixMemo | None = None,
) -> None:
    """Plans each fix and renders its edits (and remembers the outcome in `memo`). The
    proof (`prove`) is left to `--fix`, as ruff checks a fix only when applying it:
    proving costs a parse of every fixed file."""
    for finding in findings:
        if finding.code not in fixable() or finding.path not in workspace.files:
            continue
        _attach_remembered(finding, workspace, convention, unsafe, edits, memo)


def _attach_remembered(
    finding: Finding,
    workspace: Workspace,
    convention: Convention,
    unsafe: bool,
    edits: bool,
    memo: FixMemo | None,
    gaps: Gaps | None = None,
) -> bool:
    """Plans one fix and remembers the outcome in `memo`. False, with nothing kept,
    where planning asked what `gaps`' copy of the model could not answer."""
    key = memo.key(finding) if memo is not None else ""
    workspace.reads.clear()
    workspace.asked.clear()
    _attach_one(finding, workspace, convention, unsafe, edits)
    if gaps is not None and gaps.names:
        return False
    if memo is not None:
        memo.keep(key, finding, workspace)
    workspace.trim()
    return True


def _attach_one(
    finding: Finding, workspace: Workspace, convention: Convention, unsafe: bool, edits: bool
) -> None:
    try:
        fix = _plan(finding, workspace, convention)
        after = render(fix.index, [fix]) if edits else None
    except Unavailable as exc:
        _no_fix(finding, str(exc))
        return
    except Exception as exc:  # a fixer bug: no fix, and the reason why
        _no_fix(finding, f"bufferlint failed to write it ({type(exc).__name__}: {exc})")
        return
    finding.fix = {
        "applicability": fix.applicability,
        "message": fix.message,
        "edits": None if after is None else _edits(workspace.files[finding.path].text, after),
    }
    if fix.applicability == "unsafe" and not unsafe:
        finding.extra["fix_hidden"] = True


# What planning sets on a finding: its fix, extra and message.
Planned = tuple[Any, dict[str, Any], str]


def _attach_in_workers(
    findings: Sequence[Finding],
    workspace: Workspace,
    workers: LintWorkers,
    settings: Settings,
    unsafe: bool,
    edits: bool,
) -> list[Finding]:
    """Plans each finding in the lint's worker that parsed its file, on the tree it kept
    and a copy of the class model (bufferlint.fix.settled); returns those left to plan
    here: in files no worker parsed, or whose plan looked up what the copy lacks."""
    tasks: dict[int, dict[str, list[Finding]]] = {}
    left = []
    for finding in findings:
        worker = workers.placed.get(finding.path)
        if worker is None:
            left.append(finding)
        else:
            tasks.setdefault(worker, {}).setdefault(finding.path, []).append(finding)
    if not tasks:
        return left
    # Pickled once for all the workers: it is most of what they are sent.
    model = pickle.dumps(settled(workspace.project), pickle.HIGHEST_PROTOCOL)
    calls = {}
    for worker, by_path in tasks.items():
        loaded = [workspace.files[path] for path in by_path]
        digests = (digest_of(file.text.encode("utf-8", "surrogatepass")) for file in loaded)
        splits = {d: workspace.splits[d] for d in digests if d in workspace.splits}
        groups = [(file.source, by_path[file.source.path]) for file in loaded]
        calls[worker] = (_attach_kept, (model, groups, splits, settings, unsafe, edits))
    for worker, outcomes in workers.call(calls).items():
        for path, group in tasks[worker].items():
            for finding, outcome in zip(group, outcomes[path], strict=True):
                if outcome is None:
                    left.append(finding)
                else:
                    finding.fix, finding.extra, finding.message = outcome
    return left


def _attach_kept(
    task: tuple[
        bytes,
        list[tuple[SourceFile, list[Finding]]],
        Mapping[str, FileIndex],
        Settings,
        bool,
        bool,
    ],
) -> dict[str, list[Planned | None]]:
    """In one of the lint's workers: its files' findings, planned; what planning sets on
    each, or None where the plan needs what the model's copy lacks (the main process
    plans those). Such a plan leaves the copy's memos incomplete, so the next finding
    gets a fresh copy."""
    pickled, files, splits, settings, unsafe, edits = task
    memo = FixMemo(settings.convention, unsafe, edits) if settings.cache else None

    def fresh() -> tuple[Settled, Workspace]:
        model: Settled = pickle.loads(pickled)
        loaded = [found for found in (_known(s, model.project) for s, _ in files) if found]
        return model, Workspace(loaded, model.project, splits)

    model, workspace = fresh()
    outcomes: dict[str, list[Planned | None]] = {}
    for source, group in files:
        found: list[Planned | None] = []
        outcomes[source.path] = found
        for finding in group:
            if source.path not in workspace.files:  # changed or gone since the lint
                found.append(None)
            elif _attach_remembered(
                finding, workspace, settings.convention, unsafe, edits, memo, model.gaps
            ):
                found.append((finding.fix, finding.extra, finding.message))
            else:
                found.append(None)
                model, workspace = fresh()
    return outcomes


def _no_fix(finding: Finding, reason: str) -> None:
    finding.fix = None
    finding.extra["no_fix"] = reason
    if NO_FIX not in finding.message:
        finding.message += f"; {NO_FIX}: {reason}"


def _plan(finding: Finding, workspace: Workspace, convention: Convention) -> Plan:
    """`plan`, where an unexpected failure becomes the reason there is no fix: a bug in
    the fixer must not stop a lint run. The fix follows the convention the finding was
    judged under (`auto` chooses per class)."""
    convention = judged_under(finding, convention)
    try:
        if convention.dispatches():
            return dispatcher.plan(finding, workspace, convention)
        return plan(finding, workspace, convention)
    except Unavailable:
        raise
    except Exception as exc:  # reported in the finding, not swallowed
        raise Unavailable(f"bufferlint failed to derive one ({type(exc).__name__}: {exc})") from exc


def judged_under(finding: Finding, run: Convention) -> Convention:
    """The convention a finding was judged under, or the run's for one that names none."""
    return conventions.named(finding.convention, finding.hooks) if finding.convention else run


def prove(
    workspace: Workspace, path: str, plans: Sequence[Plan], convention: Convention
) -> tuple[Loaded, list[tuple[Plan, str]]]:
    """The file with `plans` applied (its text and facts), and the plans whose class it
    still reports (or all, with the reason, when the result does not parse or cannot be
    rendered)."""
    loaded = workspace.files[path]
    try:
        text = render(plans[0].index, plans)
    except Exception as exc:  # a fixer bug: no fix, and the reason why
        reason = f"bufferlint failed to write it ({type(exc).__name__}: {exc})"
        return loaded, [(p, reason) for p in plans]
    source = loaded.source
    # The original passed CPython's nesting check (it parsed), and a fix adds at most two
    # levels of blocks around code copied from it: checking again would cost a parse.
    facts = extract(text, path, source.module, source.is_package, compiles=True)
    fixed = Loaded(source, text, facts)
    if facts.error is not None:
        reason = f"the fixed code would not parse ({facts.error.message})"
        return fixed, [(p, reason) for p in plans]
    project = workspace.make_project(replace=facts)
    failed = []
    for fix in plans:
        if not project.has_class(fix.qualified):
            failed.append((fix, "the fixed class could not be found again"))
            continue
        wrong = [
            n
            for n in left(project, fix, judged_under(fix.finding, convention))
            if n not in fix.unfixable
        ]
        if wrong:
            names = ", ".join(f"`{n}`" for n in wrong)
            failed.append((fix, f"the fixed hook would still not rebuild {names}"))
    return fixed, failed


def fix_paths(
    paths: Sequence[str],
    settings: Settings,
    unsafe: bool = False,
    skip: frozenset[tuple[str, str]] = frozenset(),
) -> FixRun:
    """Lints and fixes in memory until nothing changes (at most MAX_ROUNDS rounds), leaving
    the classes in `skip` (path, class name) as they are: --fix --runtime's failed ones."""
    run = FixRun(paths, settings, unsafe)
    # Only files with a finding to fix are read into the fixer: the lint (cached, parsing
    # little) finds them, and what the others report stays as it is.
    linted = lint(paths, settings)
    sources = _fixable_sources(linted.findings)
    fixable = {source.path for source in sources}
    loaded: dict[str, Loaded] = {}
    for source in sources:
        found = _load(source)
        if found is not None:
            run.originals[source.path], loaded[source.path] = found
    # A fix only adds rebuilds, so it can clear findings but never make one: the lint of
    # the loaded files alone keeps to the classes the whole lint reported (it lacks the
    # other files, whose models may judge these files' classes: bufferlint.dispatch).
    reported = {(f.path, f.class_name) for f in linted.findings}
    for _ in range(MAX_ROUNDS):
        run.result = _lint_loaded(sources, loaded, settings, reported)
        if not _round(run, sources, loaded, settings, unsafe, skip):
            break
    else:
        run.result = _lint_loaded(sources, loaded, settings, reported)
    others = [f for f in linted.findings if f.path not in fixable]
    run.result.findings = sorted([*others, *run.result.findings], key=Finding.sort_key)
    run.result.files = linted.files
    run.texts = {
        path: item.text for path, item in loaded.items() if item.text != run.originals[path].text
    }
    _attach(run.result.findings, Workspace(loaded.values()), settings.convention, unsafe)
    run.problems = list(dict.fromkeys(run.problems))
    return run


def _load(source: SourceFile) -> tuple[files.SourceBytes, Loaded] | None:
    try:
        raw = files.SourceBytes.read(source.path)
    except SourceError:
        return None  # the lint reports it as unreadable
    facts = extract(raw.text, source.path, source.module, source.is_package)
    return raw, Loaded(source, raw.text, facts)


def _lint_loaded(
    sources: Sequence[SourceFile],
    loaded: dict[str, Loaded],
    settings: Settings,
    reported: set[tuple[str, str]],
) -> Result:
    """The findings for `sources`, with the current texts of those loaded, on `reported`
    classes (or a file's errors)."""
    facts = [loaded[s.path].facts if s.path in loaded else facts_for(s) for s in sources]
    texts = {path: item.text for path, item in loaded.items()}
    result = lint_facts(sources, facts, settings, texts=texts)
    result.findings = [
        f for f in result.findings if not f.code or (f.path, f.class_name) in reported
    ]
    return result


def _round(
    run: FixRun,
    sources: Sequence[SourceFile],
    loaded: dict[str, Loaded],
    settings: Settings,
    unsafe: bool,
    skip: frozenset[tuple[str, str]],
) -> bool:
    """Applies every fix it can prove; True if any file changed."""
    workspace = Workspace(loaded.values())
    plans: dict[str, list[Plan]] = {}
    for finding in run.result.findings:
        if finding.code not in fixable() or finding.path not in loaded:
            continue
        if (finding.path, finding.class_name) in skip:
            continue
        try:
            fix = _plan(finding, workspace, settings.convention)
        except Unavailable:
            continue
        if fix.applicability == "safe" or unsafe:
            plans.setdefault(finding.path, []).append(fix)
    # A class whose ancestor is fixed in this round waits: the ancestor's new hook changes
    # what its own fix must be (calling super(), or not rebuilding the ancestor's buffers).
    fixed_now = {fix.qualified for group in plans.values() for fix in group}
    project = workspace.project
    changed = False
    for path, group in plans.items():
        group = [p for p in group if not fixed_now & set(project.mro(p.qualified)[1:])]
        while group:
            fixed, failed = prove(workspace, path, group, settings.convention)
            if not failed:
                break
            for fix, reason in failed:
                run.problems.append(f"{path}: `{fix.finding.class_name}` not fixed: {reason}")
            bad = {id(fix) for fix, _ in failed}
            group = [p for p in group if id(p) not in bad]
        if not group:
            continue
        loaded[path] = fixed
        run.fixed.extend(p.finding for p in group)
        changed = True
    return changed
