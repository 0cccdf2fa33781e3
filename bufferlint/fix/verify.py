"""`--fix --runtime`: a fix is written only once the runtime check shows it right.

The fixed texts go to a temporary mirror of each import root (real folders along the paths
to the fixed files, links to everything else: the user's tree is never written), and every
class a fix touched is checked there, in the runtime's worker processes, on each
configuration bufferlint.runtime.configurations gives. A class whose rebuilt buffers come out
wrong, or that crashes, in any configuration is not fixed: the fixes are planned again
without it, and its finding stays with the reason. Imports no torch, as the parent side of
the runtime never does.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bufferlint.engine import Settings
from bufferlint.findings import Finding
from bufferlint.fix.session import FixRun, fix_paths
from bufferlint.rules import RULES
from bufferlint.runtime import (
    RuntimeSettings,
    RuntimeTarget,
    packages_for,
    require,
    resolve_recipe,
    validate,
)

# Rounds of plan, check, plan again without the classes that failed, before the files
# still failing are left as they are, whole.
MAX_ROUNDS = 4
# Stages at which a check never got to materialize: the configuration may not exist at all.
_UNBUILT = ("import", "build")
# A buffer the configuration does not have (registered under a flag it turns off).
_ABSENT = "not a buffer of the module as built"
_DEVICE_NOT_JUDGED = "device not judged"

LEFT_OUT = "left out"  # a class that passed, in a file whose other fixes kept failing

Key = tuple[str, str]  # (path, class_name)


@dataclass(frozen=True)
class Touched:
    """A class a fix touched, and the buffers the fix rebuilds."""

    path: str
    module: str
    import_root: str
    class_name: str
    buffers: tuple[str, ...]
    hooks: tuple[str, ...]
    convention: str
    stand_in: bool
    files: tuple[str, ...]  # its own and those holding the code that builds its buffers

    @property
    def key(self) -> Key:
        return (self.path, self.class_name)

    def target(self, root: str) -> RuntimeTarget:
        """The class as imported from `root` (its own import root, or the mirror of it)."""
        path = os.path.join(root, os.path.relpath(self.path, self.import_root))
        return RuntimeTarget(
            path=path,
            module=self.module,
            import_root=root,
            class_name=self.class_name,
            buffers=self.buffers,
            hooks=self.hooks,
            convention=self.convention,
            stand_in=self.stand_in,
        )


@dataclass(frozen=True)
class Failure:
    """Why a class's fix is not written: the configuration and what went wrong in it."""

    class_name: str
    configuration: str
    problem: str  # value, device, dtype, meta, crash, timeout, unverified, or LEFT_OUT
    result: dict[str, Any]

    def line(self) -> str:
        if self.problem == LEFT_OUT:
            return f"left out with its file's other fixes: {self.result['summary']}"
        where = f" built with {self.configuration}" if self.configuration else ""
        return (
            f"the runtime check of its fix failed for `{self.class_name}`{where}: "
            f"{self.problem}: {self.result.get('summary', '')}"
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "written": False,
            "class_name": self.class_name,
            "configuration": self.configuration,
            "problem": self.problem,
            "verdict": self.result.get("verdict"),
            "summary": self.result.get("summary"),
        }


def fix_verified(
    paths: Sequence[str], settings: Settings, unsafe: bool, runtime: RuntimeSettings
) -> tuple[FixRun, dict[Key, Failure]]:
    """`fix_paths`, keeping only fixes the runtime check shows right, and why each class
    left out failed. Raises RuntimeUnavailable when torch (or a recipe's package) is
    missing."""
    failed: dict[Key, Failure] = {}
    skip: set[Key] = set()
    cache: dict[tuple[Touched, str], Failure | None] = {}
    # Each round leaves out at least one class more (a failed class is never touched
    # again), so the rounds end; after MAX_ROUNDS whole files are left out, to end sooner.
    for rounds in itertools.count(1):
        run = fix_paths(paths, settings, unsafe, skip=frozenset(skip))
        new = _check(run, runtime, cache)
        if not new:
            break
        failed.update(new)
        skip.update(new)
        if rounds >= MAX_ROUNDS:
            rest = _rest_of_files(run, new)
            skip.update(rest)
            why = {"summary": f"they still failed after {rounds} rounds", "verdict": None}
            failed.update({key: Failure(key[1], "", LEFT_OUT, why) for key in rest})
    for (path, class_name), failure in failed.items():
        run.problems.append(f"{path}: `{class_name}` not fixed: {failure.line()}")
    mark(run.result.findings, failed)
    return run, failed


def _check(
    run: FixRun, runtime: RuntimeSettings, cache: dict[tuple[Touched, str], Failure | None]
) -> dict[Key, Failure]:
    """The touched classes whose fix fails, each checked again only once the fixed texts of
    its files change (a later round leaves out another class's fix)."""
    touched = touched_classes(run.fixed, run.result.findings)
    digests = {c: _digest(run.texts, c.files) for c in touched}
    fresh = [c for c in touched if (c, digests[c]) not in cache]
    if fresh:
        encoded = {path: _encoded(run, path, text) for path, text in run.texts.items()}
        outcome = verify(fresh, encoded, runtime)
        for c in fresh:
            cache[c, digests[c]] = outcome.get(c.key)
    return {c.key: f for c in touched if (f := cache[c, digests[c]]) is not None}


def _encoded(run: FixRun, path: str, text: str) -> bytes:
    """The bytes `write` would write (an encoding error there is reported by `write`)."""
    try:
        return run.originals[path].encode(text)
    except UnicodeEncodeError:
        return text.encode("utf-8", "replace")


def _digest(texts: Mapping[str, str], files: Sequence[str]) -> str:
    digest = hashlib.sha256()
    for path in files:
        digest.update(f"{path}\0{texts.get(path, '')}\0".encode("utf-8", "surrogatepass"))
    return digest.hexdigest()


def _under(path: str, root: str) -> bool:
    return os.path.commonpath([path, root]) == root


def touched_classes(fixed: Sequence[Finding], left: Sequence[Finding]) -> list[Touched]:
    """One entry per fixed class: the buffers its findings named, less those still
    reported (a partial fix leaves them, with their reason)."""
    still = {(f.path, f.class_name): set(f.buffer_names) for f in left if f.code}
    grouped: dict[Key, list[Finding]] = {}
    for finding in fixed:
        grouped.setdefault((finding.path, finding.class_name), []).append(finding)
    out = []
    for key, findings in grouped.items():
        first = findings[0]
        names = dict.fromkeys(n for f in findings for n in f.buffer_names)
        out.append(
            Touched(
                path=first.path,
                module=first.module,
                import_root=first.import_root,
                class_name=first.class_name,
                buffers=tuple(n for n in names if n not in still.get(key, ())),
                hooks=tuple(first.hooks),
                convention=first.convention,
                stand_in=any(f.code and RULES[f.code].device_stand_in for f in findings),
                files=tuple(
                    dict.fromkeys([first.path, *(b.path for f in findings for b in f.buffers)])
                ),
            )
        )
    return out


def verify(
    classes: Sequence[Touched], texts: Mapping[str, bytes], runtime: RuntimeSettings
) -> dict[Key, Failure]:
    """The classes whose fix (`texts`: every fixed file's new bytes) fails the runtime
    check in some configuration, or that no configuration could check."""
    validate(runtime)
    recipes = {resolve_recipe(runtime.recipe, c.convention, c.hooks) for c in classes}
    require(*packages_for(recipes))
    from bufferlint.runtime.launch import target_job

    def jobs(pairs: Sequence[tuple[Touched, int]], roots: Mapping[str, str]) -> list[Any]:
        return [
            {**target_job(c.target(roots.get(c.import_root, c.import_root)), runtime), "way": way}
            for c, way in pairs
        ]

    with mirrors(texts, {c.import_root for c in classes}) as roots:
        firsts = [(c, 0) for c in classes]
        results = dict(zip(firsts, _run_jobs(jobs(firsts, roots), runtime), strict=True))
        rest = [
            (c, way)
            for (c, _), result in list(results.items())
            for way in range(1, result.get("configurations", 1))
        ]
        results.update(zip(rest, _run_jobs(jobs(rest, roots), runtime), strict=True))
    # A configuration that never built after the fix counts only if it built before it.
    unbuilt = [pair for pair, result in results.items() if result.get("stage") in _UNBUILT]
    before = dict(zip(unbuilt, _run_jobs(jobs(unbuilt, {}), runtime), strict=True))
    return {c.key: failure for c in classes if (failure := _judge(c, results, before)) is not None}


def _run_jobs(jobs: Sequence[dict[str, Any]], runtime: RuntimeSettings) -> list[dict[str, Any]]:
    """`run_jobs`, apart for the recipes whose package a worker imports at start
    (transformers: seconds per worker), so that the other recipes' workers are spared it."""
    from bufferlint.runtime.launch import run_jobs
    from bufferlint.runtime.worker import RECIPE_PRELOAD

    results: list[dict[str, Any]] = [{} for _ in jobs]
    groups: dict[str | None, list[int]] = {}
    for i, job in enumerate(jobs):
        groups.setdefault(RECIPE_PRELOAD.get(job["recipe"]), []).append(i)
    for chosen in groups.values():
        for i, result in zip(chosen, run_jobs([jobs[i] for i in chosen], runtime), strict=True):
            results[i] = result
    return results


def _judge(
    c: Touched,
    results: Mapping[tuple[Touched, int], dict[str, Any]],
    before: Mapping[tuple[Touched, int], dict[str, Any]],
) -> Failure | None:
    """The first configuration the fix gets wrong; or, when no configuration showed a
    rebuilt buffer right, the first's reason it could not."""
    mine = sorted(((way, r) for (k, way), r in results.items() if k == c), key=lambda p: p[0])
    right = False
    for way, result in mine:
        earlier = before.get((c, way))
        if result.get("stage") in _UNBUILT and earlier and earlier.get("stage") in _UNBUILT:
            continue  # not a configuration of this class, fix or no fix
        problem = problem_of(result)
        if problem is not None:
            return Failure(c.class_name, _configuration(result), problem, result)
        right = right or any(_right(b) for b in result.get("buffers", {}).values())
    if right:
        return None
    first = mine[0][1]
    return Failure(c.class_name, _configuration(first), "unverified", first)


def _right(buffer: Mapping[str, Any]) -> bool:
    """Right, or right in value where the CPU stand-in could not judge the device (the main
    passes still saw it on the module's device)."""
    return buffer["ok"] is True or buffer["reason"] == _DEVICE_NOT_JUDGED


def _configuration(result: Mapping[str, Any]) -> str:
    return str(result.get("configuration") or result.get("built_with") or "")


def problem_of(result: Mapping[str, Any]) -> str | None:
    """None when every rebuilt buffer the configuration has comes out right; else what
    is wrong: value, device, dtype, meta (never materialized), crash or timeout."""
    verdict = result["verdict"]
    if verdict == "error":
        return "timeout" if result.get("stage") == "timeout" else "crash"
    buffers: dict[str, dict[str, Any]] = result.get("buffers", {})
    wrong = [b["reason"] for b in buffers.values() if b["ok"] is False]
    if wrong:
        reason = wrong[0]
        for word in ("meta", "device", "dtype"):
            if word in reason:
                return word
        return "value"
    if verdict == "unconfirmed" and not buffers:
        return "unverified"  # it could not be built
    unjudged = {b["reason"] for b in buffers.values() if b["ok"] is None}
    return None if unjudged <= {_ABSENT, _DEVICE_NOT_JUDGED} else "unverified"


@contextmanager
def mirrors(texts: Mapping[str, bytes], roots: set[str]) -> Iterator[dict[str, str]]:
    """A temporary mirror of each import root with `texts` in place of those files:
    `{root: mirror}`. Removed afterwards, links and all (never what they point to)."""
    top = tempfile.mkdtemp(prefix="bufferlint-verify-")
    try:
        made = {}
        for number, root in enumerate(sorted(roots)):
            inside = {
                Path(os.path.relpath(p, root)): data for p, data in texts.items() if _under(p, root)
            }
            made[root] = os.path.join(top, str(number))
            _mirror(Path(root), Path(made[root]), inside)
        yield made
    finally:
        shutil.rmtree(top, ignore_errors=True)


def _mirror(root: Path, into: Path, files: Mapping[Path, bytes]) -> None:
    """Real folders on the way to each file of `files`, links for everything beside them;
    no `__pycache__`, so no byte code of the fixed files lands in the user's tree."""
    folders = {parent for rel in files for parent in rel.parents}

    def fill(rel: Path) -> None:
        (into / rel).mkdir(parents=True, exist_ok=True)
        with os.scandir(root / rel) as entries:
            for entry in entries:
                here = rel / entry.name
                if entry.name == "__pycache__":
                    continue
                if here in files:
                    (into / here).write_bytes(files[here])
                elif here in folders:
                    fill(here)
                else:
                    os.symlink(entry.path, into / here)

    fill(Path("."))


def _rest_of_files(run: FixRun, failed: Mapping[Key, Failure]) -> set[Key]:
    """The other fixed classes of the files with a class that failed."""
    paths = {path for path, _ in failed}
    return {(f.path, f.class_name) for f in run.fixed if f.path in paths} - set(failed)


def mark(findings: Sequence[Finding], failed: Mapping[Key, Failure]) -> None:
    """The findings of classes whose fix failed keep the reason: in the message, and as
    `fix_check` in `extra` (the CLI puts it in `runtime` once --runtime judged them);
    they lose their `[*]`, as --fix would not write them."""
    for finding in findings:
        failure = failed.get((finding.path, finding.class_name))
        if failure is None or not finding.code or "fix_check" in finding.extra:
            continue
        finding.fix = None
        finding.extra["fix_check"] = failure.as_json()
        finding.message += f"; fix not written: {failure.line()}"
