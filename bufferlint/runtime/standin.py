"""The CPU stand-in for a second device: the hooks run while the default device is `meta`
and the module lives on the materialization device.

On a GPU rank the module is materialized on `cuda:<rank>` while tensors made without a
device land on the default device (the CPU, or GPU 0): `compare.judge` sees the wrong
device. On a CPU-only machine both are the CPU, so a rebuild on the default device looks
right. Here the model is materialized again with `to_empty(device=...)` onto the same
device, but with `torch.device("meta")` as the default device while the recipe runs its
hooks: a tensor the hook makes on the default device comes out on `meta`, one made on the
module's device (`device=self.b.device`, `copy_`, `*_like`) does not.

A right rebuild is never called wrong: nothing but a tensor made on the default device
can put a `meta` tensor into a module materialized on a real device. The stand-in can
fail to judge, though: a hook that computes on the default device and copies the result
in place (`self.b.copy_(torch.arange(n))`, right on a GPU) cannot copy out of `meta`,
and then the devices are reported as not judged, never as wrong. Buffers stay as real
tensors, so hooks that branch on `.is_meta` take the branch they take on a real device.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from bufferlint.runtime.compare import held_tensor
from bufferlint.runtime.recipes import materialize
from bufferlint.runtime.report import NOT_JUDGED

if TYPE_CHECKING:
    from bufferlint.runtime.build import Construction
    from bufferlint.runtime.confirm import Subject

# Recipes whose materialization names its device explicitly, so that only what the hooks
# make without one follows the default device.
RECIPES = ("fsdp", "torch", "lightning")


def judge(
    subject: Subject,
    way: Construction,
    device: torch.device,
    mesh: Callable[[], Any],
    judged: dict[str, dict[str, Any]],
    build: Callable[[Construction, str, int], nn.Module],
) -> list[str]:
    """Marks in `judged` the named buffers a hook rebuilt on the default device; returns
    notes for the report."""
    if device.type != torch.get_default_device().type:
        return []  # a real second device: `compare.judge` has judged the device already
    if subject.recipe not in RECIPES:
        return [f"the default-device stand-in does not run under recipe {subject.recipe}"]
    model = build(way, "meta", subject.seed)
    try:
        with torch.device("meta"):
            materialize(subject.recipe, model, subject.hooks, device, mesh)
    except Exception as exc:  # a hook that needs real tensors from the default device
        line = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc) else ''}"
        for name in subject.buffers:
            if judged.get(name, {}).get("ok"):
                judged[name] = _not_judged(judged[name], line)
        return [f"the default-device stand-in could not run the hooks: {line}"]
    for name in subject.buffers:
        tensor = held_tensor(model, name)
        if tensor is not None and tensor.device.type == "meta" and judged.get(name, {}).get("ok"):
            judged[name] = {
                **judged[name],
                "ok": False,
                "reason": "made on the default device",
                "message": (
                    f"{name} is rebuilt on the default device: with `meta` as the default "
                    f"device and the module on {device}, the hooks left it on meta"
                ),
            }
    return []


def _not_judged(verdict: dict[str, Any], line: str) -> dict[str, Any]:
    return {
        **verdict,
        "ok": None,
        "reason": NOT_JUDGED,
        "message": f"{verdict['message']}; its device could not be judged ({line})",
    }
