"""assert_materializes in the test process, and building small instances from signatures."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from bufferlint.runtime.build import constructions, small_dataclass  # noqa: E402
from bufferlint.testing import assert_materializes  # noqa: E402

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "runtime"


@pytest.fixture(autouse=True)
def fixture_imports(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(FIXTURES))


def test_assert_materializes_reports_garbage() -> None:
    from litgpt_rope import GPT, Config

    def tiny_gpt() -> GPT:
        return GPT(Config(block_size=8, vocab_size=16, n_layer=1, n_head=2, n_embd=8))

    with pytest.raises(AssertionError) as info:
        assert_materializes(tiny_gpt)
    report = str(info.value)
    assert "CONFIRMED" in report
    assert (
        "cos: WRONG: cos[0, :4] expected [1.0, 1.0, 1.0, 1.0], got [nan, nan, nan, nan]" in report
    )
    assert "built with factory" in report


def test_assert_materializes_passes_for_a_correct_rebuild() -> None:
    from rope_fixed import RotaryEmbedding

    assert_materializes(lambda: RotaryEmbedding(8, max_seq_len=16), recipe="torch")
    assert_materializes(lambda: RotaryEmbedding(8, max_seq_len=16), recipe="fsdp2")
    assert not torch.distributed.is_initialized()  # the one-rank group for fsdp2 is gone


def test_assert_materializes_restores_global_state() -> None:
    from random_buffer import NoiseTable

    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    assert_materializes(NoiseTable)
    assert torch.equal(torch.rand(3), expected)
    assert torch.get_default_dtype() == torch.float32


def test_assert_materializes_needs_an_importable_factory_for_ranks() -> None:
    with pytest.raises(ValueError, match="module-level function"):
        assert_materializes(lambda: torch.nn.Linear(2, 2), devices=2)


def test_synthesized_config_is_small_and_consistent() -> None:
    from litgpt_rope import Config

    config = small_dataclass(Config)
    assert (config.n_embd, config.n_head, config.block_size, config.n_layer) == (8, 2, 16, 1)
    assert config.head_size * config.n_head == config.n_embd
    assert config.rope_base == 10000  # not a size: kept


@dataclasses.dataclass
class Options:
    max_seq_len: int = 8192
    eps: float = 1e-6


class Model(torch.nn.Module):
    def __init__(self, dim: int, opts: Options, theta: float, causal: bool, name="x") -> None:
        super().__init__()


def test_constructions_in_order() -> None:
    from tokenized import TokenEmbedding

    ways, notes = constructions(Model, None, "")
    assert [w.description for w in ways] == [
        "synthesized args {dim=8, opts=Options(max_seq_len=16), theta=10000.0, causal=False}",
        # then each argument changed in turn, for buffers only some configurations register
        "synthesized args {dim=8, opts=Options(max_seq_len=16), theta=10000.0, causal=True}",
    ]
    ways, notes = constructions(TokenEmbedding, None, "")
    assert ways == [] and notes == ["synthesized args: cannot make a Tokenizer for 'tokenizer'"]
