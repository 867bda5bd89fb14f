"""Distributed training on CPU (gloo): gradient equivalence, exact resume, safe checkpoint loading.

* 2 processes x batch 2 give the same averaged gradients as 1 process accumulating the same two
  micro-batches (BatchNorm sees the same 2-image batches in both, so the check is exact up to
  float rounding; SyncBatchNorm, which would make 2 x 2 equal 1 x 4, needs CUDA);
* a run resumed from a mid-epoch checkpoint ends with bit-identical weights (in-process with a
  synthetic dataset; and, slow, ``torchrun`` SIGKILLed after its first checkpoint on the real
  ``BottomUpDataset``);
* resuming refuses a crafted pickle without executing it.
"""

from __future__ import annotations

import os
import pickle
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp
from torch.utils.data import DistributedSampler, default_collate

from simplepose.config import config_from_dict, config_to_dict, load_config
from simplepose.errors import CheckpointError

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
TRAIN_ANN = SHARED / "data" / "coco" / "annotations" / "person_keypoints_train2017_subset.json"
TRAIN_IMAGES = SHARED / "data" / "coco" / "train2017"


class SyntheticBottomUp:
    """Deterministic bottom-up samples: sample i of epoch e depends only on (seed, e, i)."""

    def __init__(self, n: int = 16, size: int = 64, seed: int = 0):
        self.n, self.size, self.seed, self.epoch = n, size, seed, 0

    def __len__(self) -> int:
        return self.n

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __getitem__(self, i: int) -> dict:
        rng = np.random.default_rng([self.seed, self.epoch, i])
        s, h = self.size, self.size // 4
        mask = np.ones((1, h, h), np.float32)
        mask[:, : h // 4, : h // 4] = 0
        return {
            "image": rng.random((3, s, s), dtype=np.float32),
            "targets": (rng.random((50, h, h), dtype=np.float32) ** 4),
            "mask_miss": mask,
            "image_id": i,
            "matrix": np.eye(2, 3, dtype=np.float64),
        }


def tiny_cfg(out_dir, **train):
    data = {
        "model": {"name": "imhn", "kwargs": {"num_stacks": 2, "inp_dim": 16, "increase": 8,
                                              "stem_channels": 8, "se_reduction": 4}},
        "data": {"task": "bottomup", "input_size": 64, "batch_size": 2, "workers": 0},
        "optim": {"name": "sgd", "lr": 1e-3, "weight_decay": 5e-4, "schedule": "simplepose_step",
                  "warmup_epochs": 1, "epochs": 2},
        "train": {"output_dir": str(out_dir), "progress": False, "log_every": 1,
                  "skip_loss_above": None, "device": "cpu", **train},
    }
    return config_from_dict(data)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _grad_worker(rank: int, world: int, port: int, cfg_dict: dict, out: str) -> None:
    if world > 1:
        os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                          LOCAL_RANK=str(rank), WORLD_SIZE=str(world))
    torch.set_num_threads(1)
    from simplepose import dist
    from simplepose.engine.loop import Trainer

    try:
        ds = SyntheticBottomUp()
        trainer = Trainer(config_from_dict(cfg_dict), dataset=ds)
        order = [0, 1, 2, 3]  # global batch: samples 0-3
        if world == 2:  # rank r gets one micro-batch of 2
            micro = [default_collate([ds[i] for i in order[2 * rank: 2 * rank + 2]])]
        else:  # one process accumulates the same two micro-batches
            micro = [default_collate([ds[i] for i in order[:2]]),
                     default_collate([ds[i] for i in order[2:]])]
        trainer.set_lr()
        _loss, skipped = trainer.train_iteration(micro)
        assert not skipped
        if rank == 0:
            grads = {n: p.grad.detach().clone() for n, p in trainer.raw_model.named_parameters()}
            torch.save(grads, out)
    finally:
        dist.cleanup()


def _grads(tmp_path, world: int, accum: int) -> dict:
    cfg = tiny_cfg(tmp_path / f"run{world}", grad_accum_steps=accum)
    out = str(tmp_path / f"grads{world}.pt")
    args = (world, _free_port(), config_to_dict(cfg), out)
    if world == 1:  # in this process (no process group)
        _grad_worker(0, *args)
    else:
        mp.spawn(_grad_worker, args=args, nprocs=world, join=True)
    return torch.load(out, weights_only=True)


def test_sampler_partition_matches_single_process():
    ds = SyntheticBottomUp(n=16)
    ranks = [list(DistributedSampler(ds, num_replicas=2, rank=r, seed=0, drop_last=True))
             for r in range(2)]
    single = list(DistributedSampler(ds, num_replicas=1, rank=0, seed=0, drop_last=True))
    interleaved = [i for pair in zip(*ranks) for i in pair]
    assert interleaved == single


@pytest.mark.slow  # 11-26 s here: two spawned processes import torch and start gloo
def test_two_process_gradients_equal_single_process(tmp_path):
    g2 = _grads(tmp_path, world=2, accum=1)
    g1 = _grads(tmp_path, world=1, accum=2)
    assert g1.keys() == g2.keys() and len(g1) > 100
    total = torch.cat([g.flatten() for g in g1.values()])
    diff = torch.cat([(g2[k] - g1[k]).flatten() for k in g1])
    assert total.norm() > 0
    assert diff.norm() / total.norm() < 1e-5
    for k in g1:  # and per tensor (relative to the tensor, or tiny in absolute terms)
        scale = max(g1[k].norm().item(), 1e-6 * total.norm().item())
        assert (g2[k] - g1[k]).norm().item() / scale < 1e-5, k


def _final_state(trainer) -> dict:
    return {k: v.detach().clone() for k, v in trainer.raw_model.state_dict().items()}


def test_resume_mid_epoch_is_exact_in_process(tmp_path):
    from simplepose.engine.loop import Trainer

    torch.set_num_threads(1)
    ds = SyntheticBottomUp(n=12)  # 6 iterations per epoch at batch 2
    full = Trainer(tiny_cfg(tmp_path / "full"), dataset=ds)
    full.fit()
    assert full.iteration == 12 and full.epoch == 2

    part = Trainer(tiny_cfg(tmp_path / "part", checkpoint_every_iters=4), dataset=ds)
    part.max_iters = 8  # stop mid-epoch 1 (after a checkpoint at iteration 8)
    part.fit()
    assert (part.epoch, part.step_in_epoch) == (1, 2)
    resumed = Trainer(tiny_cfg(tmp_path / "part", checkpoint_every_iters=4), dataset=ds)
    resumed.resume()
    assert (resumed.iteration, resumed.epoch, resumed.step_in_epoch) == (8, 1, 2)
    resumed.fit()
    a, b = _final_state(full), _final_state(resumed)
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    rows = (tmp_path / "part" / "metrics.csv").read_text().splitlines()[1:]
    assert [int(r.split(",")[0]) for r in rows] == list(range(1, 13))
    assert (tmp_path / "part" / "model_final.safetensors").exists()
    assert (tmp_path / "part" / "loss.png").stat().st_size > 0


def test_skip_bad_loss(tmp_path):
    from simplepose.engine.loop import Trainer

    torch.set_num_threads(1)
    trainer = Trainer(tiny_cfg(tmp_path / "skip", skip_loss_above=1e-12),
                      dataset=SyntheticBottomUp(8))
    before = {n: p.detach().clone() for n, p in trainer.raw_model.named_parameters()}
    trainer.max_iters = 2
    trainer.fit()
    assert trainer.skipped == 2 and trainer.iteration == 2
    # no optimiser step (BatchNorm running statistics still move: the forward pass ran)
    after = dict(trainer.raw_model.named_parameters())
    assert all(torch.equal(before[k], after[k]) for k in before)
    rows = (tmp_path / "skip" / "metrics.csv").read_text().splitlines()
    assert rows[-1].split(",")[5] == "2"  # skipped column


def test_resume_refuses_crafted_pickle(tmp_path):
    from simplepose.engine.loop import Trainer
    from simplepose.engine.state import load_training_checkpoint

    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    path = tmp_path / "last.pt"
    with open(path, "wb") as f:
        pickle.dump({"format": "simplepose-train-1", "model": Evil()}, f, protocol=2)
    with pytest.raises(CheckpointError, match="refusing"):
        load_training_checkpoint(path)
    trainer = Trainer(tiny_cfg(tmp_path), dataset=SyntheticBottomUp(8))
    with pytest.raises(CheckpointError, match="refusing"):
        trainer.resume(path)
    assert not marker.exists()
    with pytest.raises(CheckpointError, match="does not exist"):
        trainer.resume(tmp_path / "missing.pt")
    torch.save({"weights": torch.zeros(1)}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not a simplepose training checkpoint"):
        trainer.resume(tmp_path / "other.pt")


# ---------------------------------------------------------------------- slow: torchrun + SIGKILL
def _bottomup_dataset_available() -> str | None:
    try:
        import simplepose.data.bottomup_dataset  # noqa: F401
    except ImportError as exc:
        return f"simplepose.data.bottomup_dataset is not importable yet ({exc})"
    if not TRAIN_ANN.exists() or not TRAIN_IMAGES.is_dir():
        return f"shared COCO training subset not found at {TRAIN_ANN.parent.parent}"
    return None


def _torchrun(out_dir, *extra):
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
            str(REPO / "train_dist.py"), "--config", "configs/imhn_tiny.yaml",
            "--log-level", "WARNING", "--opts", f"train.output_dir={out_dir}",
            "train.progress=false", "train.max_iters_per_epoch=6", "train.device=cpu", *extra]


@pytest.mark.slow
def test_torchrun_sigkill_resume_is_exact(tmp_path):
    reason = _bottomup_dataset_available()
    if reason:
        pytest.skip(reason)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    full, killed = tmp_path / "full", tmp_path / "killed"
    res = subprocess.run(_torchrun(full), cwd=REPO, env=env, capture_output=True, text=True,
                         timeout=600, check=False)
    assert res.returncode == 0, res.stderr[-3000:]

    proc = subprocess.Popen(_torchrun(killed), cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, start_new_session=True)
    try:
        deadline = time.time() + 300
        while not (killed / "last.pt").exists():
            assert proc.poll() is None, proc.stderr.read().decode()[-3000:]
            assert time.time() < deadline, "no checkpoint after 300 s"
            time.sleep(0.01)
        os.killpg(proc.pid, signal.SIGKILL)  # torchrun and both workers, mid-run
    finally:
        proc.wait(timeout=60)
        proc.stderr.close()
    assert not (killed / "model_final.safetensors").exists(), "run finished before the kill"
    from simplepose.engine.state import load_training_checkpoint

    saved = load_training_checkpoint(killed / "last.pt")
    assert 0 < saved["iteration"] < 12

    res = subprocess.run(_torchrun(killed, "--resume"), cwd=REPO, env=env,
                         capture_output=True, text=True, timeout=600, check=False)
    assert res.returncode == 0, res.stderr[-3000:]

    from safetensors.torch import load_file

    a = load_file(str(full / "model_final.safetensors"))
    b = load_file(str(killed / "model_final.safetensors"))
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    rows = (killed / "metrics.csv").read_text().splitlines()[1:]
    assert [int(r.split(",")[0]) for r in rows] == list(range(1, 13))
    cfg = load_config(killed / "config.yaml")
    assert cfg.train.output_dir == str(killed)


# ---------------------------------------------------------------------- top-down losses in the loop
class SyntheticTopDown:
    """Deterministic top-down samples: (3, H, W) crops, (T, K, h, w) targets, (K,) flags."""

    def __init__(self, n: int = 4, hw=(64, 48), kernels: int = 5):
        self.n, self.hw, self.kernels = n, hw, kernels

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> dict:
        rng = np.random.default_rng([7, i])
        h, w = self.hw
        return {
            "image": rng.standard_normal((3, h, w), dtype=np.float32),
            "targets": (255 * rng.random((self.kernels, 17, h // 4, w // 4)) ** 8).astype(
                np.float32),
            "target_weight": rng.integers(0, 3, 17).astype(np.float32),
            "image_id": i,
            "ann_id": i,
            "matrix": np.eye(2, 3),
        }


@pytest.mark.parametrize("model, codec, kernels", [("rsn18", "rsn_64x48", 5),
                                                    ("cpn50", "cpn_64x48", 4)])
def test_topdown_training_iteration(tmp_path, model, codec, kernels):
    from simplepose.engine.loop import Trainer

    torch.set_num_threads(1)
    cfg = config_from_dict({
        "model": {"name": model, "kwargs": {"input_size": [64, 48]}},
        "data": {"task": "topdown", "codec": codec, "input_hw": [64, 48], "batch_size": 2,
                 "workers": 0},
        "optim": {"name": "adam", "lr": 5e-4, "weight_decay": 1e-5, "schedule": "warmup_linear",
                  "warmup_iters": 1, "max_iters": 1},
        "train": {"output_dir": str(tmp_path), "progress": False, "skip_loss_above": None,
                  "device": "cpu"},
    })
    trainer = Trainer(cfg, dataset=SyntheticTopDown(kernels=kernels))
    before = {n: p.detach().clone() for n, p in trainer.raw_model.named_parameters()}
    final = trainer.fit()
    assert trainer.iteration == 1 and trainer.skipped == 0
    moved = sum(not torch.equal(before[n], p) for n, p in trainer.raw_model.named_parameters())
    assert moved > 0.9 * len(before)  # find_unused_parameters=False relies on every one being used
    from simplepose.checkpoint import load_model

    _rebuilt, meta = load_model(final)
    assert meta["simplepose_model"] == model
    assert meta["spec"] == trainer.spec and meta["spec"].codec["name"] == codec
    assert meta["spec"].input_hw == (64, 48) and meta["spec"].kwargs["input_size"] == [64, 48]


# ---------------------------------------------------------------------- mixed precision
def test_amp_is_ignored_on_cpu_with_a_log_line(tmp_path, caplog):
    """bf16 autocast is several times slower on CPU and fp16 needs CUDA: CPU trains in float32."""
    import logging

    from simplepose.engine.loop import Trainer, resolve_amp

    assert resolve_amp("bf16", "cuda") == "bf16" and resolve_amp("fp16", "cuda") == "fp16"
    torch.set_num_threads(1)
    for amp in ("bf16", "fp16"):
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="simplepose.engine.loop"):
            trainer = Trainer(tiny_cfg(tmp_path / amp, amp=amp), dataset=SyntheticBottomUp(4))
        assert trainer.amp == "off" and trainer.amp_dtype is None and trainer.scaler is None
        assert f"train.amp={amp} ignored on cpu" in caplog.text
    trainer.max_iters = 1
    trainer.fit()
    assert trainer.skipped == 0 and trainer.cfg.train.amp == "fp16"  # the config keeps its setting


def test_loader_workers_are_sized_to_the_machine(monkeypatch):
    import os

    from simplepose.engine.loop import loader_workers

    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    assert loader_workers(4, 1, log=False) == 2
    assert loader_workers(4, 2, log=False) == 1
    assert loader_workers(1, 1, log=False) == 1
    assert (
        loader_workers(2, 4, log=False) == 0
    )  # fewer cores than processes: load in the main process


@pytest.mark.gpu
@pytest.mark.parametrize("amp", ["off", "bf16", "fp16"])
def test_cuda_training_and_resume(tmp_path, amp):
    from simplepose.engine.loop import Trainer
    from simplepose.engine.state import load_training_checkpoint

    cfg = tiny_cfg(tmp_path, amp=amp, device="cuda", checkpoint_every_iters=2)
    trainer = Trainer(cfg, dataset=SyntheticBottomUp(8))
    trainer.max_iters = 3
    trainer.fit()
    assert trainer.device.type == "cuda" and trainer.skipped == 0
    state = load_training_checkpoint(tmp_path / "last.pt")
    assert state["iteration"] == 3 and "cuda" in state["rng"][0]
    assert bool(state["scaler"]) == (amp == "fp16")
    again = Trainer(cfg, dataset=SyntheticBottomUp(8))
    again.resume()
    assert again.iteration == 3


def test_missing_cuda_or_nccl_is_one_input_error_naming_the_option(monkeypatch, tmp_path, capsys):
    """CUDA asked for but absent, or NCCL absent for a multi-process CUDA run: an InputError
    naming the option (before any process group or launcher watchdog), and the train command
    prints it as one line with status 2."""
    from simplepose import dist
    from simplepose.cli import train
    from simplepose.errors import InputError

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    with pytest.raises(InputError, match=r"^train\.device is 'cuda' but no CUDA device"):
        dist.init_distributed("cuda")
    with pytest.raises(InputError, match=r"^--device must be 'auto', 'cpu' or 'cuda'"):
        dist.init_distributed("cuda:0", option="--device")
    assert dist.init_distributed("auto").device == torch.device("cpu")

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.distributed, "is_nccl_available", lambda: False)
    monkeypatch.setenv("WORLD_SIZE", "2")
    for device in ("auto", "cuda"):
        with pytest.raises(InputError, match=r"needs NCCL.*set train\.device to cpu"):
            dist.init_distributed(device)
    assert not torch.distributed.is_initialized()

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.delenv("WORLD_SIZE")
    argv = ["--config", str(REPO / "configs" / "imhn_tiny.yaml"), "--opts", "train.device=cuda",
            f"train.output_dir={tmp_path / 'run'}"]
    assert train.main(argv, prog="simplepose train") == 2
    err = capsys.readouterr().err
    assert err == ("simplepose train: error: train.device is 'cuda' but no CUDA device is "
                   "available; set train.device to cpu or auto\n")
