"""The class model's explicit lookup of classes it lacks, and the copy of the model that
fix planning sends to workers, which notes what it cannot answer instead of raising."""

from __future__ import annotations

import pickle

from bufferlint.facts import ClassFacts, FileFacts
from bufferlint.fix.settled import settled
from bufferlint.model import Lookup, Project


def _facts(module: str, *classes: str, bases: tuple[str, ...] = ()) -> FileFacts:
    found = [ClassFacts(name, 1, 0, list(bases)) for name in classes]
    return FileFacts(path=f"/{module}.py", module=module, classes=found)


def test_a_lookup_is_asked_only_for_names_it_may_find() -> None:
    asked: list[str] = []
    late = _facts("pkg.mod", "Late")

    def find(name: str) -> bool:
        asked.append(name)
        project.classes[name] = (late.classes[0], late)
        return True

    project = Project([_facts("pkg.mod", "Early")], None, Lookup(find, {"Late"}, {"pkg.mod"}))
    assert type(project.classes) is dict
    assert not project.has_class("pkg.mod.Other")  # no header defines it: not asked
    assert not project.has_class("elsewhere.Late")  # no module parsed in part holds it
    assert asked == []
    assert project.has_class("pkg.mod.Late") and asked == ["pkg.mod.Late"]
    assert project.class_facts("pkg.mod.Late")[0].name == "Late"
    assert project.has_class("pkg.mod.Late") and asked == ["pkg.mod.Late"]  # now held


def test_the_settled_copy_notes_what_it_cannot_answer() -> None:
    project = Project(
        [_facts("pkg.mod", "Child", bases=("pkg.mod.Base", "other.Thing"))],
        lambda module: None,
        Lookup(lambda name: False, {"Base"}, {"pkg.mod"}),
    )
    copy = pickle.loads(pickle.dumps(settled(project)))
    mro = copy.project.mro("pkg.mod.Child")
    assert mro == ["pkg.mod.Child", "pkg.mod.Base", "other.Thing"]
    assert "pkg.mod.Base" in copy.gaps.names  # the lint's model might still parse it
    assert "other" in copy.gaps.names  # a module the lint's model never tried to load
    fresh = pickle.loads(pickle.dumps(settled(project)))
    assert fresh.project.has_class("pkg.mod.Child") and fresh.gaps.names == []
    assert not fresh.project.has_class("pkg.mod.Other") and fresh.gaps.names == []
