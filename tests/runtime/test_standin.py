"""The CPU stand-in for a second device (bufferlint.runtime.standin): rebuilds on the default
device are confirmed, right rebuilds never are."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from bufferlint.runtime import RuntimeSettings, RuntimeTarget, check  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
STATIC = ROOT / "fixtures" / "static"
RUNTIME = ROOT / "fixtures" / "runtime"
pytestmark = pytest.mark.skipif(torch.cuda.is_available(), reason="the stand-in is for CPUs")


def target(root: Path, module: str, class_name: str, *buffers: str) -> RuntimeTarget:
    return RuntimeTarget(
        path=str(root / f"{module}.py"),
        module=module,
        import_root=str(root),
        class_name=class_name,
        buffers=buffers,
        stand_in=True,
    )


WRONG = [
    target(STATIC, "wrong_device", "FirstFix", "cos", "sin"),
    target(STATIC, "wrong_device", "ReRegisters", "mask"),
    target(STATIC, "wrong_device", "CastOnly", "scale"),
    target(STATIC, "wrong_device", "ThroughLocal", "ids"),
    target(RUNTIME, "rope_default_device", "RotaryDefaultDevice", "cos", "sin"),
]
# Right rebuilds. InPlace computes on the default device and copies in place, OwnDevice
# moves such a tensor with `.to(self.c.device)`: the stand-in cannot run them, and says
# that their devices are not judged.
RIGHT = {
    target(STATIC, "wrong_device", "OwnDevice", "a", "b", "c", "d", "e"): "unconfirmed",
    target(STATIC, "wrong_device", "UnderDevice", "freqs"): "refuted",
    target(STATIC, "wrong_device", "InPlace", "a", "b", "c", "d"): "unconfirmed",
    target(RUNTIME, "rope_fixed", "RotaryEmbedding", "inv_freq", "cos", "sin"): "refuted",
}


@pytest.fixture(scope="module")
def results() -> dict[RuntimeTarget, dict]:
    targets = [*WRONG, *RIGHT]
    settings = RuntimeSettings(recipe="fsdp", timeout=30.0)
    return dict(zip(targets, check(targets, settings), strict=True))


@pytest.mark.parametrize("item", WRONG, ids=lambda t: t.class_name)
def test_rebuild_on_the_default_device_is_confirmed(results: dict, item: RuntimeTarget) -> None:
    result = results[item]
    assert result["verdict"] == "confirmed", result["summary"]
    first = result["buffers"][item.buffers[0]]
    assert first["reason"] == "made on the default device"
    assert "the hooks left it on meta" in result["summary"]


@pytest.mark.parametrize("item", list(RIGHT), ids=lambda t: t.class_name)
def test_right_rebuild_is_never_confirmed(results: dict, item: RuntimeTarget) -> None:
    result = results[item]
    assert result["verdict"] == RIGHT[item], result["summary"]
    if RIGHT[item] == "unconfirmed":
        assert "could not run the hooks: NotImplementedError" in " ".join(result["notes"])
        assert "matches the eager build; its device could not be judged" in result["summary"]


def test_without_the_stand_in_the_cpu_cannot_tell() -> None:
    plain = dataclasses.replace(WRONG[-1], stand_in=False)
    (result,) = check([plain], RuntimeSettings(recipe="fsdp", timeout=30.0))
    assert result["verdict"] == "refuted", result["summary"]
