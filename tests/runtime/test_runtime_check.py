"""bufferlint.runtime.check against the fixtures in fixtures/runtime, in real worker processes."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from bufferlint.runtime import RuntimeSettings, RuntimeTarget, check  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "fixtures" / "runtime"
DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
FACTORIES = {
    "tokenized:TokenTable": "tokenized:make_tiny",
    "tokenized:TokenTableBadFactory": "x:y",
}


def target(module: str, class_name: str, *buffers: str) -> RuntimeTarget:
    return RuntimeTarget(
        path=str(FIXTURES / f"{module}.py"),
        module=module,
        import_root=str(FIXTURES),
        class_name=class_name,
        buffers=buffers,
    )


GPT = target("litgpt_rope", "GPT", "cos", "sin")
ROPE_FIXED = target("rope_fixed", "RotaryEmbedding", "inv_freq", "cos", "sin")
NO_HOOK = target("rope_fixed", "RotaryNoHook", "inv_freq")

# target -> (verdict, text the summary must contain)
EXPECTED = {
    GPT: ("confirmed", "cos[0, :4] expected [1.0, 1.0, 1.0, 1.0], got [nan, nan, nan, nan]"),
    ROPE_FIXED: ("refuted", "inv_freq, cos, sin rebuilt correctly"),
    NO_HOOK: ("confirmed", "inv_freq[:4] expected [1.0, 0.1, 0.01, 0.001], got [nan"),
    target("wrong_dtype", "HalfScale", "scale"): (
        "confirmed",
        "scale has dtype float32, expected float16",
    ),
    target("causal_mask", "CausalSelfAttention", "mask"): (
        "confirmed",
        "mask[0, 0, 0, :4] expected [True, False, False, False], got [True, True, True, True]",
    ),
    target("random_buffer", "NoiseTable", "noise"): ("refuted", "noise rebuilt correctly"),
    target("random_buffer", "NoiseNotRebuilt", "noise"): (
        "confirmed",
        "noise[0, :4] depends on uninitialized memory",
    ),
    target("positions", "Embeddings.Positions", "positions"): ("refuted", "positions rebuilt"),
    target("tokenized", "TokenEmbedding", "token_ids"): (
        "unconfirmed",
        "cannot make a Tokenizer for 'tokenizer'",
    ),
    target("tokenized", "TokenTable", "token_ids"): ("refuted", "token_ids rebuilt correctly"),
    target("tokenized", "TokenTableBadFactory", "token_ids"): (
        "error",
        "factory 'x:y' could not be loaded: ModuleNotFoundError: No module named 'x'",
    ),
    # Rebuilt without device=: wrong only where the module does not live on the default device.
    target("rope_default_device", "RotaryDefaultDevice", "cos", "sin"): (
        ("confirmed", "cos is on cpu, the module on cuda:0")
        if DEVICE == "cuda"
        else ("refuted", "cos, sin rebuilt correctly")
    ),
    target("meta_unfriendly", "ItemInInit", "weights"): (
        "error",
        "builds eagerly but not on the meta device: ",
    ),
    target("misbehaving", "RaisesInInit"): (
        "error",
        "defaults raised RuntimeError: cannot build this",
    ),
    target("misbehaving", "Segfaults"): ("error", "killed by SIGSEGV (Segmentation fault at"),
    target("misbehaving", "ExitsProcess"): ("error", "worker exited with status 3"),
    target("misbehaving", "Hangs"): ("error", "timed out after 6 s"),
    target("import_boom", "Unreachable"): (
        "error",
        "import failed: RuntimeError: boom at import time",
    ),
}


@pytest.fixture(scope="module")
def fsdp_results() -> dict[RuntimeTarget, dict]:
    """Every fixture in one run: crashes and a hang among them must cost only themselves."""
    targets = list(EXPECTED)
    settings = RuntimeSettings(recipe="fsdp", timeout=6.0, factories=FACTORIES)
    return dict(zip(targets, check(targets, settings), strict=True))


@pytest.mark.parametrize("item", list(EXPECTED), ids=lambda t: t.class_name)
def test_fsdp_verdicts(fsdp_results: dict, item: RuntimeTarget) -> None:
    verdict, text = EXPECTED[item]
    result = fsdp_results[item]
    assert (result["verdict"], result["recipe"], result["devices"]) == (verdict, "fsdp", 1)
    if item.class_name == "ExitsProcess" and "forkserver lost" in result["summary"]:
        text = "worker exited with status 255"  # CPython's forkserver, 1 run in ~25
    assert text in result["summary"]
    assert result["summary"].endswith(f"(recipe fsdp, {DEVICE})")
    assert "\n" not in result["summary"] and "Traceback" not in result["summary"]
    json.dumps(result, allow_nan=False)


def test_report_details(fsdp_results: dict) -> None:
    gpt = fsdp_results[GPT]
    assert gpt["summary"] == (
        "cos[0, :4] expected [1.0, 1.0, 1.0, 1.0], got [nan, nan, nan, nan] (also wrong: sin) "
        f"(recipe fsdp, {DEVICE})"
    )
    assert gpt["built_with"].startswith("synthesized args {config=Config(block_size=16,")
    assert gpt["buffers"]["cos"]["reason"] == "depends on uninitialized memory"
    assert gpt["buffers"]["cos"]["actual"] == ["nan"] * 4
    assert gpt["hooks_called"] == [
        "<root>.reset_parameters",
        "wte.reset_parameters",
        "lm_head.reset_parameters",
    ]
    assert "real FSDP1 raises AttributeError" in fsdp_results[NO_HOOK]["notes"][0]
    table = fsdp_results[target("tokenized", "TokenTable", "token_ids")]
    assert table["built_with"] == "factory tokenized:make_tiny"
    unbuildable = fsdp_results[target("tokenized", "TokenEmbedding", "token_ids")]
    assert (
        '[tool.bufferlint.runtime.factories] "tokenized:TokenEmbedding" ='
        in (unbuildable["summary"])
    )
    noise = fsdp_results[target("random_buffer", "NoiseTable", "noise")]
    assert noise["buffers"]["noise"]["judged_by"] == "eager build with its hooks replayed"


@pytest.mark.parametrize("recipe", ["fsdp2", "torch", "lightning"])
def test_other_recipes(recipe: str) -> None:
    settings = RuntimeSettings(recipe=recipe, jobs=1)
    gpt, fixed, no_hook = check([GPT, ROPE_FIXED, NO_HOOK], settings)
    assert gpt["verdict"] == "confirmed" and "cos[0, :4] expected [1.0" in gpt["summary"]
    assert fixed["verdict"] == "refuted"
    if recipe == "lightning":
        assert no_hook["verdict"] == "error"
        assert (
            "TypeError: Materialization requires that the `RotaryNoHook.reset_parameters`"
            in (no_hook["summary"])
        )
    else:
        assert no_hook["verdict"] == "confirmed"
        assert "has no reset_parameters()" in no_hook["notes"][0]


def test_two_ranks() -> None:
    gpt, fixed = check([GPT, ROPE_FIXED], RuntimeSettings(devices=2))
    assert gpt["verdict"] == "confirmed" and gpt["devices"] == 2
    assert gpt["summary"].endswith(f"(recipe fsdp, {DEVICE}, 2 ranks)")
    assert [r["verdict"] for r in gpt["ranks"]] == ["confirmed", "confirmed"]
    assert gpt["disagreement"] == []
    assert fixed["verdict"] == "refuted"
    assert [r["buffers"]["cos"]["ok"] for r in fixed["ranks"]] == [True, True]


def test_other_hooks_and_auto_recipe() -> None:
    """torchtune's rope_init() hook: auto picks the torch recipe, which calls it."""
    rope = target("torchtune_rope", "RotaryPositionalEmbeddings", "theta", "cache")
    rope_init = dataclasses.replace(rope, hooks=("rope_init",))
    plain, other = check([rope, rope_init], RuntimeSettings(jobs=1))
    assert (plain["recipe"], plain["verdict"]) == ("fsdp", "confirmed")
    assert plain["summary"].startswith(
        "theta[:4] expected [1.0, 0.1, 0.01, 0.001], got [nan, nan, nan, nan] (also wrong: cache)"
    )
    assert (other["recipe"], other["verdict"]) == ("torch", "refuted")
    assert other["hooks_called"] == ["<root>.rope_init"]


def test_bad_settings_are_value_errors() -> None:
    with pytest.raises(ValueError, match="unknown runtime recipe 'fdsp'"):
        check([GPT], RuntimeSettings(recipe="fdsp"))
    with pytest.raises(ValueError, match="devices must be at least 1"):
        check([GPT], RuntimeSettings(devices=0))


def test_importable_without_torch() -> None:
    """The parent side never imports torch; without it, check() says how to install it."""
    code = (
        "import sys, bufferlint.runtime as rt, bufferlint.runtime.launch, bufferlint.testing\n"
        "assert 'torch' not in sys.modules\n"
        "try:\n"
        "    rt.check([], rt.RuntimeSettings())\n"
        "except rt.RuntimeUnavailable as exc:\n"
        "    print(exc)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    # -S drops site-packages, where torch lives.
    out = subprocess.run(
        [sys.executable, "-S", "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert 'pip install "bufferlint[runtime]"' in out.stdout


def test_unknown_exit_status_is_read_from_the_crash_dump() -> None:
    """The forkserver sometimes loses a killed worker's status and says 255: the signal
    is then the one faulthandler named, so the same crash reads the same every run."""
    from bufferlint.runtime.launch import _describe_exit

    dump = ["Fatal Python error: Segmentation fault", "", 'File "m.py", line 3 in f']
    assert _describe_exit(255, dump) == "killed by SIGSEGV"
    assert _describe_exit(-11, dump) == "killed by SIGSEGV"
    assert _describe_exit(255, []) == "exited with status 255 (or the forkserver lost its status)"
    assert _describe_exit(3, dump) == "exited with status 3"
