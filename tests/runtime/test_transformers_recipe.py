"""The transformers recipe against fixtures/runtime/hf_custom.py and one real transformers
class, in real worker processes; tiny configs; the message when transformers is missing."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from bufferlint.runtime import (  # noqa: E402
    RuntimeSettings,
    RuntimeTarget,
    RuntimeUnavailable,
    check,
    validate,
)

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "fixtures" / "runtime"
DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
LLAMA = "transformers.models.llama.modeling_llama"


def target(module: str, class_name: str, *buffers: str, root: Path = FIXTURES) -> RuntimeTarget:
    return RuntimeTarget(
        path=str(root / f"{module.rpartition('.')[2]}.py"),
        module=module,
        import_root=str(root),
        class_name=class_name,
        buffers=buffers,
    )


PHASE_MODEL = target("hf_custom", "PhaseModel")
PHASE = target("hf_custom", "Phase", "phase")
SPIN = target("hf_custom", "SpinRotaryEmbedding", "inv_freq", "original_inv_freq")
ROTARY = target(LLAMA, "LlamaRotaryEmbedding", "inv_freq", "original_inv_freq", root=ROOT)
GARBAGE = "expected [0.5, 1.5, 2.5, 3.5], got [nan, nan, nan, nan]"

# target -> (verdict, text the summary must contain, where the buffers were judged)
EXPECTED = {
    # huggingface/transformers#48892: a non-persistent buffer no _init_weights rebuilds.
    PHASE_MODEL: ("confirmed", f"phase.phase[:4] {GARBAGE}", "<root>"),
    # The same class named by itself: built inside the model of its module that holds it.
    PHASE: ("confirmed", f"phase[:4] {GARBAGE}", "phase"),
    target("hf_custom", "RebuiltPhaseModel"): (
        "refuted",
        "phase.phase rebuilt correctly",
        "<root>",
    ),
    # Rebuilt by the base PreTrainedModel._init_weights rule for rotary embeddings.
    SPIN: ("refuted", "inv_freq, original_inv_freq rebuilt correctly", "rotary"),
    target("hf_custom", "SpinModel"): (
        "refuted",
        "rotary.inv_freq, rotary.original_inv_freq",
        "<root>",
    ),
    # Persistent, never rebuilt: the empty checkpoint does not restore it.
    target("hf_custom", "OffsetModel"): (
        "confirmed",
        "offset.offset[:4] expected [3.0, 3.0",
        "<root>",
    ),
    # Flagged _is_hf_initialized at construction: initialize_weights() skips it, as in HF.
    target("hf_custom", "FlaggedPhaseModel"): ("confirmed", f"phase.phase[:4] {GARBAGE}", "<root>"),
    # In no model of its module: judged in one made to hold it, by that model's _init_weights.
    target("hf_custom", "Orphan", "table"): (
        "confirmed",
        "table[:4] expected [1.0, 1.0, 1.0, 1.0], got [nan, nan, nan, nan]",
        "held",
    ),
    # Real transformers code, read from site-packages: Llama's rotary embedding, judged inside
    # a tiny LlamaModel.
    ROTARY: ("refuted", "inv_freq, original_inv_freq rebuilt correctly", "rotary_emb"),
}


@pytest.fixture(scope="module")
def results() -> dict[RuntimeTarget, dict]:
    targets = list(EXPECTED)
    settings = RuntimeSettings(recipe="transformers", jobs=1, timeout=60.0)
    return dict(zip(targets, check(targets, settings), strict=True))


@pytest.mark.parametrize("item", list(EXPECTED), ids=lambda t: t.class_name)
def test_verdicts(results: dict, item: RuntimeTarget) -> None:
    verdict, text, judged_at = EXPECTED[item]
    result = results[item]
    assert (result["verdict"], result["recipe"]) == (verdict, "transformers"), result["summary"]
    assert text in result["summary"]
    assert result["summary"].endswith(f"(recipe transformers, {DEVICE})")
    assert result.get("judged_at") == judged_at
    assert result["seconds"] < 1.0  # after the worker started (and imported transformers)
    json.dumps(result, allow_nan=False)


def test_garbage_is_proven_by_the_two_fills(results: dict) -> None:
    """empty_like memory, not a wrong value: the 0x00 and 0xFF passes differ."""
    phase = results[PHASE_MODEL]["buffers"]["phase.phase"]
    assert phase["reason"] == "depends on uninitialized memory"
    assert phase["judged_by"] == "eager build"


def test_report_details(results: dict) -> None:
    model = results[PHASE_MODEL]
    assert model["owners"] == {"phase.phase": "hf_custom:Phase"}
    assert model["hooks_called"] == ["<root>.initialize_weights"]
    assert model["built_with"] == "transformers PhaseModel(PhaseConfig()), default config"
    assert any(note.startswith("checkpoint: none (state_dict={})") for note in model["notes"])
    assert results[PHASE]["built_with"].endswith(", judged at phase")
    orphan = results[target("hf_custom", "Orphan", "table")]["built_with"]
    assert orphan.endswith("holding Orphan (synthesized args {size=8}) as held")
    rotary = results[ROTARY]
    assert rotary["built_with"].startswith("transformers LlamaModel(LlamaConfig(")
    assert rotary["owners"]["inv_freq"] == f"{LLAMA}:LlamaRotaryEmbedding"


def test_tiny_configs_are_small_and_consistent() -> None:
    from transformers import Gemma3TextConfig, LlavaConfig

    from bufferlint.runtime.hf import HEADS, LAYERS, VOCAB, tiny_configs

    label, llava, error = next(tiny_configs(LlavaConfig()))
    assert (label, error) == ("tiny", "")
    text, vision = llava.text_config, llava.vision_config
    assert text.hidden_size % text.num_attention_heads == 0
    assert text.num_attention_heads % text.num_key_value_heads == 0
    assert (text.num_hidden_layers, vision.num_hidden_layers) == (LAYERS, LAYERS)
    assert text.vocab_size == VOCAB and llava.image_token_id < VOCAB
    assert vision.image_size % vision.patch_size == 0
    _, gemma, _ = next(tiny_configs(Gemma3TextConfig()))
    assert len(gemma.layer_types) == gemma.num_hidden_layers == LAYERS
    assert gemma.head_dim * HEADS == gemma.hidden_size


def test_missing_transformers_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    """Parent side: check() stops before starting workers; worker side: the job's error."""
    monkeypatch.setitem(sys.modules, "transformers", None)  # find_spec and import fail
    monkeypatch.delitem(sys.modules, "bufferlint.runtime.hf", raising=False)
    with pytest.raises(RuntimeUnavailable) as info:
        check([PHASE_MODEL], RuntimeSettings(recipe="transformers"))
    assert str(info.value) == (
        "runtime mode needs transformers, which is not installed: "
        'pip install "bufferlint[transformers]"'
    )
    from bufferlint.runtime.confirm import Failed, _transformers

    with pytest.raises(Failed, match=r"recipe transformers: runtime mode needs transformers"):
        _transformers()


def test_recipe_is_known() -> None:
    validate(RuntimeSettings(recipe="transformers"))
