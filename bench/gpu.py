"""One-shot GPU report (issue 12): under 5 minutes on one GPU, JSON out.

  python bench/gpu.py --json g.json [--no-compile] [--device cuda:0]

Rows (``rows.<name>``, each with ``status`` "ok" or "skipped: <why>" and its figures):

* ``imhn_forward``: IMHN-512 (the released 4-stack configuration, random weights) forward
  images/s at batch 1 and 8, in fp32, bf16 (autocast), channels-last (fp32 and bf16), and
  ``torch.compile`` of the best bf16 variant when it helps (compile seconds reported);
* ``bundled_e2e``: the bundled OpenPose model through ``Predictor`` (read, prepare, forward,
  C++ decode; one frame at a time) on ``../shared/data/demo/vtest.avi``: frames/s;
* ``rsn18_topdown``: RSN-18 256x192 (random weights) top-down people/s on the real detector
  boxes of the shared val subset (crop, normalise, forward with flip, decode);
* ``imhn_train_amp``: 200 iterations of an IMHN training step (bf16 autocast, Adam) on one fixed
  batch of real training samples on the device: samples/s, peak memory, and whether the loss
  decreased (mean of the last 20 iterations below the first 20);
* ``ddp_smoke``: a single-process NCCL ``DistributedDataParallel`` run (world size 1): a few
  steps, an all-reduce, clean shutdown.

Without CUDA every GPU row is ``"skipped: no CUDA"`` and the same code runs once more as
``cpu_smoke`` rows at tiny sizes (a small IMHN, 3 frames, a few boxes, 6 training iterations,
gloo instead of NCCL), so CI keeps every path working; those numbers are not GPU figures.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import platform
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
DATA = REPO.parent / "shared" / "data"
VIDEO = DATA / "demo" / "vtest.avi"
VAL_ANN = DATA / "coco" / "annotations" / "person_keypoints_val2017_subset.json"
VAL_IMAGES = DATA / "coco" / "val2017"
DETECTIONS = DATA / "coco" / "detections" / "COCO_val2017_detections_AP_H_56_person_subset.json"
TRAIN_ANN = DATA / "coco" / "annotations" / "person_keypoints_train2017_subset.json"
TRAIN_IMAGES = DATA / "coco" / "train2017"

#: sizes of the full GPU report and of the CPU smoke variant
CONFIGS = {
    "gpu": {
        "imhn_kwargs": {}, "imhn_size": 512, "batches": (1, 8), "forward_iters": 20,
        "video_frames": 200, "box_size": None, "rsn_kwargs": {}, "rsn_images": 41,
        "max_boxes": None, "train_iters": 200,
        "train_batch": 8, "train_size": 512, "ddp_steps": 5, "ddp_backend": "nccl",
    },
    "cpu_smoke": {
        "imhn_kwargs": {"num_stacks": 1, "inp_dim": 16, "increase": 8, "stem_channels": 8,
                        "se_reduction": 4, "num_scales": 3},
        "imhn_size": 64, "batches": (1, 2), "forward_iters": 1, "video_frames": 2,
        "box_size": 128, "rsn_kwargs": {"num_stages": 1, "input_size": (64, 48)},
        "rsn_images": 1, "max_boxes": 4, "train_iters": 6, "train_batch": 2, "train_size": 64,
        "ddp_steps": 2, "ddp_backend": "gloo",
    },
}
ROWS = ("imhn_forward", "bundled_e2e", "rsn18_topdown", "imhn_train_amp", "ddp_smoke")


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--json", required=True, help="output JSON")
    p.add_argument("--device", default="cuda", help="CUDA device of the GPU rows (default cuda)")
    p.add_argument("--no-compile", action="store_true", help="skip the torch.compile variant")
    p.add_argument(
        "--no-cpu-smoke", action="store_true", help="without CUDA: only the skipped rows"
    )
    return p.parse_args(argv)


# ---------------------------------------------------------------------------- helpers
def _sync(device) -> None:
    import torch

    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def _timed(fn, device, iters: int, warmup: int = 1) -> float:
    """Seconds per call of ``fn`` (median of ``iters``) after ``warmup`` calls."""
    for _ in range(warmup):
        fn()
    _sync(device)
    times = []
    for _ in range(iters):
        t = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def _autocast(device, enabled: bool):
    import torch

    if not enabled:
        return contextlib.nullcontext()
    return torch.autocast(device_type=torch.device(device).type, dtype=torch.bfloat16)


# ------------------------------------------------------------------------------- rows
def imhn_forward(device, cfg, compile_: bool) -> dict:
    import torch

    from simplepose.spec import build_model

    torch.manual_seed(0)
    models = {False: build_model("imhn", **cfg["imhn_kwargs"]).eval().to(device)}
    models[True] = build_model("imhn", **cfg["imhn_kwargs"]).eval().to(device)
    models[True] = models[True].to(memory_format=torch.channels_last)
    s = cfg["imhn_size"]
    out = {"input": f"{s}x{s}", "kwargs": cfg["imhn_kwargs"], "images_per_s": {}}
    for batch in cfg["batches"]:
        x = torch.rand(batch, 3, s, s, device=device)
        x_cl = x.contiguous(memory_format=torch.channels_last)
        for name, cl, bf16 in (
            ("fp32", False, False),
            ("bf16", False, True),
            ("channels_last_fp32", True, False),
            ("channels_last_bf16", True, True),
        ):
            model, inp = models[cl], (x_cl if cl else x)

            def step(model=model, inp=inp, bf16=bf16):
                with torch.inference_mode(), _autocast(device, bf16):
                    return model(inp)

            sec = _timed(step, device, cfg["forward_iters"])
            out["images_per_s"][f"{name}_b{batch}"] = round(batch / sec, 2)
    if compile_:
        batch = max(cfg["batches"])
        best = max(
            ("bf16", "channels_last_bf16"), key=lambda k: out["images_per_s"][f"{k}_b{batch}"]
        )
        cl = best.startswith("channels_last")
        x = torch.rand(batch, 3, s, s, device=device)
        x = x.contiguous(memory_format=torch.channels_last) if cl else x
        t0 = time.perf_counter()
        compiled = torch.compile(models[cl])

        def cstep():
            with torch.inference_mode(), _autocast(device, True):
                return compiled(x)

        cstep()
        _sync(device)
        compile_s = time.perf_counter() - t0
        sec = _timed(cstep, device, cfg["forward_iters"])
        ips = round(batch / sec, 2)
        out["compile"] = {"variant": f"{best}_b{batch}", "images_per_s": ips,
                          "compile_s": round(compile_s, 1),
                          "helps": ips > out["images_per_s"][f"{best}_b{batch}"]}
    return out


def bundled_e2e(device, cfg) -> dict:
    import cv2

    from simplepose.predictor import Predictor

    options = {"box_size": cfg["box_size"]} if cfg["box_size"] else {}
    predictor = Predictor.from_pretrained("openpose_mobilenet_thin", device=device, **options)
    cap = cv2.VideoCapture(str(VIDEO))
    if not cap.isOpened():
        return {"status": f"skipped: cannot open {VIDEO}"}
    ok, frame = cap.read()
    predictor.predict(frame)  # warm-up
    frames, people = 0, 0
    t0 = time.perf_counter()
    while frames < cfg["video_frames"]:
        ok, frame = cap.read()
        if not ok:
            break
        people += len(predictor.predict(frame))
        frames += 1
    sec = time.perf_counter() - t0
    cap.release()
    return {
        "frames": frames,
        "fps": round(frames / sec, 2),
        "people_per_frame": round(people / max(frames, 1), 2),
        "video": str(VIDEO),
        "frame_size": "768x576",
        "box_size": predictor.pipeline.box_size,
    }


def rsn18_topdown(device, cfg) -> dict:
    import cv2
    import numpy as np

    from simplepose.data.boxes import load_detections
    from simplepose.data.coco import load_coco_keypoints
    from simplepose.inference.topdown import TopDownPipeline
    from simplepose.spec import get_spec

    ann = load_coco_keypoints(VAL_ANN)
    boxes = load_detections(DETECTIONS, ann, score_threshold=0.3)
    ids = sorted(i for i in boxes if len(boxes[i][0]))[: cfg["rsn_images"]]
    kwargs = dict(cfg["rsn_kwargs"])
    spec = get_spec("rsn18").with_kwargs(**kwargs)
    pipe = TopDownPipeline.from_spec(spec.build_model().eval(), spec, device=device, flip=True)
    images = {i: cv2.imread(str(ann.image_path(i, VAL_IMAGES))) for i in ids}
    pipe.predict(images[ids[0]], *(b[:2] for b in boxes[ids[0]]))  # warm-up
    _sync(device)
    t0 = time.perf_counter()
    n = 0
    for i in ids:
        xywh, scores = (b[: cfg["max_boxes"]] for b in boxes[i])
        pipe.predict(images[i], np.asarray(xywh), np.asarray(scores))
        n += len(xywh)
    _sync(device)
    sec = time.perf_counter() - t0
    return {"images": len(ids), "people": n, "people_per_s": round(n / sec, 2), "flip": True,
            "input": "x".join(str(v) for v in kwargs.get("input_size", (256, 192)))}


def _train_batch(cfg, device):
    import torch

    from simplepose.data.bottomup_dataset import BottomUpDataset

    ds = BottomUpDataset(str(TRAIN_ANN), str(TRAIN_IMAGES), input_size=cfg["train_size"],
                         augment=False, seed=0)
    items = [ds[i % len(ds)] for i in range(cfg["train_batch"])]
    return {k: torch.stack([torch.as_tensor(it[k]) for it in items]).to(device)
            for k in ("image", "targets", "mask_miss")}


def imhn_train_amp(device, cfg) -> dict:
    import torch

    from simplepose.losses.focal_l2 import SCALE_WEIGHTS, MultiScaleFocalL2Loss
    from simplepose.spec import build_model

    torch.manual_seed(0)
    model = build_model("imhn", **cfg["imhn_kwargs"]).to(device).train()
    loss_fn = MultiScaleFocalL2Loss(scale_weights=SCALE_WEIGHTS[: model.num_scales]).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    batch = _train_batch(cfg, device)
    is_cuda = torch.device(device).type == "cuda"
    if is_cuda:
        torch.cuda.reset_peak_memory_stats(device)
    losses = []
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(cfg["train_iters"]):
        opt.zero_grad(set_to_none=True)
        with _autocast(device, True):
            out = model(batch["image"])
        loss = loss_fn(out, batch["targets"], batch["mask_miss"])
        loss.backward()
        opt.step()
        losses.append(loss.detach())
    _sync(device)
    sec = time.perf_counter() - t0
    losses = [float(v) for v in losses]
    k = max(1, min(20, len(losses) // 3))
    first, last = statistics.fmean(losses[:k]), statistics.fmean(losses[-k:])
    return {
        "iterations": len(losses),
        "batch": cfg["train_batch"],
        "input": cfg["train_size"],
        "amp": "bf16",
        "samples_per_s": round(len(losses) * cfg["train_batch"] / sec, 2),
        "peak_memory_gib": round(torch.cuda.max_memory_allocated(device) / 2**30, 2)
        if is_cuda
        else None,
        "loss_first": round(first, 4),
        "loss_last": round(last, 4),
        "loss_decreasing": last < first,
    }


def ddp_smoke(device, cfg) -> dict:
    import torch
    import torch.distributed as torch_dist
    from torch.nn.parallel import DistributedDataParallel

    from simplepose.spec import build_model

    backend = cfg["ddp_backend"]
    t0 = time.perf_counter()
    # one process: an in-memory store, so no port is bound (a port taken by another process
    # between choosing and binding it could stall the rendezvous) and no environment is read
    torch_dist.init_process_group(
        backend,
        store=torch_dist.HashStore(),
        rank=0,
        world_size=1,
        timeout=datetime.timedelta(seconds=120),
    )
    try:
        is_cuda = torch.device(device).type == "cuda"
        model = build_model("imhn", **CONFIGS["cpu_smoke"]["imhn_kwargs"]).to(device)
        ddp = DistributedDataParallel(
            model, device_ids=[torch.device(device).index or 0] if is_cuda else None
        )
        opt = torch.optim.SGD(ddp.parameters(), lr=1e-3)
        x = torch.rand(2, 3, 64, 64, device=device)
        for _ in range(cfg["ddp_steps"]):
            opt.zero_grad()
            out = ddp(x)
            sum(p.float().mean() for stack in out for p in stack).backward()
            opt.step()
        t = torch.ones(4, device=device)
        torch_dist.all_reduce(t)
        ok = bool(torch.equal(t.cpu(), torch.ones(4)))
    finally:
        torch_dist.destroy_process_group()
    return {"backend": backend, "world_size": 1, "steps": cfg["ddp_steps"], "all_reduce_ok": ok,
            "seconds": round(time.perf_counter() - t0, 2)}


def run_rows(device, cfg, compile_: bool) -> dict:
    rows = {}
    funcs = {"imhn_forward": lambda: imhn_forward(device, cfg, compile_),
             "bundled_e2e": lambda: bundled_e2e(device, cfg),
             "rsn18_topdown": lambda: rsn18_topdown(device, cfg),
             "imhn_train_amp": lambda: imhn_train_amp(device, cfg),
             "ddp_smoke": lambda: ddp_smoke(device, cfg)}
    for name in ROWS:
        t0 = time.perf_counter()
        row = funcs[name]()
        row.setdefault("status", "ok")
        row["wall_s"] = round(time.perf_counter() - t0, 2)
        rows[name] = row
        print(f"{name}: {row}", flush=True)
    return rows


def main(argv=None) -> int:
    args = parse_args(argv)
    out = Path(args.json)
    if not out.parent.is_dir():
        print(f"error: --json {out}: folder {out.parent} does not exist", file=sys.stderr)
        return 2
    import torch

    from simplepose.utils.io import atomic_write_json

    t0 = time.perf_counter()
    record = {
        "torch": torch.__version__,
        "platform": platform.platform(),
        "cuda": torch.cuda.is_available(),
    }
    if torch.cuda.is_available():
        device = torch.device(args.device)
        record["device_name"] = torch.cuda.get_device_name(device)
        record["rows"] = run_rows(str(device), CONFIGS["gpu"], not args.no_compile)
    else:
        record["device_name"] = None
        record["rows"] = {name: {"status": "skipped: no CUDA"} for name in ROWS}
        print("no CUDA device: GPU rows skipped (unmeasured)")
        if not args.no_cpu_smoke:
            torch.set_num_threads(min(2, torch.get_num_threads()))
            record["cpu_smoke"] = run_rows("cpu", CONFIGS["cpu_smoke"], compile_=False)
            record["cpu_smoke_note"] = (
                "tiny sizes on CPU to keep the code paths alive; not GPU figures"
            )
    record["wall_s"] = round(time.perf_counter() - t0, 1)
    atomic_write_json(out, record, indent=2)
    print(f"-> {out} ({record['wall_s']} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
