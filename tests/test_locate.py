"""The one module locator: the order the import system probes files in."""

from __future__ import annotations

from pathlib import Path

from bufferlint.locate import Candidate, find_module, module_files


def test_candidates_come_in_import_order(tmp_path: Path) -> None:
    first, second = str(tmp_path / "a"), str(tmp_path / "b")
    assert list(module_files("pkg.mod", [first, second])) == [
        Candidate(str(Path(first, "pkg", "mod.py")), first, False),
        Candidate(str(Path(first, "pkg", "mod", "__init__.py")), first, True),
        Candidate(str(Path(second, "pkg", "mod.py")), second, False),
        Candidate(str(Path(second, "pkg", "mod", "__init__.py")), second, True),
    ]


def test_the_first_existing_file_holds_the_module(tmp_path: Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    (second / "pkg").mkdir(parents=True)
    (second / "pkg" / "__init__.py").write_text("")
    assert find_module("pkg", [str(first), str(second)]) == Candidate(
        str(second / "pkg" / "__init__.py"), str(second), True
    )
    (first / "pkg").mkdir(parents=True)  # a module file beats a package in the same root
    (first / "pkg.py").write_text("")
    assert find_module("pkg", [str(first), str(second)]) == Candidate(
        str(first / "pkg.py"), str(first), False
    )
    (first / "pkg" / "__init__.py").write_text("")
    assert find_module("pkg", [str(first)]) == Candidate(str(first / "pkg.py"), str(first), False)
    assert find_module("other", [str(first), str(second)]) is None
    (first / "folder.py").mkdir()  # a folder is no module file
    assert find_module("folder", [str(first)]) is None
