"""`assert_materializes` for users' own test suites: prove a model survives meta-device init."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any


def assert_materializes(
    factory: Callable[[], Any],
    recipe: str = "fsdp",
    hooks: Sequence[str] | None = None,
    devices: int = 1,
    *,
    buffers: Sequence[str] = (),
    seed: int = 0,
    timeout: float = 60.0,
) -> None:
    """Build `factory()` once eagerly and twice on the meta device, materialize the meta builds
    with `recipe`, and raise AssertionError with a per-buffer report unless every buffer (or
    those named in `buffers`) comes out as the eager build has it.

    The factory must create tensors without an explicit device, so it can be called under
    `torch.device("meta")`. With devices=1 the check runs in this process; with more it runs
    in worker processes, so the factory must be a module-level function (importable as
    `module:name`). `hooks`: the methods materialization calls (default: the default
    convention's).
    """
    from bufferlint.conventions import RESET_PARAMETERS
    from bufferlint.runtime import RuntimeSettings, require, resolve_recipe, validate
    from bufferlint.runtime.report import format_report

    hooks = RESET_PARAMETERS.hooks if hooks is None else tuple(hooks)

    validate(RuntimeSettings(recipe=recipe, devices=devices, timeout=timeout, seed=seed))
    resolved = resolve_recipe(recipe, "", hooks)
    require("torch", *(["lightning"] if resolved == "lightning" else []))
    if devices == 1:
        result = _in_process(factory, resolved, tuple(hooks), tuple(buffers), seed)
    else:
        from bufferlint.runtime.launch import factory_job, run_jobs

        job = factory_job(_importable(factory), buffers, hooks, resolved, seed)
        settings = RuntimeSettings(recipe=resolved, devices=devices, timeout=timeout, seed=seed)
        [result] = run_jobs([job], settings)
    if result is not None and result["verdict"] != "refuted":
        raise AssertionError(format_report(result))


def _importable(factory: Callable[[], Any]) -> str:
    """`module:qualname`, or ValueError when worker processes could not import it."""
    module = getattr(factory, "__module__", None)
    qualname = getattr(factory, "__qualname__", "")
    if not module or module == "__main__" or "<" in qualname:
        raise ValueError(
            f"with devices > 1 the factory runs in new processes and must be a module-level "
            f"function importable as module:name; {factory!r} is not"
        )
    return f"{module}:{qualname}"


def _in_process(
    factory: Callable[[], Any],
    recipe: str,
    hooks: tuple[str, ...],
    buffers: tuple[str, ...],
    seed: int,
) -> dict[str, Any] | None:
    from bufferlint.runtime.build import Construction
    from bufferlint.runtime.confirm import Subject, confirm
    from bufferlint.runtime.distributed import Ranks

    label = f"factory {getattr(factory, '__qualname__', repr(factory))}"
    subject = Subject(
        label=label,
        ways=[Construction(label, factory, "factory")],
        notes=[],
        buffers=buffers,
        hooks=hooks,
        recipe=recipe,
        seed=seed,
    )
    ranks = Ranks()
    try:
        return ranks.gather(lambda device, mesh: confirm(subject, device, mesh), recipe, label)
    finally:
        ranks.close()
