"""The README's integrations, run for real: the pre-commit hooks and the GitHub Actions step.

pre-commit needs a committed revision, so the test copies this working tree (tracked and
untracked files, minus what .gitignore ignores) into a temporary repository and commits it
there; pre-commit then builds the hook's virtual environment from it with pip.
"""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from bufferlint.rules import BL002

ROOT = Path(__file__).resolve().parent.parent
GIT = ["git", "-c", "user.name=bufferlint-test", "-c", "user.email=test@example.invalid"]
GITHUB = re.compile(
    r"::(error|warning) title=bufferlint \(BL\d{3}\),file=[^,:]+,line=\d+,col=\d+,"
    r"endLine=\d+,endColumn=\d+::.+"
)


def git(*args: str, cwd: Path) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    done = subprocess.run(
        [*GIT, *args], cwd=cwd, env=env, capture_output=True, text=True, check=True
    )
    return done.stdout


def readme_block(heading: str, language: str) -> str:
    """The first fenced block of `language` under a README heading."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]
    return re.search(rf"```{language}\n(.*?)```", section, re.S).group(1)


def hook_ids() -> list[str]:
    return [hook["id"] for hook in yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())]


def test_hook_definitions():
    hooks = {h["id"]: h for h in yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())}
    assert set(hooks) == {"bufferlint", "bufferlint-fix"}
    for hook in hooks.values():
        assert hook["language"] == "python"
        assert hook["types_or"] == ["python", "pyi"]
        assert hook["require_serial"] is True
        assert "--force-exclude" in hook["entry"]
    assert hooks["bufferlint-fix"]["entry"].endswith("--fix")
    readme_hooks = yaml.safe_load(readme_block("pre-commit", "yaml"))["repos"][0]["hooks"]
    assert {h["id"] for h in readme_hooks} == set(hooks)


@pytest.fixture(scope="module")
def hook_repo(tmp_path_factory) -> tuple[Path, str]:
    """This working tree, committed in a temporary repository."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\0")
    copy = tmp_path_factory.mktemp("hook-repo")
    for name in filter(None, listed):
        source = ROOT / name
        if source.is_file():
            (copy / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, copy / name)
    git("init", "-q", cwd=copy)
    git("add", "-A", cwd=copy)
    git("commit", "-q", "-m", "snapshot", cwd=copy)
    return copy, git("rev-parse", "HEAD", cwd=copy).strip()


def pre_commit(*args: str, cwd: Path, home: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env["PRE_COMMIT_HOME"] = str(home)
    return subprocess.run(
        [sys.executable, "-m", "pre_commit", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


BASE = """\
import torch
from torch import nn


class Base(nn.Module):
    def __init__(self, n: int) -> None:
        super().__init__()
        self.n = n
        self.register_buffer("table", torch.arange(n))

    def reset_parameters(self) -> None:
        pass
"""
CHILD = """\
import torch

from .base import Base


class Scaled(Base):
    def reset_parameters(self) -> None:
        super().reset_parameters()
        torch.manual_seed(0)
"""


def test_pre_commit_hooks_from_the_readme(hook_repo, tmp_path):
    pytest.importorskip("pre_commit", reason="pre-commit is not installed")
    repo, rev = hook_repo
    project = tmp_path / "project"
    package = project / "pkg"
    package.mkdir(parents=True)
    git("init", "-q", cwd=project)
    # The README's snippet, pointed at this checkout.
    config = yaml.safe_load(readme_block("pre-commit", "yaml"))
    config["repos"][0].update(repo=str(repo), rev=rev)
    (project / ".pre-commit-config.yaml").write_text(yaml.safe_dump(config))
    (package / "__init__.py").write_text("")
    # A committed, unstaged parent that is itself flagged, and a staged child of it.
    (package / "base.py").write_text(BASE)
    git("add", "-A", cwd=project)
    git("commit", "-q", "-m", "base", "--no-verify", cwd=project)
    (package / "child.py").write_text(CHILD)
    (package / "mask.py").write_text(BL002.example)
    git("add", "pkg/child.py", "pkg/mask.py", cwd=project)
    home = tmp_path / "pre-commit-home"

    check = pre_commit("run", "bufferlint", cwd=project, home=home)
    output = check.stdout + check.stderr
    if check.returncode != 1 and "error: " in output and "pip" in output.lower():
        pytest.skip(f"pre-commit could not build the hook's environment: {output[-500:]}")
    assert check.returncode == 1, output
    assert "pkg/mask.py:5:7: BL002" in output
    # The parent was parsed from the project; being unstaged, it is not reported itself.
    assert "pkg/child.py:6:7: BL001" in output, output
    assert "does not rebuild buffer `table` (line 9 of base.py, persistent)" in output
    assert "pkg/base.py" not in output

    if (
        "--fix"
        not in subprocess.run(
            [sys.executable, "-m", "bufferlint", "--help"], capture_output=True, text=True
        ).stdout
    ):
        pytest.skip("bufferlint has no --fix yet: the bufferlint-fix hook cannot run")
    fixed = pre_commit("run", "bufferlint-fix", cwd=project, home=home)
    assert fixed.returncode == 1, fixed.stdout  # pre-commit fails a hook that changed files
    assert "files were modified by this hook" in fixed.stdout
    git("add", "-A", cwd=project)
    again = pre_commit("run", "bufferlint", cwd=project, home=home)
    assert again.returncode == 0, again.stdout + again.stderr


def test_github_actions_step_from_the_readme(tmp_path):
    step = next(
        line.split("run: ", 1)[1]
        for line in readme_block("GitHub Actions", "yaml").splitlines()
        if "run: bufferlint" in line
    )
    assert step == "bufferlint src/ --output-format github"
    git("init", "-q", cwd=tmp_path)
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "model.py").write_text(BL002.example)
    (tmp_path / "src" / "clean.py").write_text(BL002.use_instead)
    bufferlint = [sys.executable, "-m", "bufferlint", *step.split()[1:]]
    done = subprocess.run(bufferlint, cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 1
    [line] = done.stdout.splitlines()
    assert GITHUB.fullmatch(line), line
    assert "file=src/model.py,line=5,col=7," in line
    (tmp_path / "src" / "model.py").unlink()
    clean = subprocess.run(bufferlint, cwd=tmp_path, capture_output=True, text=True)
    assert clean.returncode == 0 and clean.stdout == ""
