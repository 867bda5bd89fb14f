"""Inference backends for the bundled model, side by side: ms per frame of the network at 2-3
input sizes, on the same video frames, interleaved in one run.

  python bench/backends.py --json b.json [--png b.png] [--sizes 432x368 576x432 768x576]
                           [--onnx op.onnx] [--frames 6] [--repeats 3]

Backends (each given the same float32 (1, 3, H, W) raw-BGR input; timed from that array to
the (1, 57, H/8, W/8) maps as a numpy array):

* ``torch_nchw``: the PyTorch module, default (NCHW) layout, ``torch.inference_mode``;
* ``torch_channels_last``: the module and input in channels-last layout (conversion timed);
* ``onnxruntime``: the ``simplepose export`` ONNX file on ONNX Runtime's CPU provider;
* ``openvino``: the same ONNX file compiled by OpenVINO for CPU at f32 precision (optional
  extra ``pip install simplepose[openvino]``; skipped when not installed);
* ``opencv_dnn``: the original TensorFlow graph (``../shared/models/openpose_mobilenet_thin/
  graph_opt.pb``) through ``cv2.dnn.readNetFromTensorflow``, the bundled model's peer (skipped
  when the graph is absent).

Every round visits frames x backends in a rotated order, so machine noise hits every backend
alike; each backend's maps are also compared with torch NCHW (``max_abs_diff``). The JSON
holds per size and backend the median / mean / min ms per frame and the ratio to torch NCHW
(< 1: faster), plus the recommended default backend: the fastest at the largest size among the
backends simplepose installs by default (torch, ONNX Runtime), and the fastest of all.
On a shared machine compare the ratios of one run, not absolute ms across runs.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
SHARED = REPO.parent / "shared"
TF_GRAPH = SHARED / "models" / "openpose_mobilenet_thin" / "graph_opt.pb"
TF_OUTPUT = "Openpose/concat_stage7"
VIDEO = SHARED / "data" / "demo" / "vtest.avi"
DEFAULT_BACKENDS = ("torch_nchw", "torch_channels_last", "onnxruntime")  # hard dependencies


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--json", required=True, help="output JSON")
    p.add_argument("--png", default=None, help="bar plot (default: the JSON path with .png)")
    p.add_argument("--sizes", nargs="+", default=["432x368", "576x432", "768x576"],
                   help="network input sizes WxH, multiples of 8")
    p.add_argument(
        "--onnx", default=None, help="ONNX export of the bundled model (default: export now)"
    )
    p.add_argument("--video", default=str(VIDEO), help="frames are taken from this video")
    p.add_argument("--frames", type=int, default=6, help="distinct frames per round")
    p.add_argument("--repeats", type=int, default=3, help="interleaved rounds")
    p.add_argument("--backends", nargs="+", default=None,
                   help="subset of torch_nchw torch_channels_last onnxruntime openvino opencv_dnn")
    return p.parse_args(argv)


def parse_size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise SystemExit(f"error: --sizes {text!r} is not WxH (e.g. 576x432)") from None
    if w % 8 or h % 8 or w < 16 or h < 16:
        raise SystemExit(f"error: --sizes {text}: width and height must be multiples of 8 (>= 16)")
    return w, h


def read_frames(video: str, count: int):
    import cv2

    cap = cv2.VideoCapture(video)
    total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) or count
    frames = []
    for i in range(count):
        cap.set(cv2.CAP_PROP_POS_FRAMES, (i * total) // count)
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame)
    cap.release()
    if not frames:
        raise SystemExit(f"error: no frames could be read from {video}")
    return frames


# ------------------------------------------------------------------------------ backends
def make_backends(onnx_path: str, wanted) -> tuple[dict, dict]:
    """``({name: run(x) -> maps}, {name: reason skipped})``."""
    import numpy as np
    import torch

    from simplepose.inference.onnx_backend import OnnxRuntimeModel
    from simplepose.spec import build_model

    runs, skipped = {}, {}
    nchw = build_model("openpose_mobilenet_thin", pretrained=True).eval()
    cl = build_model("openpose_mobilenet_thin", pretrained=True).eval()
    cl = cl.to(memory_format=torch.channels_last)

    def torch_nchw(x):
        with torch.inference_mode():
            return nchw(torch.from_numpy(x)).numpy()

    def torch_cl(x):
        with torch.inference_mode():
            t = torch.from_numpy(x).contiguous(memory_format=torch.channels_last)
            return cl(t).contiguous().numpy()

    runs["torch_nchw"] = torch_nchw
    runs["torch_channels_last"] = torch_cl
    ort_model = OnnxRuntimeModel(onnx_path)
    runs["onnxruntime"] = lambda x: ort_model.run(x)[0]
    try:
        import openvino as ov

        core = ov.Core()
        # f32 like every other backend: OpenVINO's CPU default on bf16-capable CPUs is bf16,
        # which moves the maps by ~0.2 (measured here) and would not be a like-for-like timing
        compiled = core.compile_model(core.read_model(onnx_path), "CPU",
                                      {"INFERENCE_PRECISION_HINT": "f32"})
        request = compiled.create_infer_request()
        out_port = compiled.outputs[0]

        def openvino_run(x):
            request.infer({0: x})
            return np.array(request.get_tensor(out_port).data, copy=True)

        runs["openvino"] = openvino_run
    except ImportError:
        skipped["openvino"] = "not installed (pip install openvino)"
    if TF_GRAPH.is_file():
        import cv2

        net = cv2.dnn.readNetFromTensorflow(str(TF_GRAPH))

        def opencv_run(x):
            net.setInput(x)
            return net.forward(TF_OUTPUT)

        runs["opencv_dnn"] = opencv_run
    else:
        skipped["opencv_dnn"] = f"TensorFlow graph not found at {TF_GRAPH}"
    if wanted:
        unknown = sorted(set(wanted) - set(runs) - set(skipped))
        if unknown:
            raise SystemExit(f"error: unknown backend(s) {unknown}")
        runs = {k: v for k, v in runs.items() if k in wanted}
        skipped = {k: v for k, v in skipped.items() if k in wanted}
    return runs, skipped


def recommend(sizes: dict, runs) -> dict:
    largest = max(sizes, key=lambda s: int(s.split("x")[0]) * int(s.split("x")[1]))
    rows = sizes[largest]
    default_pool = {k: v for k, v in rows.items() if k in DEFAULT_BACKENDS}
    best_default = min(default_pool, key=lambda k: default_pool[k]["ms_median"])
    best_any = min(rows, key=lambda k: rows[k]["ms_median"])
    # the same order at every size?
    consistent = all(min(r, key=lambda k: r[k]["ms_median"]) == best_any for r in sizes.values())
    return {"size": largest, "default_backend": best_default, "fastest_backend": best_any,
            "fastest_at_every_size": consistent}


def plot(record: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from simplepose.utils.io import atomic_path

    sizes = list(record["sizes"])
    backends = list(record["backends"])
    fig, ax = plt.subplots(figsize=(8, 4.5))
    width = 0.8 / len(backends)
    for i, b in enumerate(backends):
        ms = [record["sizes"][s][b]["ms_median"] for s in sizes]
        bars = ax.bar(np.arange(len(sizes)) + i * width, ms, width, label=b)
        for bar, s in zip(bars, sizes):
            ax.annotate(f"{record['sizes'][s][b]['ratio_to_torch_nchw']:.2f}x",
                        (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                        ha="center", va="bottom", fontsize=7)
    ax.set_xticks(np.arange(len(sizes)) + 0.4 - width / 2, sizes)
    ax.set_xlabel("network input W x H")
    ax.set_ylabel("ms per frame (median)")
    ax.set_title(
        f"openpose_mobilenet_thin, CPU ({record['cpu_count']} cores); labels: vs torch NCHW"
    )
    ax.legend(fontsize=8)
    fig.tight_layout()
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)


def main(argv=None) -> int:
    args = parse_args(argv)
    out_json = Path(args.json)
    out_png = Path(args.png) if args.png else out_json.with_suffix(".png")
    for flag, path in (("--json", out_json), ("--png", out_png)):
        if not path.parent.is_dir():
            print(f"error: {flag} {path}: folder {path.parent} does not exist", file=sys.stderr)
            return 2
    sizes = [parse_size(s) for s in args.sizes]
    import cv2
    import numpy as np
    import torch
    from tqdm import tqdm

    from simplepose.export import export_onnx, load_for_export
    from simplepose.utils.io import atomic_write_json

    tmp = tempfile.TemporaryDirectory(prefix="backends_")
    onnx_path = args.onnx
    if onnx_path is None:
        onnx_path = str(Path(tmp.name) / "op.onnx")
        module, spec, meta = load_for_export("openpose_mobilenet_thin")
        export_onnx(module, spec, onnx_path, checkpoint_meta=meta)
    runs, skipped = make_backends(onnx_path, args.backends)
    names = list(runs)
    frames = read_frames(args.video, args.frames)
    # the pipeline's input: resized image, raw BGR 0..255, NCHW float32
    inputs = {
        (w, h): [np.ascontiguousarray(cv2.resize(f, (w, h), interpolation=cv2.INTER_CUBIC)
                                      .transpose(2, 0, 1)[None], dtype=np.float32) for f in frames]
        for w, h in sizes
    }
    times = {(s, b): [] for s in sizes for b in names}
    diffs = {(s, b): 0.0 for s in sizes for b in names}
    for s in sizes:  # warm-up (allocations, OpenVINO shape compile) and the parity check
        ref = runs["torch_nchw"](inputs[s][0]) if "torch_nchw" in runs else None
        for b in names:
            out = runs[b](inputs[s][0])
            if ref is not None:
                diffs[(s, b)] = float(np.abs(out - ref).max())
    load_before = os.getloadavg()
    step = 0
    for _ in tqdm(range(args.repeats), desc="rounds", unit="round"):
        for s in sizes:
            for x in inputs[s]:
                order = names[step % len(names):] + names[: step % len(names)]
                step += 1
                for b in order:
                    t = time.perf_counter()
                    runs[b](x)
                    times[(s, b)].append((time.perf_counter() - t) * 1e3)
    record = {
        "model": "openpose_mobilenet_thin", "video": args.video, "frames": len(frames),
        "repeats": args.repeats, "backends": names, "skipped": skipped, "sizes": {},
        "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
        "load_average_before": load_before, "load_average_after": os.getloadavg(),
        "versions": versions(), "platform": platform.platform(),
    }
    for s in sizes:
        key = f"{s[0]}x{s[1]}"
        rows = {}
        for b in names:
            t = times[(s, b)]
            rows[b] = {
                "ms_median": round(statistics.median(t), 2),
                "ms_mean": round(statistics.fmean(t), 2),
                "ms_min": round(min(t), 2),
                "n": len(t),
                "max_abs_diff_vs_torch": diffs[(s, b)],
            }
        base = rows.get("torch_nchw", rows[names[0]])["ms_median"]
        for r in rows.values():
            r["ratio_to_torch_nchw"] = round(r["ms_median"] / base, 3)
        record["sizes"][key] = rows
    record["recommendation"] = recommend(record["sizes"], runs)
    atomic_write_json(out_json, record, indent=2)
    plot(record, out_png)
    print(f"{'size':>9s} " + " ".join(f"{b:>20s}" for b in names))
    for key, rows in record["sizes"].items():
        print(
            f"{key:>9s} "
            + " ".join(
                f"{rows[b]['ms_median']:9.1f} ms ({rows[b]['ratio_to_torch_nchw']:.2f}x)"
                for b in names
            )
        )
    for b, why in skipped.items():
        print(f"skipped {b}: {why}")
    rec = record["recommendation"]
    print(f"recommended default backend: {rec['default_backend']} (fastest installed by default at "
          f"{rec['size']}); fastest overall: {rec['fastest_backend']}")
    print(f"-> {out_json}, {out_png}")
    tmp.cleanup()
    return 0


def versions() -> dict:
    import cv2
    import onnxruntime
    import torch

    v = {
        "torch": torch.__version__,
        "onnxruntime": onnxruntime.__version__,
        "opencv": cv2.__version__,
    }
    try:
        import openvino

        v["openvino"] = openvino.__version__
    except ImportError:
        pass
    return v


if __name__ == "__main__":
    sys.exit(main())
