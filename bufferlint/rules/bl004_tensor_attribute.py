"""BL004: a tensor that construction stores in a plain attribute."""

from __future__ import annotations

from bufferlint.rules.base import ClassRule, Flag, JudgedClass, describe
from bufferlint.rules.registry import register


@register
class TensorAttribute(ClassRule):
    code = "BL004"
    name = "tensor-attribute"
    summary = "Module keeps a tensor in a plain attribute, not a buffer or parameter"
    what = (
        "Checks `torch.nn.Module` subclasses whose construction stores a tensor, or a "
        "tuple, list or dict of tensors, in a plain attribute (`self.x = torch.arange(n)`, "
        "`self.original_inv_freq = self.inv_freq`) rather than registering it as a "
        "buffer or parameter."
    )
    why = (
        "`to_empty()`, `.to()`, `.cuda()` and `state_dict()` only see parameters and "
        "buffers. A tensor in a plain attribute stays where construction put it: under "
        "meta-device construction it stays on `meta`, so forward fails on it, or a hook "
        "that copies from it copies nothing. An attribute aliasing a buffer keeps the "
        "buffer's old tensor after materialization replaces it.\n\n"
        "transformers 4.47 shipped `self.original_inv_freq = self.inv_freq` in 17 "
        "rotary-embedding classes; 5.x registers it as a buffer.\n\n"
        "Not reported: numbers, `torch.Size`, dtypes, devices, values whose type "
        "bufferlint cannot tell (a helper's result), and classes that are not modules."
    )
    example = """\
import torch
from torch import nn


class Positions(nn.Module):
    def __init__(self, n: int) -> None:
        super().__init__()
        self.ids = torch.arange(n)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.ids[: x.shape[-1]]
"""
    use_instead = """\
import torch
from torch import nn


class Positions(nn.Module):
    def __init__(self, n: int) -> None:
        super().__init__()
        self.register_buffer("ids", torch.arange(n), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.ids[: x.shape[-1]]

    def reset_parameters(self) -> None:
        with torch.no_grad():
            self.ids.copy_(torch.arange(self.ids.numel()))
"""
    fix_safety = (
        "The fix registers the tensor as a non-persistent buffer where construction "
        "stores it, in the file's style (`self.x = nn.Buffer(t, persistent=False)` in a "
        "file that uses `nn.Buffer`, `self.register_buffer(...)` otherwise), so that the "
        "checkpoint format does not change; the rebuild in the hook then comes from "
        "BL001/BL002's fix. It is unsafe when other code assigns the attribute (a buffer "
        "only accepts tensors or None) or when the attribute aliases a buffer (the alias "
        "becomes a copy of its own, so updates to one no longer show in the other)."
    )
    references = (
        "transformers 4.47.1 `original_inv_freq`, a buffer since 5.0 "
        "(`test_all_tensors_are_parameter_or_buffer`, huggingface/transformers#42309)",
    )

    fixable = True
    fix_kind = "register"
    runtime_checked = True

    def check(self, judged: JudgedClass) -> Flag | None:
        if judged.project is None:
            return None
        attributes = judged.tensors.attributes
        if not attributes:
            return None
        sites = [a.site for a in attributes]
        many = len(sites) > 1
        named = describe(sites, judged.path, persistence=False)
        them, stay = ("them", "they stay") if many else ("it", "it stays")
        text = (
            f"{'attributes' if many else 'attribute'} {named} "
            f"{'hold tensors' if many else 'holds a tensor'} outside the module's buffers "
            f"and parameters: `to_empty()`, `.to()` and `state_dict()` never see {them}, so "
            f"after a meta-device build {stay} on `meta`; register {them} as "
            f"{'non-persistent buffers' if many else 'a non-persistent buffer'}"
        )
        aliased = [(a.site.name, a.aliases) for a in attributes if a.aliases]
        if aliased:
            name, of = aliased[0]
            text += f"; `{name}` aliases buffer `{of[0]}`, whose tensor materialization replaces"
        return Flag(text, sites)
