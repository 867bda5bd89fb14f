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

Faults (a rank launched by torchrun is never left behind):

* **launcher gone**: a rank asks the kernel for SIGKILL when its parent (torchrun) dies
  (``prctl(PR_SET_PDEATHSIG)`` on Linux) and a watchdog thread also compares the parent pid every
  second, so ``kill -9`` of torchrun's process group leaves no rank running, also during
  start-up (before the process group exists);
* **rank stopped or hung**: collectives time out after ``timeout_s`` (``train.dist_timeout_s``,
  default 300 s instead of torch's 1800 s). Every rank publishes a heartbeat counter in the
  rendezvous store; the watchdog logs, by rank number, any rank whose counter has not moved
  for half the timeout, and :func:`describe_collective_failure` turns the timeout error into
  one line naming those ranks.
"""

from __future__ import annotations

import datetime
import logging
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass

import torch
import torch.distributed as dist

__all__ = [
    "DistInfo",
    "all_gather_object",
    "barrier",
    "broadcast_object",
    "cleanup",
    "describe_collective_failure",
    "get_rank",
    "get_world_size",
    "init_distributed",
    "is_dist",
    "is_main",
    "reduce_max",
    "reduce_mean",
    "stale_ranks",
    "watch_launcher",
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


DEFAULT_TIMEOUT_S = 300.0  # collective timeout (train.dist_timeout_s)
_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


# ------------------------------------------------------------------ watchdog
class _Watchdog(threading.Thread):
    """Daemon thread: exits the process when the launcher dies; heartbeats through the store.

    Parent check: ``os.getppid()`` differs from the pid seen at start (the process was
    re-parented, i.e. its launcher died) -> log and ``os._exit(1)``.

    Heartbeat (after :meth:`attach`): every ``interval_s`` this rank increments its counter under
    ``simplepose/heartbeat/<rank>`` and reads every other rank's; a counter that has not moved for
    ``stale_after_s`` marks that rank stale (logged once, by number; logged again when it
    recovers). Uses its own store client, so it never shares a connection with a collective.
    """

    def __init__(self, parent_pid: int, poll_s: float = 1.0):
        super().__init__(name="simplepose-dist-watchdog", daemon=True)
        self.parent_pid = parent_pid
        self.poll_s = poll_s
        self.lock = threading.Lock()
        self.store = None
        self.rank = 0
        self.world = 1
        self.interval_s = poll_s
        self.stale_after_s = float("inf")
        self.counter = 0
        self.seen: dict[int, tuple[bytes | None, float]] = {}
        self.stale: dict[int, float] = {}  # rank -> seconds without a heartbeat (when stale)
        self.store_error: str | None = None
        self._next_beat = 0.0

    def attach(self, store, rank: int, world: int, timeout_s: float) -> None:
        with self.lock:
            now = time.monotonic()
            self.store, self.rank, self.world = store, rank, world
            self.interval_s = min(5.0, max(0.2, timeout_s / 10.0))
            self.stale_after_s = max(3.0 * self.interval_s, timeout_s / 2.0)
            self.seen = {r: (None, now) for r in range(world) if r != rank}
            self._next_beat = 0.0

    def run(self) -> None:  # pragma: no cover - exercised through subprocess tests
        while True:
            if os.getppid() != self.parent_pid:
                LOG.error("launcher (pid %d) is gone; rank %s exits", self.parent_pid,
                          os.environ.get("RANK", "?"))
                logging.shutdown()
                os._exit(1)
            if self.store is not None and time.monotonic() >= self._next_beat:
                self._beat()
                self._next_beat = time.monotonic() + self.interval_s
            time.sleep(min(self.poll_s, self.interval_s))

    def _beat(self) -> None:
        store = self.store
        try:
            self.counter += 1
            store.set(str(self.rank), str(self.counter))
            keys = [str(r) for r in self.seen]
            values = store.multi_get(keys) if keys and store.check(keys) else None
        except Exception as exc:  # noqa: BLE001 - a dead store must not kill the rank
            if self.store_error is None:
                LOG.warning("rank %d: heartbeat store unreachable (%s)", self.rank,
                            str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
            self.store_error = str(exc)
            values = None
        else:
            self.store_error = None
        now = time.monotonic()
        with self.lock:
            for i, r in enumerate(self.seen):
                value, since = self.seen[r]
                if values is not None and values[i] == _DONE.encode():
                    self.seen[r] = (values[i], float("inf"))  # finished: never stale
                    self.stale.pop(r, None)
                    continue
                if values is not None and values[i] != value:
                    self.seen[r] = (values[i], now)
                    if r in self.stale:
                        LOG.warning("rank %d answers again", r)
                        del self.stale[r]
                    continue
                age = now - since
                if age > self.stale_after_s:
                    if r not in self.stale:
                        LOG.error("rank %d has not answered for %.0f s: stopped, hung or dead "
                                  "(seen from rank %d)", r, age, self.rank)
                    self.stale[r] = age

    def stale_ranks(self) -> dict[int, float]:
        with self.lock:
            return dict(self.stale)


_WATCHDOG: _Watchdog | None = None
_DONE = "done"


def _set_parent_death_signal(sig: int) -> bool:
    """Linux: have the kernel send ``sig`` to this process when its parent exits."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0) == 0
    except (OSError, AttributeError):  # pragma: no cover - exotic libc
        return False


def watch_launcher() -> None:
    """Make this process exit as soon as its launcher (the parent process) is gone.

    Sets the parent-death signal to SIGKILL (Linux) and starts the watchdog thread (every
    platform; it also carries the heartbeat once the process group exists). Idempotent. Called
    by :func:`init_distributed` for processes started by a launcher (torchrun sets
    ``TORCHELASTIC_RUN_ID``; any WORLD_SIZE > 1).
    """
    global _WATCHDOG
    if _WATCHDOG is not None:
        return
    parent = os.getppid()
    _set_parent_death_signal(signal.SIGKILL)
    if os.getppid() != parent or parent == 1:  # died before the signal was armed
        LOG.error("launcher is gone before start-up; exiting")
        logging.shutdown()
        os._exit(1)
    _WATCHDOG = _Watchdog(parent)
    _WATCHDOG.start()


def _attach_heartbeat(rank: int, world_size: int, timeout_s: float) -> None:
    """Give the watchdog a store client of its own (env:// rendezvous only)."""
    addr, port = os.environ.get("MASTER_ADDR"), os.environ.get("MASTER_PORT")
    if _WATCHDOG is None or not addr or not port:
        return
    try:
        client = dist.TCPStore(addr, int(port), is_master=False, wait_for_workers=False,
                               timeout=datetime.timedelta(seconds=max(2.0, timeout_s / 10.0)))
    except Exception as exc:  # noqa: BLE001 - heartbeat is a diagnostic, not a requirement
        LOG.warning("rank %d: no heartbeat store (%s); a stopped rank will not be named",
                    rank, str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        return
    _WATCHDOG.attach(dist.PrefixStore("simplepose/heartbeat", client), rank, world_size,
                     timeout_s)


def stale_ranks() -> dict[int, float]:
    """``{rank: seconds without a heartbeat}`` of the ranks this process considers stale."""
    return _WATCHDOG.stale_ranks() if _WATCHDOG is not None else {}


def describe_collective_failure(exc: BaseException) -> str | None:
    """One line for a distributed error (collective timeout, peer gone), or None.

    Names the ranks whose heartbeat stopped (:func:`stale_ranks`) and the configured timeout.
    """
    dist_errors = (dist.DistError,) if hasattr(dist, "DistError") else ()
    text = str(exc)
    is_dist_error = isinstance(exc, dist_errors) or (
        isinstance(exc, RuntimeError)
        and any(w in text for w in ("gloo", "Gloo", "NCCL", "Connection closed by peer",
                                    "Timed out", "timed out", "Connection reset"))
    )
    if not is_dist_error:
        return None
    first = (text.strip().splitlines() or [type(exc).__name__])[0]
    stale = stale_ranks()
    if not stale and _WATCHDOG is not None and _WATCHDOG.store is not None:
        deadline = time.monotonic() + 2.0 * _WATCHDOG.interval_s  # let the watchdog look again
        while not stale and time.monotonic() < deadline:
            time.sleep(0.05)
            stale = stale_ranks()
    timeout = _TIMEOUT_S if _TIMEOUT_S is not None else DEFAULT_TIMEOUT_S
    if stale:
        who = ", ".join(f"rank {r} (silent for {age:.0f} s)" for r, age in sorted(stale.items()))
        return (f"rank {get_rank_env()}: a collective failed (timeout train.dist_timeout_s="
                f"{timeout:g} s): {who} stopped answering: {first}")
    return (f"rank {get_rank_env()}: a collective failed (timeout train.dist_timeout_s="
            f"{timeout:g} s; no rank has been silent for long, a peer may have exited): {first}")


def get_rank_env() -> int:
    """This process's rank from the environment (also after the process group is gone)."""
    return _env_int("RANK", 0)


_TIMEOUT_S: float | None = None


# ------------------------------------------------------------------ process group
def _check_device(device: str, world_size: int, option: str) -> bool:
    """True when ``device`` (``"auto"``, ``"cpu"`` or ``"cuda"``) means CUDA here.

    Raises :class:`~simplepose.errors.InputError` naming ``option`` when CUDA is asked for but
    absent, or when a multi-process CUDA run needs NCCL and this torch build has none.
    """
    from simplepose.errors import InputError

    if device not in ("auto", "cpu", "cuda"):
        raise InputError(f"{option} must be 'auto', 'cpu' or 'cuda', got {device!r}")
    use_cuda = torch.cuda.is_available() if device == "auto" else device == "cuda"
    if use_cuda and not torch.cuda.is_available():
        raise InputError(
            f"{option} is 'cuda' but no CUDA device is available; set {option} to cpu or auto"
        )
    if use_cuda and world_size > 1 and not dist.is_nccl_available():
        raise InputError(
            f"{option} is {device!r}: CUDA with {world_size} processes needs NCCL, which this "
            f"torch build lacks; set {option} to cpu (gloo) or install a torch build with NCCL"
        )
    return use_cuda


def init_distributed(
    device: str = "auto", timeout_s: float = DEFAULT_TIMEOUT_S, option: str = "train.device"
) -> DistInfo:
    """Read the torchrun environment and initialise the process group when WORLD_SIZE > 1.

    Args:
        device: ``"auto"`` (CUDA when available), ``"cpu"`` or ``"cuda"``.
        timeout_s: collective timeout in seconds (``train.dist_timeout_s``).
        option: how the caller's user spells ``device`` (named in error messages).

    A process started by a launcher also gets :func:`watch_launcher` (exit when torchrun dies)
    and, once the group exists, a heartbeat that names stopped ranks.

    Returns:
        :class:`DistInfo`. With CUDA the current device is set to ``cuda:LOCAL_RANK``.

    Raises:
        InputError: CUDA requested but absent, or NCCL missing for a multi-process CUDA run.
    """
    global _TIMEOUT_S
    rank = _env_int("RANK", 0)
    local_rank = _env_int("LOCAL_RANK", 0)
    world_size = _env_int("WORLD_SIZE", 1)
    if not timeout_s > 0:
        raise ValueError(f"timeout_s must be > 0, got {timeout_s}")
    use_cuda = _check_device(device, world_size, option)
    if world_size > 1 or os.environ.get("TORCHELASTIC_RUN_ID"):
        watch_launcher()
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
        _TIMEOUT_S = float(timeout_s)
        _attach_heartbeat(rank, world_size, float(timeout_s))
        LOG.info("initialised %s process group: rank %d of %d (collective timeout %g s)",
                 backend, rank, world_size, timeout_s)
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
    """Destroy the process group if one was initialised (the heartbeat says "done" first, so
    ranks still finishing do not report this one as stopped)."""
    if _WATCHDOG is not None and _WATCHDOG.store is not None:
        with _WATCHDOG.lock:
            store, _WATCHDOG.store = _WATCHDOG.store, None
        try:
            store.set(str(_WATCHDOG.rank), _DONE)
        except Exception as exc:  # noqa: BLE001 - best effort
            LOG.debug("heartbeat store gone at cleanup: %s", exc)
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
