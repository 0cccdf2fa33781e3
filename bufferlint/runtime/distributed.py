"""Ranks: which device this process materializes on, the process group, and gathering every
rank's result on rank 0.

`check_in_process` is also the entry point for clusters: call it on every rank after torchrun
or Lightning's launcher has initialized the process group.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist

from bufferlint.runtime import RuntimeSettings, RuntimeTarget, validate
from bufferlint.runtime.confirm import confirm_job, exception_line
from bufferlint.runtime.report import Result, failure, merge_ranks, summarize


def local_device(world: int) -> torch.device:
    """One GPU per rank when there are enough on this node, else the CPU."""
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    local_world = int(os.environ.get("LOCAL_WORLD_SIZE", str(world)))
    if torch.cuda.is_available() and local_world <= torch.cuda.device_count():
        return torch.device("cuda", local_rank)
    return torch.device("cpu")


def init_from_env(timeout: float) -> None:
    """env:// rendezvous, as torchrun sets it up (MASTER_ADDR, MASTER_PORT, RANK, WORLD_SIZE):
    NCCL when every local rank has its own GPU, gloo otherwise."""
    device = local_device(int(os.environ["WORLD_SIZE"]))
    if device.type == "cuda":
        torch.cuda.set_device(device)
    backend = "nccl" if device.type == "cuda" else "gloo"
    dist.init_process_group(backend, timeout=timedelta(seconds=max(timeout, 30.0)))


class Ranks:
    """This process's place among the ranks checking a class together. Without a process group
    it is rank 0 of 1, and makes a private one-rank group only if fsdp2 needs a mesh."""

    def __init__(self) -> None:
        grouped = dist.is_available() and dist.is_initialized()
        self.rank = dist.get_rank() if grouped else 0
        self.world = dist.get_world_size() if grouped else 1
        self.device = local_device(self.world)
        self._mesh: Any = None
        self._own_group = False

    def mesh(self) -> Any:
        """The device mesh fsdp2 shards over, made on first use (on every rank alike)."""
        from torch.distributed.device_mesh import init_device_mesh

        if self._mesh is None:
            if not dist.is_initialized():
                backend = "nccl" if self.device.type == "cuda" else "gloo"
                dist.init_process_group(backend, store=dist.HashStore(), rank=0, world_size=1)
                self._own_group = True
            self._mesh = init_device_mesh(self.device.type, (self.world,))
        return self._mesh

    def close(self) -> None:
        """Destroy the private one-rank group, if one was made; never the caller's."""
        if self._own_group:
            dist.destroy_process_group()
            self._own_group = False
            self._mesh = None

    def check(self, job: dict[str, Any]) -> Result | None:
        """Run one JSON job on this rank (see `gather`)."""
        return self.gather(
            lambda device, mesh: confirm_job(job, device, mesh), job["recipe"], job["label"]
        )

    def gather(
        self, run: Callable[[torch.device, Callable[[], Any]], Result], recipe: str, label: str
    ) -> Result | None:
        """Run a check on this rank; rank 0 returns the finished result, other ranks None.
        Every rank reaches the same gather, whatever happened to it before."""
        try:
            result = run(self.device, self.mesh)
        except (Exception, SystemExit) as exc:  # a rank must still reach the gather
            result = failure(
                "error",
                "check",
                f"check aborted: {exception_line(exc)}",
                recipe=recipe,
                devices=1,
                device=self.device.type,
                target=label,
            )
        if self.world == 1:
            return finish(result)
        gathered: list[Any] = [None] * self.world if self.rank == 0 else []
        dist.gather_object(result, gathered if self.rank == 0 else None, dst=0)
        return merge_ranks(gathered, recipe) if self.rank == 0 else None


def finish(result: Result) -> Result:
    """A single rank's result, summarized."""
    result = {**result, "devices": 1}
    result["summary"] = summarize(result)
    return result


def check_in_process(
    target: RuntimeTarget, settings: RuntimeSettings | None = None
) -> Result | None:
    """Check one target in this process, on every rank of an already initialized process group
    (torchrun, Lightning's launcher) or alone. Rank 0 gets the merged result, other ranks None.
    No timeout and no crash isolation here: that is what `bufferlint.runtime.check` adds."""
    from bufferlint.runtime.launch import target_job

    settings = settings or RuntimeSettings()
    validate(settings)
    ranks = Ranks()
    try:
        return ranks.check(target_job(target, settings))
    finally:
        ranks.close()
