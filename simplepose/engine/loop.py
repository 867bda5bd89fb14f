"""The training loop: one :class:`Trainer` for bottom-up (IMHN) and top-down (CPN, MSPN, RSN).

Per process (torchrun launches one per GPU, see :mod:`simplepose.dist`):

1. seed python / numpy / torch with ``cfg.seed``, build the model of the config's
   :class:`~simplepose.spec.PoseModelSpec` (:func:`~simplepose.engine.builders.build_spec`;
   identical on every rank), optionally
   convert BatchNorm to SyncBatchNorm (CUDA only), wrap it in DDP
   (``find_unused_parameters=False``), then re-seed the RNGs with ``cfg.seed + rank``;
2. the loss is the spec's loss factory: bottom-up ``MultiScaleFocalL2Loss`` on ``preds[stack][scale]``;
   CPN ``(global_outs, refine_out)`` -> ``CPNLoss``; MSPN/RSN ``(heatmap, stages)`` (train mode)
   -> ``CoarseToFineLoss``, both with the target indices of the data codec;
3. data: a ``DistributedSampler`` (``shuffle``, ``drop_last``, seed ``data.seed``) gives each rank
   its part of a permutation that depends only on (seed, epoch); the dataset draws its
   augmentation from (seed, epoch, index). A ``DataLoader`` is built per epoch over the rank's
   indices, minus those already consumed when resuming mid-epoch;
4. one *iteration* = one optimiser step over ``grad_accum_steps`` micro-batches of
   ``data.batch_size`` per rank (``no_sync`` on all but the last micro-batch), under
   ``torch.autocast`` when ``train.amp`` is bf16/fp16 (fp16 with a ``GradScaler``, CUDA only).
   The LR is set before every step from :func:`simplepose.engine.schedule.lr_at`;
5. a micro-batch whose loss is non-finite or above ``train.skip_loss_above`` on *any* rank makes
   every rank skip the whole iteration (no backward for the rest, no optimiser step); the data
   and the iteration counter still advance, and the count is logged (``skipped`` column);
6. rank 0 writes ``config.yaml``, ``metrics.csv`` (every ``log_every`` iterations), the training
   checkpoint ``last.pt`` (atomically, every ``checkpoint_every_iters`` iterations and at every
   epoch end), and at the end ``model_final.safetensors`` (:func:`simplepose.checkpoint.save_model`,
   with the whole spec) and ``loss.png``.

The training checkpoint and the RNG states are in :mod:`simplepose.engine.state`; the
dataset, codec, loss and optimiser builders in :mod:`simplepose.engine.builders`.

Resuming restores that state and continues at (epoch, step_in_epoch), skipping the batches of the
epoch that were already consumed, so on CPU with the same world size and config the final weights
are bit-identical to an uninterrupted run's (tested in ``tests/test_distributed.py``).
"""

from __future__ import annotations

import contextlib
import csv
import logging
import math
import os
import time
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler, Sampler

from simplepose import dist as sdist
from simplepose.config import Config, config_to_dict, save_config
from simplepose.engine.builders import (
    build_loss,
    build_optimizer,
    build_spec,
    build_train_dataset,
    loss_name,
)
from simplepose.engine.schedule import lr_from_config
from simplepose.engine.state import (
    CHECKPOINT_FORMAT,
    capture_rng_state,
    config_changes,
    load_training_checkpoint,
    restore_rng_state,
    save_training_checkpoint,
    seed_everything,
    worker_init,
)
from simplepose.errors import CheckpointError, InputError
from simplepose.utils.io import atomic_path

__all__ = ["FINAL_MODEL", "LAST_CHECKPOINT", "Trainer"]

LOG = logging.getLogger(__name__)

LAST_CHECKPOINT = "last.pt"
FINAL_MODEL = "model_final.safetensors"
METRICS_FIELDS = ["iteration", "epoch", "loss", "lr", "samples_per_s", "skipped", "time_s"]


def resolve_amp(amp: str, device_type: str, log: bool = True) -> str:
    """The mixed precision actually used: ``train.amp`` on CUDA, ``"off"`` elsewhere.

    On CPU, bf16 autocast trains several times slower than float32 (RSN-18, 3 iterations: 83.8 s
    against 11.5 s) and fp16 needs CUDA's GradScaler, so the setting is ignored there, with a log
    line; the config keeps it for the GPU runs it is written for.
    """
    if amp == "off" or device_type == "cuda":
        return amp
    if log:
        LOG.info("train.amp=%s ignored on %s: mixed precision is used on CUDA only; training in float32",
                 amp, device_type)
    return "off"


def loader_workers(requested: int, world_size: int, log: bool = True) -> int:
    """``data.workers`` capped to the CPU cores available to each of ``world_size`` processes."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cores = os.cpu_count() or 1
    cap = max(cores // max(world_size, 1), 0)
    if requested > cap:
        if log:
            LOG.info("data.workers=%d capped to %d: %d CPU core(s) for %d process(es)", requested, cap, cores,
                     world_size)
        return cap
    return requested


class _IndexSampler(Sampler):
    """Yields a fixed list of dataset indices (this rank's, minus those already consumed)."""

    def __init__(self, indices: list[int]):
        self.indices = indices

    def __iter__(self):
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)



class Trainer:
    """Train ``cfg`` in this process (one of ``WORLD_SIZE`` torchrun processes).

    Args:
        cfg: the run's :class:`~simplepose.config.Config`.
        dataset: optional training dataset (tests pass a synthetic one); default
            :func:`build_train_dataset`. It must return dicts with ``image`` and ``targets``
            plus ``mask_miss`` (bottom-up) or ``target_weight`` (top-down), and may have
            ``set_epoch(epoch)``.
        dist_info: from :func:`simplepose.dist.init_distributed` (called when None).

    Use :meth:`resume` (optional) then :meth:`fit`.
    """

    def __init__(self, cfg: Config, dataset=None, dist_info: sdist.DistInfo | None = None):
        self.cfg = cfg
        self.spec = build_spec(cfg)
        self.info = dist_info or sdist.init_distributed(cfg.train.device,
                                                        timeout_s=cfg.train.dist_timeout_s)
        self.device = self.info.device
        self.world = self.info.world_size
        self.rank = self.info.rank
        self.out_dir = Path(cfg.train.output_dir)
        self.accum = cfg.train.grad_accum_steps
        self.batch_size = cfg.data.batch_size
        self.amp = resolve_amp(cfg.train.amp, self.device.type, log=self.rank == 0)
        self.workers = loader_workers(cfg.data.workers, self.world, log=self.rank == 0)
        self.dataset = dataset if dataset is not None else build_train_dataset(cfg, self.spec)

        seed_everything(cfg.seed)  # identical initial weights on every rank
        model = self.spec.build_model()
        if cfg.train.sync_bn and self.world > 1:
            if self.device.type == "cuda":
                model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
                LOG.info("converted BatchNorm to SyncBatchNorm")
            else:
                LOG.warning("train.sync_bn ignored: SyncBatchNorm needs CUDA; keeping BatchNorm")
        self.raw_model = model.to(self.device)
        self.loss_fn = build_loss(cfg, self.raw_model, self.spec).to(self.device)
        self.loss_name = loss_name(cfg, self.spec)
        if self.world > 1:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.model = nn.parallel.DistributedDataParallel(
                self.raw_model, device_ids=ids, output_device=ids[0] if ids else None,
                find_unused_parameters=False,
            )
        else:
            self.model = self.raw_model
        seed_everything(cfg.seed + self.rank)  # per-rank streams from here on

        scale = self.world if cfg.optim.lr_scales_with_world_size else 1
        self.base_lr = cfg.optim.lr * scale
        self.optimizer = build_optimizer(cfg, self.raw_model, self.base_lr)
        self.amp_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(self.amp)
        self.scaler = (torch.amp.GradScaler("cuda") if self.amp == "fp16" else None)

        self.sampler = DistributedSampler(
            self.dataset, num_replicas=self.world, rank=self.rank, shuffle=True,
            seed=cfg.data.seed, drop_last=True,
        )
        micro_per_epoch = len(self.sampler) // self.batch_size
        self.iters_per_epoch = micro_per_epoch // self.accum
        if cfg.train.max_iters_per_epoch:
            self.iters_per_epoch = min(self.iters_per_epoch, cfg.train.max_iters_per_epoch)
        if self.iters_per_epoch < 1:
            raise InputError(
                f"{len(self.dataset)} training samples are too few for {self.world} process(es) x "
                f"batch {self.batch_size} x {self.accum} accumulation steps"
            )
        self.max_iters = cfg.optim.max_iters or cfg.optim.epochs * self.iters_per_epoch
        self.iteration = 0
        self.epoch = 0
        self.step_in_epoch = 0
        self.skipped = 0
        self._saved_iteration: int | None = None
        self._window: list[float] = []
        self._window_t0 = time.perf_counter()
        self._window_iters = 0
        self._t_start = time.perf_counter()
        LOG.info(
            "rank %d/%d on %s: %d samples, %d iterations/epoch, %d iterations, base lr %.3g",
            self.rank, self.world, self.device, len(self.dataset), self.iters_per_epoch,
            self.max_iters, self.base_lr,
        )

    # ---------------------------------------------------------------- checkpoints
    @property
    def checkpoint_path(self) -> Path:
        return self.out_dir / LAST_CHECKPOINT

    def state_dict(self) -> dict:
        """The training checkpoint dict (collective: gathers every rank's RNG state)."""
        rng = sdist.all_gather_object(capture_rng_state())
        return {
            "format": CHECKPOINT_FORMAT,
            "model": self.raw_model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler is not None else {},
            "iteration": self.iteration,
            "epoch": self.epoch,
            "step_in_epoch": self.step_in_epoch,
            "skipped_batches": self.skipped,
            "world_size": self.world,
            "rng": rng,
            "config": config_to_dict(self.cfg),
            "spec": self.spec.to_dict(),
        }

    def save_checkpoint(self, path=None) -> Path | None:
        """Write the training checkpoint atomically on rank 0 (all ranks must call this)."""
        state = self.state_dict()
        path = Path(path) if path is not None else self.checkpoint_path
        if self.rank == 0:
            save_training_checkpoint(state, path)
            LOG.info("saved training checkpoint (iteration %d) to %s", self.iteration, path)
        self._saved_iteration = self.iteration
        sdist.barrier()
        return path if self.rank == 0 else None

    def resume(self, path=None) -> None:
        """Continue from a training checkpoint (default: ``output_dir/last.pt``).

        Restores the model, optimiser, scaler, counters and this rank's RNG state; the next
        :meth:`fit` skips the batches of the current epoch that were already consumed.
        """
        path = Path(path) if path is not None else self.checkpoint_path
        state = load_training_checkpoint(path)
        try:
            self.raw_model.load_state_dict(state["model"], strict=True)
        except RuntimeError as exc:
            raise CheckpointError(f"{path}: model weights do not match "
                                  f"{self.cfg.model.name}: {str(exc).splitlines()[0]}") from None
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scaler is not None and state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        self.iteration = int(state["iteration"])
        self.epoch = int(state["epoch"])
        self.step_in_epoch = int(state["step_in_epoch"])
        self.skipped = int(state.get("skipped_batches", 0))
        self._saved_iteration = self.iteration
        saved_world = int(state.get("world_size", self.world))
        rng = state.get("rng") or []
        if saved_world != self.world:
            LOG.warning("checkpoint was written by %d processes, resuming with %d: the data "
                        "order differs from an uninterrupted run", saved_world, self.world)
        if self.rank < len(rng) and saved_world == self.world:
            restore_rng_state(rng[self.rank])
        self._warn_config_changes(state["config"])
        if state.get("spec") not in (None, self.spec.to_dict()):
            LOG.warning("the model spec differs from the checkpoint's (%s)", path)
        if self.step_in_epoch >= self.iters_per_epoch:  # epochs got shorter since
            self.epoch, self.step_in_epoch = self.epoch + 1, 0
        if self.rank == 0:
            self._truncate_metrics()
        LOG.info("resumed from %s at iteration %d (epoch %d, step %d)",
                 path, self.iteration, self.epoch, self.step_in_epoch)

    def _warn_config_changes(self, saved: dict) -> None:
        changed = config_changes(saved, config_to_dict(self.cfg))
        if changed:
            LOG.warning("config differs from the checkpoint's in: %s", ", ".join(changed))

    # ---------------------------------------------------------------- metrics
    @property
    def metrics_path(self) -> Path:
        return self.out_dir / "metrics.csv"

    def _truncate_metrics(self) -> None:
        """Drop rows written after the checkpoint (a killed run logs past its last save)."""
        if not self.metrics_path.exists():
            return
        with open(self.metrics_path, newline="") as f:
            rows = [r for r in csv.DictReader(f) if int(r["iteration"]) <= self.iteration]
        with atomic_path(self.metrics_path) as tmp, open(tmp, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=METRICS_FIELDS)
            writer.writeheader()
            writer.writerows(rows)

    def _write_metrics(self, row: dict) -> None:
        new = not self.metrics_path.exists()
        with open(self.metrics_path, "a", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=METRICS_FIELDS)
            if new:
                writer.writeheader()
            writer.writerow(row)

    def plot_loss(self) -> Path | None:
        """``loss.png`` from ``metrics.csv`` (rank 0; matplotlib Agg)."""
        if self.rank != 0 or not self.metrics_path.exists():
            return None
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        with open(self.metrics_path, newline="") as f:
            rows = list(csv.DictReader(f))
        if not rows:
            return None
        its = [int(r["iteration"]) for r in rows]
        losses = [float(r["loss"]) for r in rows]
        fig, ax = plt.subplots(figsize=(7, 4))
        ax.plot(its, losses, lw=1)
        ax.set_xlabel("iteration")
        ax.set_ylabel("training loss (mean over ranks)")
        ax.set_title(f"{self.cfg.model.name}: {self.out_dir.name}")
        if min(losses) > 0 and max(losses) / min(losses) > 100:
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
        path = self.out_dir / "loss.png"
        with atomic_path(path, suffix=".png") as tmp:
            fig.savefig(tmp, dpi=100, format="png")
        plt.close(fig)
        return path

    # ---------------------------------------------------------------- one iteration
    def _to_device(self, batch: dict) -> dict:
        nb = self.device.type == "cuda"
        return {k: v.to(self.device, non_blocking=nb) if torch.is_tensor(v) else v
                for k, v in batch.items()}

    def _autocast(self):
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.amp_dtype)

    def compute_loss(self, batch: dict) -> torch.Tensor:
        """Forward ``batch`` (already on the device) and return the scalar float32 loss."""
        with self._autocast():
            out = self.model(batch["image"])
        name = self.loss_name
        if name == "focal_l2":
            return self.loss_fn(out, batch["targets"], batch["mask_miss"])
        weights = batch["target_weight"]
        if name == "cpn":
            global_outs, refine_out = out
            return self.loss_fn(global_outs, refine_out, batch["targets"], weights)["loss"]
        _, stages = out
        return self.loss_fn(stages, batch["targets"], weights)["loss"]

    def set_lr(self) -> float:
        lr = lr_from_config(self.iteration, self.cfg.optim, self.base_lr, self.iters_per_epoch,
                            self.max_iters)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        return lr

    def train_iteration(self, micro_batches: list[dict]) -> tuple[float, bool]:
        """One optimiser step over ``micro_batches`` (this rank's share).

        Returns:
            (mean loss of this rank's micro-batches, whether the step was skipped). Gradients
            stay in ``.grad`` after the step (averaged over ranks and micro-batches).
        """
        self.model.train()
        self.optimizer.zero_grad(set_to_none=True)
        threshold = self.cfg.train.skip_loss_above
        n = len(micro_batches)
        losses, skip = [], False
        for i, batch in enumerate(micro_batches):
            batch = self._to_device(batch)
            sync = i == n - 1 or self.world == 1
            ctx = contextlib.nullcontext() if sync else self.model.no_sync()
            with ctx:
                loss = self.compute_loss(batch)
                value = float(loss.detach())
                bad = not math.isfinite(value) or (threshold is not None and value > threshold)
                if self.world > 1:  # every rank must agree, or the all-reduce would hang
                    bad = bool(sdist.reduce_max(float(bad)).item() > 0)
                losses.append(value)
                if bad:
                    skip = True
                    break
                scaled = loss / n
                if self.scaler is not None:
                    self.scaler.scale(scaled).backward()
                else:
                    scaled.backward()
        if skip:
            self.optimizer.zero_grad(set_to_none=True)
            self.skipped += 1
            if self.rank == 0:
                LOG.warning("iteration %d skipped: a micro-batch loss was non-finite or above %s "
                            "on some rank (rank 0's last: %.6g); %d skipped so far",
                            self.iteration, threshold, losses[-1], self.skipped)
        elif self.scaler is not None:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        finite = [v for v in losses if math.isfinite(v)]
        return (sum(finite) / len(finite) if finite else float("nan")), skip

    # ---------------------------------------------------------------- loop
    def _loader(self, epoch: int, start_step: int) -> DataLoader:
        self.sampler.set_epoch(epoch)
        if hasattr(self.dataset, "set_epoch"):
            self.dataset.set_epoch(epoch)
        indices = list(self.sampler)
        needed = self.iters_per_epoch * self.accum * self.batch_size
        consumed = start_step * self.accum * self.batch_size
        indices = indices[consumed:needed]
        gen = torch.Generator()
        gen.manual_seed(self.cfg.data.seed * 1_000_003 + epoch * 1_009 + self.rank)
        workers = self.workers
        return DataLoader(
            self.dataset, batch_size=self.batch_size, sampler=_IndexSampler(indices),
            num_workers=workers, drop_last=True, generator=gen,
            worker_init_fn=worker_init if workers else None,
            pin_memory=self.device.type == "cuda", persistent_workers=False,
        )

    def _log(self, lr: float, progress) -> None:
        every = self.cfg.train.log_every
        if self.iteration % every and self.iteration != self.max_iters:
            return
        local = sum(self._window) / len(self._window) if self._window else float("nan")
        loss = float(sdist.reduce_mean(local))  # collective: same iteration on every rank
        elapsed = time.perf_counter() - self._window_t0
        samples = self._window_iters * self.accum * self.batch_size * self.world
        rate = samples / elapsed if elapsed > 0 else 0.0
        self._window, self._window_iters = [], 0
        self._window_t0 = time.perf_counter()
        if self.rank == 0:
            self._write_metrics({
                "iteration": self.iteration, "epoch": self.epoch, "loss": f"{loss:.6g}",
                "lr": f"{lr:.6g}", "samples_per_s": f"{rate:.3f}", "skipped": self.skipped,
                "time_s": f"{time.perf_counter() - self._t_start:.2f}",
            })
            LOG.info("it %d/%d epoch %d loss %.5g lr %.3g %.1f samples/s skipped %d",
                     self.iteration, self.max_iters, self.epoch, loss, lr, rate, self.skipped)
            if progress is not None:
                progress.set_postfix(loss=f"{loss:.4g}", lr=f"{lr:.2e}", sps=f"{rate:.1f}")

    def fit(self) -> Path | None:
        """Train until ``max_iters``; returns the path of ``model_final.safetensors`` on rank 0."""
        cfg = self.cfg
        if self.rank == 0:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            save_config(cfg, self.out_dir / "config.yaml")
        sdist.barrier()
        progress = None
        if self.rank == 0 and cfg.train.progress:
            from tqdm import tqdm

            progress = tqdm(total=self.max_iters, initial=self.iteration, unit="it",
                            dynamic_ncols=True, mininterval=1.0)
        every = cfg.train.checkpoint_every_iters
        self._window_t0 = time.perf_counter()
        try:
            while self.iteration < self.max_iters:
                loader = self._loader(self.epoch, self.step_in_epoch)
                batches = iter(loader)
                while self.step_in_epoch < self.iters_per_epoch and \
                        self.iteration < self.max_iters:
                    micro = [next(batches) for _ in range(self.accum)]
                    lr = self.set_lr()
                    loss, _ = self.train_iteration(micro)
                    self.iteration += 1
                    self.step_in_epoch += 1
                    self._window.append(loss)
                    self._window_iters += 1
                    if progress is not None:
                        progress.update(1)
                    self._log(lr, progress)
                    epoch_done = self.step_in_epoch >= self.iters_per_epoch
                    if epoch_done:
                        self.epoch, self.step_in_epoch = self.epoch + 1, 0
                    per_epoch = cfg.train.checkpoint_every_epochs
                    at_epoch_end = epoch_done and per_epoch and self.epoch % per_epoch == 0
                    if at_epoch_end or (every and self.iteration % every == 0):
                        self.save_checkpoint()
                    if epoch_done:
                        break
                del batches, loader
        finally:
            if progress is not None:
                progress.close()
        return self.finish()

    def finish(self) -> Path | None:
        """Final training checkpoint, ``model_final.safetensors`` and ``loss.png`` (rank 0)."""
        if self._saved_iteration != self.iteration:  # same on every rank: collective is safe
            self.save_checkpoint()
        if self.rank != 0:
            return None
        from simplepose.checkpoint import save_model

        path = save_model(
            self.out_dir / FINAL_MODEL, self.spec, self.raw_model.state_dict(),
            extra_meta={"iteration": self.iteration, "epoch": self.epoch,
                        "config": config_to_dict(self.cfg)},
        )
        self.plot_loss()
        LOG.info("finished %d iterations (%d skipped); final model %s", self.iteration,
                 self.skipped, path)
        return path

