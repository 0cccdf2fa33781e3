"""BL001: a buffer that construction computes and the convention's hook does not rebuild."""

from __future__ import annotations

from bufferlint.rules.base import (
    ClassRule,
    Flag,
    JudgedClass,
    advice,
    caveats,
    describe,
    pronouns,
    rebuilder,
)
from bufferlint.rules.registry import register


@register
class BufferNotRebuilt(ClassRule):
    code = "BL001"
    name = "buffer-not-rebuilt"
    summary = "Buffer built during construction is not rebuilt by the materialization hook"
    what = (
        "Checks `torch.nn.Module` subclasses for buffers that construction computes "
        "(`register_buffer`, `nn.Buffer`, or an allocation filled in place) but that "
        "the materialization hook (`reset_parameters` by default) does not rebuild."
    )
    why = (
        "Large models are built on the `meta` device and materialized later: FSDP and "
        "Lightning call `to_empty()`, which hands out uninitialized memory, then each "
        "module's `reset_parameters()`. A buffer the hook does not rebuild keeps "
        "whatever the memory held: zeros, leftovers or NaN. Nothing crashes; the model "
        "just trains worse.\n\n"
        "Lit-GPT shipped exactly this. Its RoPE cache was registered from a property "
        "setter, and `reset_parameters` re-ran the setter, whose rebuild branches "
        '(`if not hasattr(self, "cos")`, `elif value != self.cos.size(0)`) never fire '
        "after `to_empty()`. Multi-GPU runs trained with `cos` values that were tiny "
        "random numbers instead of starting at 1.0, while single-GPU runs (no meta "
        "device) were fine. The fix rebuilt the cache in the hook, "
        "`self.cos, self.sin = self.rope_cache(device=self.cos.device)`, and even that "
        "fix first rebuilt it on the wrong device.\n\n"
        "A rebuild that only runs under a guard on the buffer's own state "
        "(`hasattr(self, ...)`, `self.b.is_meta`, `self.b.device`, `self.b.size(...)`) "
        "does not count: after `to_empty()` such guards are false or read garbage. A "
        "non-persistent buffer is not in the state dict either, so loading a "
        "checkpoint cannot repair it.\n\n"
        "Under the `transformers` convention (which `auto` picks for Hugging Face "
        "models) the hook is the `_init_weights(module)` that `from_pretrained` runs "
        "on every submodule after giving buffers `empty_like` memory: a buffer counts "
        "as rebuilt when a branch that the class takes (`isinstance(module, ...)`, a "
        "class-name test) writes it, in the class's own model, a model of its file or "
        "of a file that imports it, or the base `PreTrainedModel` rules; the fix is "
        "such a branch (huggingface/transformers#48892, docs/conventions.md). Under "
        "`torchtitan` the trainer calls only the root's `init_weights(buffer_device=...)`: "
        "a layer's hook counts only if the hooks of the classes holding it call it, and "
        "the message names the holder that forgets the call."
    )
    example = """\
import torch
from torch import nn


class RotaryEmbedding(nn.Module):
    def __init__(self, dim: int, base: float = 10000.0) -> None:
        super().__init__()
        inv_freq = 1.0 / base ** (torch.arange(0, dim, 2).float() / dim)
        self.register_buffer("inv_freq", inv_freq, persistent=False)
        self.proj = nn.Linear(dim, dim)

    def reset_parameters(self) -> None:
        self.proj.reset_parameters()
"""
    use_instead = """\
import torch
from torch import nn


class RotaryEmbedding(nn.Module):
    def __init__(self, dim: int, base: float = 10000.0) -> None:
        super().__init__()
        self.dim = dim
        self.base = base
        self.register_buffer("inv_freq", self._inv_freq(), persistent=False)
        self.proj = nn.Linear(dim, dim)

    def _inv_freq(self, device=None) -> torch.Tensor:
        steps = torch.arange(0, self.dim, 2, device=device).float()
        return 1.0 / self.base ** (steps / self.dim)

    def reset_parameters(self) -> None:
        self.proj.reset_parameters()
        self.inv_freq = self._inv_freq(device=self.inv_freq.device)
"""
    fix_safety = (
        "The fix rebuilds each buffer inside the hook on the buffer's own device and "
        "dtype: in place under `torch.no_grad()` for constant factories, by re-calling "
        "the helper construction used, or by re-running the construction expression "
        "when every name it reads is still available on `self`. It is marked unsafe "
        "when the rebuild re-runs code that may have side effects or consume random "
        "numbers; where no rebuild can be derived, nothing is written and the finding "
        "says why. Under `transformers` the rebuild is an `isinstance(module, Owner)` "
        "branch in the `_init_weights` of the file's `PreTrainedModel`, written with "
        "`transformers.initialization` helpers, which leave tensors loaded from the "
        "checkpoint alone; a write no helper can express makes it unsafe. Under `timm`, "
        "whose `init_non_persistent_buffers` runs after the checkpoint is loaded, only "
        "non-persistent buffers go there; persistent ones, and the parameters a new "
        "hook re-initializes, go into `reset_parameters`. For a `torchtitan` layer the "
        "root's hook never reaches, the fix is the missing call in the holder's "
        "`init_weights` (a loop for a `ModuleList` or `ModuleDict`), forwarding "
        "`buffer_device`; none is written when the holder is in another file, the "
        "layer's hook needs other arguments, or the container also holds modules "
        "without the hook."
    )
    references = (
        "Lit-GPT: Lightning-AI/litgpt#862, fixed by #887, then #993 for the device",
        "Other public reports of the same failure: meta-pytorch/torchtune#218, "
        "huggingface/transformers#34234 and #45902, pytorch/torchtitan#4783, "
        "pytorch/pytorch#112012 and #178569, huggingface/pytorch-image-models#2350, "
        "mosaicml/llm-foundry#1745, hiyouga/LlamaFactory#10820",
    )
    fixable = True
    runtime_checked = True

    def check(self, judged: JudgedClass) -> Flag | None:
        missing = judged.missing
        if not missing or judged.report.has_hook is False:
            return None  # no hook at all is BL002's
        if judged.report.unreached:
            return Flag(_unreached_message(judged) + caveats(judged, missing), missing)
        updated = _updated(judged)
        if updated:
            return Flag(_update_message(judged, updated) + caveats(judged, missing), missing)
        noun, them, their = pronouns(missing)
        text = (
            f"{rebuilder(judged)} does not rebuild {noun} "
            f"{describe(missing, judged.path)}, built during construction: "
            f"{advice(judged, them, their)}"
        )
        return Flag(text + caveats(judged, missing), missing)


def _updated(judged: JudgedClass) -> dict[str, int]:
    """The missing buffers the hook updates relative to their value, by the line of the
    first update."""
    if judged.project is None:
        return {}
    from bufferlint import beyond

    names = [b.name for b in judged.missing]
    found = beyond.updates(judged.project, judged.report.qualified, judged.convention, names)
    return {u.name: u.line for u in found}


def _update_message(judged: JudgedClass, updated: dict[str, int]) -> str:
    hooks = rebuilder(judged)
    first = [b for b in judged.missing if b.name in updated]
    rest = [b for b in judged.missing if b.name not in updated]
    noun, them, their = pronouns(first)
    line = min(updated.values())
    text = (
        f"{hooks} updates {noun} {describe(first, judged.path)} relative to {their} current "
        f"value (line {line}), which after `to_empty()` is uninitialized memory: the hook "
        f"reads the garbage it means to repair; rebuild {them} from scratch on {their} own "
        "device"
    )
    if rest:
        text += f"; it does not rebuild {describe(rest, judged.path)} either"
    return text


def _unreached_message(judged: JudgedClass) -> str:
    """A root-only convention's hook that never reaches the class's (bufferlint.cascade)."""
    hook = judged.convention.hooks[0]
    owner = judged.report.qualified.rpartition(".")[2]
    noun, _, _ = pronouns(judged.missing)
    reasons = []
    for held in judged.report.unreached:
        holder = held.holder.rpartition(".")[2]
        if held.calls:
            reasons.append(f"`{holder}.{hook}` calls it, but nothing reaches `{holder}.{hook}`")
        else:
            reasons.append(
                f"`{holder}` holds it as `self.{held.attribute}`, and `{holder}.{hook}` "
                f"does not call `self.{held.attribute}.{hook}(...)`"
            )
    text = (
        f"the root's `{hook}` never reaches `{owner}.{hook}`, so {noun} "
        f"{describe(judged.missing, judged.path)} built during construction "
        f"{'is' if len(judged.missing) == 1 else 'are'} not rebuilt: {'; '.join(reasons)}"
    )
    if any(not held.calls for held in judged.report.unreached):
        text += ": call it there"
    return text
