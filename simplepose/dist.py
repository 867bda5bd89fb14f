"""torchrun helpers: process-group setup, rank queries and small collectives.

Launch (one node, N processes; each process reads RANK / LOCAL_RANK / WORLD_SIZE)::

    torchrun --standalone --nproc_per_node=4 train_dist.py --config configs/imhn_512_coco.yaml

    # two nodes, 4 GPUs each (run on both, --node_rank 0 / 1)
    torchrun --nnodes=2 --node_rank=0 --nproc_per_node=4 \\
        --master_addr=HOST0 --master_port=29500 train_dist.py --config configs/imhn_512_coco.yaml

    # single process, no torchrun: WORLD_SIZE is unset and nothing is initialised
    python train_dist.py --config configs/imhn_tiny.yaml

The backend is NCCL when CUDA is available (each process uses ``cuda:LOCAL_RANK``), gloo
otherwise (CPU). Every helper also works without an initialised process group (world size 1),
so library code calls them unconditionally.
"""

from __future__ import annotations

import datetime
import logging
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

__all__ = [
    "DistInfo",
    "all_gather_object",
    "barrier",
    "broadcast_object",
    "cleanup",
    "get_rank",
    "get_world_size",
    "init_distributed",
    "is_dist",
    "is_main",
    "reduce_max",
    "reduce_mean",
]

LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class DistInfo:
    """Where this process sits: global rank, rank on its node, number of processes, device."""

    rank: int
    local_rank: int
    world_size: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return default if value in (None, "") else int(value)


def init_distributed(device: str = "auto", timeout_s: float = 1800.0) -> DistInfo:
    """Read the torchrun environment and initialise the process group when WORLD_SIZE > 1.

    Args:
        device: ``"auto"`` (CUDA when available), ``"cpu"`` or ``"cuda"``.
        timeout_s: collective timeout.

    Returns:
        :class:`DistInfo`. With CUDA the current device is set to ``cuda:LOCAL_RANK``.
    """
    rank = _env_int("RANK", 0)
    local_rank = _env_int("LOCAL_RANK", 0)
    world_size = _env_int("WORLD_SIZE", 1)
    use_cuda = torch.cuda.is_available() if device == "auto" else device == "cuda"
    if use_cuda and not torch.cuda.is_available():
        raise RuntimeError("train.device is 'cuda' but no CUDA device is available")
    if use_cuda:
        torch.cuda.set_device(local_rank)
        dev = torch.device("cuda", local_rank)
    else:
        dev = torch.device("cpu")
    if world_size > 1 and not dist.is_initialized():
        backend = "nccl" if use_cuda else "gloo"
        kwargs = {"device_id": dev} if use_cuda else {}
        dist.init_process_group(
            backend=backend,
            rank=rank,
            world_size=world_size,
            timeout=datetime.timedelta(seconds=timeout_s),
            **kwargs,
        )
        LOG.info("initialised %s process group: rank %d of %d", backend, rank, world_size)
    return DistInfo(rank=rank, local_rank=local_rank, world_size=world_size, device=dev)


def is_dist() -> bool:
    """True when a process group with more than one process is running."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def get_rank() -> int:
    return dist.get_rank() if is_dist() else 0


def get_world_size() -> int:
    return dist.get_world_size() if is_dist() else 1


def is_main() -> bool:
    """True on global rank 0 (and in a single process)."""
    return get_rank() == 0


def barrier() -> None:
    """Wait for every process (no-op in a single process)."""
    if is_dist():
        if dist.get_backend() == "nccl":
            dist.barrier(device_ids=[torch.cuda.current_device()])
        else:
            dist.barrier()


def all_gather_object(obj) -> list:
    """``[obj of rank 0, obj of rank 1, ...]`` (picklable objects; ``[obj]`` when single)."""
    if not is_dist():
        return [obj]
    out = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def broadcast_object(obj, src: int = 0):
    """``obj`` of rank ``src`` on every rank."""
    if not is_dist():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def _backend_device(tensor: torch.Tensor) -> torch.Tensor:
    if dist.get_backend() == "nccl" and not tensor.is_cuda:
        return tensor.cuda()
    return tensor


def reduce_mean(value) -> torch.Tensor:
    """Mean of a scalar or tensor over all processes (returned as a detached tensor)."""
    t = torch.as_tensor(value).detach().clone().float()
    if not is_dist():
        return t
    t = _backend_device(t)
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t / dist.get_world_size()


def reduce_max(value) -> torch.Tensor:
    """Maximum of a scalar or tensor over all processes (detached tensor)."""
    t = torch.as_tensor(value).detach().clone().float()
    if not is_dist():
        return t
    t = _backend_device(t)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return t


def cleanup() -> None:
    """Destroy the process group if one was initialised."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
