"""[tool.bufferlint]: discovery, precedence, rule selection, file selection, runtime table."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from bufferlint.cli import main
from bufferlint.config import (
    Config,
    Overrides,
    RuntimeConfig,
    discover,
    load,
    resolve,
    select_rules,
)
from bufferlint.exclusion import GitIgnore, PathFilter, parse_line
from bufferlint.rules import BL001, BL002, RULES
from bufferlint.sources import discover as discover_files

ROOT = Path(__file__).resolve().parent.parent
# The class rules, BL001 to BL005.
BL0 = {code for code in RULES if code.startswith("BL0")}
# BL002's example has one finding; BL001's has one BL001.
BL002_SOURCE = BL002.example
BL001_SOURCE = BL001.example


def codes(*args: str) -> list[tuple[str, str]]:
    result = CliRunner().invoke(main, [*args, "--output-format", "json"])
    assert result.exit_code in (0, 1), result.output
    return sorted((Path(i["filename"]).name, i["code"]) for i in json.loads(result.stdout))


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def git_init(folder: Path) -> None:
    subprocess.run(["git", "init", "-q", str(folder)], check=True)


# -- discovery and precedence ---------------------------------------------------------


def test_nearest_pyproject_with_the_table_wins(tmp_path, monkeypatch):
    write(tmp_path / "pyproject.toml", '[tool.bufferlint]\nignore = ["BL002"]\n')
    write(tmp_path / "sub" / "pyproject.toml", '[tool.bufferlint]\nselect = ["BL002"]\n')
    write(tmp_path / "other" / "pyproject.toml", '[project]\nname = "no-table"\n')
    for folder in ("sub", "other", "."):
        write(tmp_path / folder / "m.py", BL002_SOURCE)
    assert codes(str(tmp_path / "sub")) == [("m.py", "BL002")]
    assert codes(str(tmp_path / "other")) == []  # falls through to the root config
    assert codes(str(tmp_path / "sub" / "m.py")) == [("m.py", "BL002")]
    monkeypatch.chdir(tmp_path / "sub")
    assert codes() == [("m.py", "BL002")]  # no path: from the current folder


def test_explicit_config_replaces_discovery_and_flags_win(tmp_path, monkeypatch):
    write(tmp_path / "pyproject.toml", '[tool.bufferlint]\nignore = ["BL002"]\n')
    write(tmp_path / "m.py", BL002_SOURCE)
    settings = write(tmp_path / "ci" / "bufferlint.toml", 'select = ["BL002"]\n')
    assert codes(str(tmp_path)) == []
    assert codes(str(tmp_path), "--config", str(settings)) == [("m.py", "BL002")]
    assert codes(str(tmp_path), "--config", str(settings), "--ignore", "BL002") == []
    assert codes(str(tmp_path), "--extend-select", "BL002") == [("m.py", "BL002")]
    assert codes(str(tmp_path), "--select", "BL001") == []


def test_config_without_file_anchors_at_cwd(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = discover([str(tmp_path)])
    assert config == Config(root=str(tmp_path))


def test_explicit_config_anchors_globs_at_cwd(tmp_path, monkeypatch):
    settings = write(tmp_path / "conf" / "pyproject.toml", '[tool.bufferlint]\nexclude = ["x"]\n')
    monkeypatch.chdir(tmp_path)
    config = discover([], str(settings))
    assert config.root == str(tmp_path) and config.exclude == ("x",)
    assert discover([str(tmp_path / "conf")]).root == str(tmp_path / "conf")


# -- rule selection -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("layers", "expected"),
    [
        ([], {*BL0, "BL100"}),
        ([(("BL001",), (), ())], {"BL001"}),
        ([(("BL",), (), ("BL001",))], {*BL0 - {"BL001"}, "BL100"}),
        ([(None, ("BL001",), ("BL",))], {"BL001"}),  # the more specific selector wins
        ([(None, ("BL001",), ("BL001",))], {*BL0 - {"BL001"}, "BL100"}),  # a tie: ignore wins
        ([(("ALL",), (), ("BL1",))], BL0),
        ([(("BL001",), (), ()), (None, ("BL100",), ())], {"BL001", "BL100"}),
        ([(None, (), ("BL100",)), (("BL0",), (), ())], BL0),
    ],
)
def test_select_rules_layers(layers, expected):
    assert select_rules(layers) == frozenset(expected)


def test_resolve_precedence(tmp_path):
    config = load(
        write(
            tmp_path / "pyproject.toml",
            "[tool.bufferlint]\n"
            'select = ["BL001"]\n'
            'reset-methods = ["init_weights"]\n'
            'exclude = ["gen"]\n'
            'extend-exclude = ["old"]\n'
            "respect-gitignore = false\n"
            'per-file-ignores = { "tests/*" = ["BL0"] }\n',
        )
    )
    settings = resolve(config, Overrides())
    assert settings.select == {"BL001"}
    assert settings.convention.name == "reset-methods"
    assert settings.convention.hooks == ("init_weights",)
    assert settings.exclude == ("gen",) and settings.extend_exclude == ("old",)
    assert settings.respect_gitignore is False
    assert settings.per_file_ignores == (("tests/*", frozenset(BL0)),)
    assert settings.project_root == str(tmp_path)
    cli = Overrides(
        select=("BL002",),
        exclude=("x",),
        extend_exclude=("y",),
        respect_gitignore=True,
        reset_methods=("reset_parameters",),
    )
    settings = resolve(config, cli)
    assert settings.select == {"BL002"}
    assert settings.convention.name == "reset-parameters"
    assert settings.convention.hooks == ("reset_parameters",)
    assert settings.exclude == ("x",) and settings.extend_exclude == ("old", "y")
    assert settings.respect_gitignore is True


def test_reset_methods_from_config(tmp_path):
    write(tmp_path / "pyproject.toml", '[tool.bufferlint]\nreset-methods = ["init_weights"]\n')
    source = BL002_SOURCE + (
        "\n    def init_weights(self) -> None:\n"
        "        self.mask = torch.tril(torch.ones_like(self.mask))\n"
    )
    write(tmp_path / "m.py", source)
    assert codes(str(tmp_path)) == []
    assert codes(str(tmp_path), "--reset-method", "reset_parameters") == [("m.py", "BL002")]


# -- file selection -------------------------------------------------------------------


def test_exclude_and_extend_exclude(tmp_path):
    for folder in ("src", "src/generated", "build", "legacy"):
        write(tmp_path / folder / f"{folder.replace('/', '_')}.py", BL002_SOURCE)
    found = [p for p, _ in codes(str(tmp_path))]
    assert len(found) == 3  # build/ is excluded by default
    write(tmp_path / "pyproject.toml", '[tool.bufferlint]\nextend-exclude = ["src/generated"]\n')
    assert len(codes(str(tmp_path))) == 2
    write(tmp_path / "pyproject.toml", '[tool.bufferlint]\nexclude = ["legacy"]\n')
    assert len(codes(str(tmp_path))) == 3  # build/ is back: `exclude` replaces the defaults
    assert len(codes(str(tmp_path), "--exclude", "legacy,build", "--extend-exclude", "src")) == 0


def test_force_exclude_applies_to_named_files(tmp_path, monkeypatch):
    write(tmp_path / "pyproject.toml", '[tool.bufferlint]\nextend-exclude = ["vendor"]\n')
    named = write(tmp_path / "vendor" / "lib" / "m.py", BL002_SOURCE)
    monkeypatch.chdir(tmp_path)
    assert codes(str(named)) == [("m.py", "BL002")]  # named explicitly: linted
    assert codes(str(named), "--force-exclude") == []  # excluded parent folder
    assert codes("vendor", "--force-exclude") == []


def test_excludes_do_not_test_folders_above_the_project(tmp_path):
    project = tmp_path / "build" / "project"
    write(project / "pyproject.toml", "[tool.bufferlint]\n")
    write(project / "m.py", BL002_SOURCE)
    assert codes(str(project)) == [("m.py", "BL002")]
    assert codes(str(project / "m.py"), "--force-exclude") == [("m.py", "BL002")]


def test_gitignore_is_respected_in_a_git_repository(tmp_path):
    git_init(tmp_path)
    write(tmp_path / ".gitignore", "generated/\n*_pb2.py\n/top.py\n!keep_pb2.py\n")
    write(tmp_path / "pkg" / ".gitignore", "local.py\n")
    write(tmp_path / "pkg" / "__init__.py", "")  # pkg.top is not top
    for name in (
        "generated/m.py",
        "a_pb2.py",
        "keep_pb2.py",
        "top.py",
        "pkg/top.py",
        "pkg/local.py",
        "pkg/ok.py",
    ):
        write(tmp_path / name, BL002_SOURCE)
    found = sorted(
        str(Path(i["filename"]).relative_to(tmp_path))
        for i in json.loads(
            CliRunner().invoke(main, [str(tmp_path), "--output-format", "json"]).stdout
        )
    )
    assert found == ["keep_pb2.py", "pkg/ok.py", "pkg/top.py"]
    everything = codes(str(tmp_path), "--no-respect-gitignore")
    assert len(everything) == 7
    write(tmp_path / "pyproject.toml", "[tool.bufferlint]\nrespect-gitignore = false\n")
    assert len(codes(str(tmp_path))) == 7


def test_gitignore_agrees_with_git_check_ignore(tmp_path):
    git_init(tmp_path)
    write(
        tmp_path / ".gitignore",
        "# comment\n\\#hash.py\nlogs/**\n**/cache/\na/**/z.py\ndoc?.py\n[xy].py\n!/a/keep.py\n",
    )
    write(tmp_path / ".git" / "info" / "exclude", "secret.py\n")
    candidates = [
        "#hash.py",
        "logs/x.py",
        "deep/cache/x.py",
        "cache.py",
        "a/z.py",
        "a/b/c/z.py",
        "doc1.py",
        "doc12.py",
        "x.py",
        "z.py",
        "a/keep.py",
        "secret.py",
        "sub/secret.py",
    ]
    for name in candidates:
        write(tmp_path / name, "")
    checked = subprocess.run(
        ["git", "check-ignore", "--stdin"],
        cwd=tmp_path,
        input="\n".join(candidates),
        capture_output=True,
        text=True,
    ).stdout.split()
    matcher = GitIgnore()
    ours = [name for name in candidates if matcher.ignored(tmp_path / name, False)]
    assert sorted(ours) == sorted(checked)


def test_gitignore_is_not_read_outside_a_repository(tmp_path):
    write(tmp_path / ".gitignore", "*.py\n")
    assert GitIgnore().ignored(write(tmp_path / "m.py", ""), False) is False


def test_gitignore_line_parsing():
    assert parse_line("") is None and parse_line("# c") is None and parse_line("/") is None
    regex, negated, dir_only = parse_line("!build/")
    assert negated and dir_only and regex.fullmatch("x/build")
    regex, _, _ = parse_line("/top.py")
    assert regex.fullmatch("top.py") and not regex.fullmatch("a/top.py")
    regex, _, _ = parse_line("trailing\\ ")
    assert regex.fullmatch("trailing ")


def test_path_filter_globs(tmp_path):
    f = PathFilter(["build", "*.pyi", "src/*/gen"], str(tmp_path), respect_gitignore=False)
    assert f.skip(tmp_path / "a" / "build", True)
    assert f.skip(tmp_path / "stubs.pyi", False)
    assert f.skip(tmp_path / "src" / "pkg" / "gen", True)
    assert not f.skip(tmp_path / "gen", True)
    assert f.skip_named(tmp_path / "src" / "pkg" / "gen" / "m.py")
    assert not f.skip_named(tmp_path / "src" / "m.py")


# -- per-file-ignores and runtime ----------------------------------------------------


def test_per_file_ignores(tmp_path):
    write(
        tmp_path / "pyproject.toml",
        '[tool.bufferlint.per-file-ignores]\n"tests/*" = ["BL002"]\n"legacy.py" = ["BL"]\n',
    )
    write(tmp_path / "tests" / "t.py", BL002_SOURCE)
    write(tmp_path / "pkg" / "legacy.py", BL001_SOURCE)
    write(tmp_path / "m.py", BL002_SOURCE)
    assert codes(str(tmp_path)) == [("m.py", "BL002")]


def test_runtime_table_is_parsed_into_a_dataclass(tmp_path):
    config = load(
        write(
            tmp_path / "pyproject.toml",
            "[tool.bufferlint.runtime]\n"
            'recipe = "fsdp2"\n'
            "devices = 2\n"
            "timeout = 30\n"
            "[tool.bufferlint.runtime.factories]\n"
            '"pkg.model:GPT" = "pkg.testing:make_tiny_gpt"\n',
        )
    )
    assert config.runtime == RuntimeConfig(
        "fsdp2", 2, 30.0, {"pkg.model:GPT": "pkg.testing:make_tiny_gpt"}
    )
    assert config.runtime.values()["timeout"] == 30.0
    assert load(write(tmp_path / "pyproject.toml", "[tool.bufferlint]\n")).runtime.values() == {}


def test_tomli_is_the_fallback_before_python_3_11():
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib
    with open(ROOT / "pyproject.toml", "rb") as handle:
        dependencies = tomllib.load(handle)["project"]["dependencies"]
    assert any(d.startswith("tomli") and "python_version < '3.11'" in d for d in dependencies)


def test_readme_config_example_loads(tmp_path):
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Configuration\n", 1)[1].split("\n## ", 1)[0]
    snippet = section.split("```toml\n", 1)[1].split("```", 1)[0]
    config = load(write(tmp_path / "pyproject.toml", snippet))
    assert config.ignore == ("BL100",) and config.runtime.devices == 2
    assert resolve(config, Overrides()).select == BL0


def test_a_named_folder_inside_an_ignored_one_is_linted(tmp_path):
    # e.g. torch installed under a pyenv checkout whose .gitignore ignores `versions/`
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / ".gitignore").write_text("versions/\n")
    target = tmp_path / "versions" / "pkg"
    target.mkdir(parents=True)
    (target / "m.py").write_text("x = 1\n")
    (target / "skipped.py").write_text("x = 1\n")
    (target / ".gitignore").write_text("skipped.py\n")
    path_filter = PathFilter((), str(tmp_path), respect_gitignore=True)
    found = discover_files([str(target)], path_filter.skip)
    assert [Path(s.path).name for s in found] == ["m.py"]
