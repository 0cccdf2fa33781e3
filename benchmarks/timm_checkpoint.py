"""timm's checkpoint path on a fixed copy of timm: do the loaded tensors survive the walk?

    python benchmarks/timm_checkpoint.py --timm /tmp/fixed --cache /tmp/h18/fs

`--timm` is a folder holding a `timm` package fixed with `bufferlint --fix --unsafe-fixes`
(at least `layers/norm_act.py` and `models/efficientformer.py`); `--cache` is
benchmarks/fix_sweep.py's, for timm's pure-Python dependencies and torchvision. For each
model: `create_model` on meta (`freeze_batch_norm_2d` for the frozen norms), `to_empty()`,
`load_state_dict` of a state with random values, `reinit_non_persistent_buffers`, and the
count of loaded tensors still equal; then the from-scratch path (`reset_parameters` where
defined, then the walk) against an eager build, for the fixed class's buffers.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

CHILD = """
import sys
sys.path.insert(0, {benchmarks!r})
import fix_sweep
fix_sweep._stub_missing()
import torch, timm
from timm.layers import freeze_batch_norm_2d
from timm.layers.norm_act import FrozenBatchNormAct2d
from timm.models._manipulate import reinit_non_persistent_buffers
from timm.models.efficientformer import Attention


def build(name, frozen, meta):
    with torch.device("meta" if meta else "cpu"):
        model = timm.create_model(name)
        return freeze_batch_norm_2d(model) if frozen else model


for name, frozen, cls in (
    ("efficientnet_b0", True, FrozenBatchNormAct2d),
    ("efficientformer_l1", False, Attention),
):
    torch.manual_seed(0)
    state = {{k: v.clone() for k, v in build(name, frozen, False).state_dict().items()}}
    draw = torch.Generator().manual_seed(1)
    for value in state.values():
        if value.is_floating_point():
            value.copy_(torch.rand(value.shape, generator=draw) + 0.5)
    model = build(name, frozen, True)
    model.to_empty(device="cpu")
    model.load_state_dict(state)
    reinit_non_persistent_buffers(model)
    after = model.state_dict()
    lost = [k for k in state if not torch.equal(after[k], state[k])]
    model = build(name, frozen, True)
    model.to_empty(device="cpu")
    with torch.no_grad():
        for module in model.modules():
            getattr(module, "reset_parameters", lambda: None)()
    reinit_non_persistent_buffers(model)
    torch.manual_seed(0)
    eager, got = build(name, frozen, False).state_dict(), model.state_dict()
    wrong = [
        f"{{path}}.{{b}}"
        for path, module in model.named_modules()
        if isinstance(module, cls)
        for b, _ in module.named_buffers(recurse=False)
        if not torch.equal(got[f"{{path}}.{{b}}"], eager[f"{{path}}.{{b}}"])
    ]
    print(
        f"| {{name}} | {{cls.__name__}} | {{len(state) - len(lost)}}/{{len(state)}} | "
        f"{{', '.join(lost[:3])}}{{' ...' if len(lost) > 3 else ''}} | {{len(wrong)}} |"
    )
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timm", type=Path, required=True, help="folder holding a fixed timm")
    parser.add_argument("--cache", type=Path, required=True, help="fix_sweep.py's cache")
    args = parser.parse_args(argv)
    benchmarks = str(Path(__file__).resolve().parent)
    path = [args.timm, args.cache / "site", args.cache / "trees" / "torchvision-0.28.0"]
    print("| model | class | loaded tensors kept | overwritten | from scratch: wrong buffers |")
    print("|---|---|---|---|---|")
    code = CHILD.format(benchmarks=benchmarks)
    env = {"PYTHONPATH": ":".join(map(str, path)), "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-c", code], env=env, check=False)
    return done.returncode


if __name__ == "__main__":
    raise SystemExit(main())
