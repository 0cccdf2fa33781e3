"""Whole-ecosystem sweep: bufferlint over complete real releases, then `--fix` over copies.

    python benchmarks/sweep.py                       # every package below
    python benchmarks/sweep.py --packages torch,timm --cache ~/.cache/bufferlint-sweep
    python benchmarks/sweep.py --offline             # only what the cache already holds
    python benchmarks/sweep.py --by-convention       # also: findings per convention `auto` chose

Each release is fetched with `pip download --no-deps` (the installed `torch` package is used
as it is) into the cache folder, unpacked, and:

1. linted whole: a crash is a traceback, an exit status outside {0, 1} or a time-out;
2. copied and fixed (`--fix --unsafe-fixes`, so that every fix kind is exercised): the same
   crash rules, and every file the fix changed must still parse (LibCST, and CPython when the
   original compiled);
3. fixed again: that must change no file.

It prints a Markdown table (package, version, files, findings, files that do not parse,
fixes applied, crashes, seconds) and exits 1 if anything crashed. With `--by-convention`, each
tree is also linted whole with `--output-format json` under `auto` and under
`reset-parameters`, and a second table gives the findings of each and `auto`'s by the
convention it judged them under (docs/conventions.md, "auto on the sweep"). Real code stays in the
cache folder, never in the repository.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import warnings
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

# name on PyPI -> what `pip download` is asked for. "torch" is the installed package.
PACKAGES = {
    "torch": None,
    "torchvision": "torchvision",
    "timm": "timm",
    "transformers": "transformers",
    "litgpt": "litgpt",
    "torchtune": "torchtune",
    "diffusers": "diffusers",
    "accelerate": "accelerate",
    "peft": "peft",
    "open_clip_torch": "open_clip_torch",
    "ultralytics": "ultralytics",
}
DEFAULT_CACHE = Path(tempfile.gettempdir()) / "bufferlint-sweep"
_FOUND = re.compile(r"^Found \d+ errors? in (\d+) files?\.(?: (\d+) files? could not be parsed\.)?")
_CLEAN = re.compile(r"^All checks passed! \((\d+) files? checked\)")
_FIXED = re.compile(r"^Found \d+ errors? \((\d+) fixed, (\d+) remaining")
_LINE = re.compile(r"^.+?:\d+:\d+: (BL\d+|\S)")


@dataclass
class Row:
    package: str
    version: str
    files: int = 0
    findings: int = 0
    unparsable: int = 0
    fixes: int = 0
    crashes: int = 0
    seconds: float = 0.0
    problems: list[str] = field(default_factory=list)  # what each crash was
    # --by-convention: findings under reset-parameters, auto's per convention, exit statuses
    plain: int = 0
    chosen: dict[str, int] = field(default_factory=dict)
    exits: str = ""


@dataclass
class Run:
    """One bufferlint invocation: its exit status, output, and whether it crashed."""

    status: int | None
    stdout: str
    stderr: str
    crash: str = ""


def bufferlint(args: list[str], timeout: float) -> Run:
    """Runs the CLI in a fresh interpreter, so that even a hard crash is only a result."""
    command = [sys.executable, "-m", "bufferlint", "--output-format", "concise", *args]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return Run(None, "", "", f"timed out after {timeout:.0f} s: {' '.join(args)}")
    run = Run(done.returncode, done.stdout, done.stderr)
    if "Traceback (most recent call last)" in done.stderr + done.stdout:
        run.crash = f"traceback: {_last_line(done.stderr or done.stdout)}"
    elif done.returncode not in (0, 1):
        run.crash = f"exit status {done.returncode}: {_last_line(done.stderr)}"
    return run


def _last_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1][:200] if lines else ""


# -- fetching ------------------------------------------------------------------------------


def fetch(name: str, cache: Path, offline: bool) -> tuple[str, Path] | None:
    """(version, unpacked tree) of the newest release, downloaded once into `cache`."""
    if PACKAGES.get(name, name) is None:
        return _installed(name)
    downloads = cache / "downloads"
    downloads.mkdir(parents=True, exist_ok=True)
    if not offline:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", str(downloads)]
            + [PACKAGES.get(name) or name],
            check=False,
            capture_output=True,
            timeout=600,
        )
    archives = sorted(
        (p for p in downloads.iterdir() if _distribution(p.name) == _normalized(name)),
        key=lambda p: p.stat().st_mtime,
    )
    if not archives:
        return None
    archive = archives[-1]
    version = _version(archive.name)
    tree = cache / "trees" / f"{_normalized(name)}-{version}"
    if not tree.is_dir():
        _unpack(archive, tree)
    return version, tree


def _installed(name: str) -> tuple[str, Path] | None:
    spec = importlib.util.find_spec(name)
    if spec is None or spec.origin is None:
        return None
    module = importlib.import_module(name)
    return str(getattr(module, "__version__", "?")), Path(spec.origin).parent


def _normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "_", name).lower()


def _distribution(filename: str) -> str:
    return _normalized(re.split(r"-\d", filename, maxsplit=1)[0])


def _version(filename: str) -> str:
    match = re.search(r"-(\d[^-]*?)(?:-py|-cp|\.tar\.gz|\.zip|\.whl)", filename)
    return match.group(1) if match else "?"


def _unpack(archive: Path, tree: Path) -> None:
    partial = tree.with_name(tree.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    if archive.suffix in (".whl", ".zip"):
        with zipfile.ZipFile(archive) as zipped:
            zipped.extractall(partial)
    else:
        with tarfile.open(archive) as tarred:
            tarred.extractall(partial, filter="data")
    partial.rename(tree)


# -- checking ------------------------------------------------------------------------------


def sweep_tree(package: str, version: str, tree: Path, work: Path, timeout: float) -> Row:
    """Lint, fix a copy, check the fixed files, fix again. `work` must not be in `tree`."""
    row = Row(package, version)
    started = time.perf_counter()
    lint = bufferlint([str(tree)], timeout)
    _count(row, lint)
    copy = work / f"{_normalized(package)}-{version}"
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(tree, copy, symlinks=True)
    before = _digests(copy)
    fixed = bufferlint(["--fix", "--unsafe-fixes", str(copy)], timeout)
    _record(row, fixed)
    for line in fixed.stdout.splitlines():
        match = _FIXED.match(line)
        if match:
            row.fixes = int(match.group(1))
    after = _digests(copy)
    for path in sorted(p for p in after if after[p] != before.get(p)):
        problem = _unparsable(tree / path.relative_to(copy), path)
        if problem:
            row.crashes += 1
            row.problems.append(f"{path.relative_to(copy)}: after --fix: {problem}")
    again = bufferlint(["--fix", "--unsafe-fixes", str(copy)], timeout)
    _record(row, again)
    changed = [p for p, digest in _digests(copy).items() if after.get(p) != digest]
    if changed:
        row.crashes += 1
        row.problems.append(f"a second --fix changed {len(changed)} files, {changed[0]} first")
    shutil.rmtree(copy, ignore_errors=True)
    row.seconds = round(time.perf_counter() - started, 1)
    return row


def _count(row: Row, run: Run) -> None:
    _record(row, run)
    for line in run.stdout.splitlines():
        found, clean = _FOUND.match(line), _CLEAN.match(line)
        if found:
            row.files, row.unparsable = int(found.group(1)), int(found.group(2) or 0)
        elif clean:
            row.files = int(clean.group(1))
        else:
            match = _LINE.match(line)
            if match and match.group(1).startswith("BL"):
                row.findings += 1


def _record(row: Row, run: Run) -> None:
    if run.crash:
        row.crashes += 1
        row.problems.append(run.crash)


def _digests(root: Path) -> dict[Path, str]:
    return {
        path: hashlib.blake2b(path.read_bytes(), digest_size=16).hexdigest()
        for path in root.rglob("*.py*")
        if path.is_file() and not path.is_symlink() and path.suffix in (".py", ".pyi")
    }


def _unparsable(original: Path, fixed: Path) -> str:
    """Why the fixed file does not parse, or "" if it does (for LibCST, and for CPython
    whenever the original compiled)."""
    from bufferlint import parsing

    text = fixed.read_bytes().decode("utf-8", "surrogateescape")
    try:
        parsing.parse_module(text)
    except Exception as exc:  # any failure is the finding here
        return f"LibCST: {type(exc).__name__}: {_last_line(str(exc))}"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            compile(original.read_bytes(), str(original), "exec", dont_inherit=True)
        except (SyntaxError, ValueError):
            return ""  # newer syntax than this Python: LibCST's word stands
        try:
            compile(fixed.read_bytes(), str(fixed), "exec", dont_inherit=True)
        except (SyntaxError, ValueError) as exc:
            return f"CPython: {exc}"
    return ""


def by_convention(row: Row, tree: Path, timeout: float) -> None:
    """Findings under `auto`, by the convention each was judged under, and under
    `reset-parameters`, from the JSON of a whole-tree lint."""
    exits = []
    for convention in ("auto", "reset-parameters"):
        run = bufferlint(
            [str(tree), "--convention", convention, "--output-format", "json"], timeout
        )
        _record(row, run)
        exits.append("-" if run.status is None else str(run.status))
        try:
            items = json.loads(run.stdout or "[]")
        except json.JSONDecodeError:
            row.crashes += 1
            row.problems.append(f"--convention {convention}: output is not JSON")
            items = []
        if convention == "auto":
            for item in items:
                name = item.get("convention") or "(parse error)"
                row.chosen[name] = row.chosen.get(name, 0) + 1
        else:
            row.plain = len(items)
    row.exits = ",".join(exits)


def convention_table(rows: list[Row]) -> str:
    """The `--by-convention` figures as a Markdown table."""
    lines = [
        "| Package | `reset-parameters` findings | `auto` findings | `auto`'s conventions | exit |",
        "|---|---:|---:|---|---|",
    ]
    for r in rows:
        chosen = ", ".join(f"{name} {count}" for name, count in sorted(r.chosen.items()))
        cells = (f"{r.package} {r.version}", r.plain, sum(r.chosen.values()), chosen, r.exits)
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    return "\n".join(lines) + "\n"


COLUMNS = ("package", "version", "files", "findings", "unparsable", "fixes applied", "crashes")


def table(rows: list[Row]) -> str:
    """The rows and their totals as a Markdown table."""
    numbers = ("files", "findings", "unparsable", "fixes", "crashes", "seconds")
    total = Row("**total**", "", **{n: sum(getattr(r, n) for r in rows) for n in numbers})
    total.seconds = round(total.seconds, 1)
    lines = [
        "| " + " | ".join((*COLUMNS, "seconds")) + " |",
        "|---|---|" + "---:|" * (len(COLUMNS) - 1),
    ]
    for r in [*rows, total]:
        cells = (r.package, r.version, *(getattr(r, n) for n in numbers))
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--packages", default=",".join(PACKAGES), help="comma-separated names")
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="download folder")
    parser.add_argument("--offline", action="store_true", help="use only the cache")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds per run")
    parser.add_argument("--json", type=Path, help="also write the rows here")
    parser.add_argument(
        "--by-convention", action="store_true", help="also count findings per convention"
    )
    options = parser.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory(prefix="bufferlint-sweep-") as work:
        for name in options.packages.split(","):
            fetched = fetch(name.strip(), options.cache, options.offline)
            if fetched is None:
                print(f"{name}: not available, skipped", file=sys.stderr)
                continue
            row = sweep_tree(name.strip(), *fetched, Path(work), options.timeout)
            if options.by_convention:
                by_convention(row, fetched[1], options.timeout)
            rows.append(row)
            print(f"{row.package} {row.version}: {row.seconds} s", file=sys.stderr)
            for problem in row.problems:
                print(f"  {problem}", file=sys.stderr)
    print(table(rows), end="")
    if options.by_convention:
        print("\n" + convention_table(rows), end="")
    if options.json:
        options.json.write_text(json.dumps([asdict(r) for r in rows], indent=2) + "\n")
    return 1 if any(r.crashes for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
