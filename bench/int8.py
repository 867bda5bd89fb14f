"""Does int8 pay for the bundled model on this CPU? ONNX Runtime fp32 vs dynamic and static int8,
AP and speed side by side.

  python bench/int8.py --json int8.json [--onnx op.onnx] [--images N] [--calib N] [--repeats N]

* fp32: the exported bundled model (exported into a temp folder unless ``--onnx`` is given);
* int8_dynamic: ``quantize_dynamic`` (per-channel int8 weights, activations quantised per
  tensor at run time);
* int8_static: ``quantize_static`` QDQ of every Conv, per-channel int8 weights, uint8
  activations calibrated (MinMax) on ``--calib`` shared *train* images prepared exactly as
  inference prepares them; ``reduce_range`` (7-bit weights) against u8 x s8 saturation on AVX2
  without VNNI;
* int8_static_backbone: the same, for the MobileNet backbone's convs only (the CPM stages
  read a concat of 0..1 heatmaps / PAFs with large features, which one per-tensor activation
  scale cannot hold).

Speed: network ms per frame on the same val images for every variant, interleaved round-robin
(``--repeats`` rounds), and the end-to-end rate of the bottom-up pipeline. AP: the shared val
subset (all 136 images unless ``--images``), same pipeline, default inference options. The
shipping rule of issue 12: an int8 option only for FPS >= 1.5x and an AP drop <= 0.02.
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
SHARED = REPO.parent / "shared" / "data" / "coco"


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--json", required=True, help="output JSON")
    p.add_argument(
        "--onnx", default=None, help="fp32 export of the bundled model (default: export now)"
    )
    p.add_argument(
        "--ann", default=str(SHARED / "annotations" / "person_keypoints_val2017_subset.json")
    )
    p.add_argument("--images-dir", default=str(SHARED / "val2017"))
    p.add_argument("--calib-dir", default=str(SHARED / "train2017"))
    p.add_argument("--images", type=int, default=0, help="val images for AP (0: all)")
    p.add_argument("--calib", type=int, default=32, help="train images for static calibration")
    p.add_argument("--speed-frames", type=int, default=8, help="val images timed per round")
    p.add_argument("--repeats", type=int, default=3, help="interleaved timing rounds")
    return p.parse_args(argv)


def copy_metadata(src, dst) -> None:
    """Carry the simplepose metadata of ``src`` into the quantised ``dst`` (in place)."""
    import onnx

    meta = {p.key: p.value for p in onnx.load(src, load_external_data=False).metadata_props}
    model = onnx.load(dst)
    del model.metadata_props[:]
    for k, v in meta.items():
        model.metadata_props.add(key=k, value=v)
    onnx.save_model(model, dst)


class CalibrationReader:
    """Calibration inputs: train images prepared by the bottom-up pipeline (resize + pad)."""

    def __init__(self, pipeline, paths, input_name: str):
        import cv2

        self.items = []
        for path in paths:
            image = cv2.imread(str(path))
            g = pipeline.geometry(image.shape[1], image.shape[0])
            self.items.append({input_name: pipeline.preprocess(image, g)[None]})
        self.it = iter(self.items)

    def get_next(self):
        return next(self.it, None)

    def rewind(self):
        self.it = iter(self.items)


def backbone_convs(model_path: str) -> list[str]:
    """Names of the Conv nodes before the backbone's feature concat (the first Concat fed by a
    Relu / MaxPool / Conv output; Concats of shape arithmetic are skipped): the nodes the
    "backbone" variant quantises (graph order is topological)."""
    import onnx

    nodes = list(onnx.load(model_path, load_external_data=False).graph.node)
    producer = {out: n.op_type for n in nodes for out in n.output}
    names = []
    for n in nodes:
        if n.op_type == "Concat" and any(
            producer.get(t) in ("Relu", "MaxPool", "Conv") for t in n.input
        ):
            return names
        if n.op_type == "Conv":
            names.append(n.name)
    raise ValueError(f"{model_path}: no feature concat found")


def quantise(fp32: str, folder: Path, pipeline, calib_paths) -> dict[str, str]:
    """Write the int8 variants next to each other in ``folder``; ``{variant: path}``."""
    from onnxruntime.quantization import (
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_dynamic,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    pre = str(folder / "op_pre.onnx")
    quant_pre_process(fp32, pre, skip_symbolic_shape=True)
    out = {"fp32": fp32}
    dyn = str(folder / "op_int8_dynamic.onnx")
    quantize_dynamic(pre, dyn, weight_type=QuantType.QInt8, per_channel=True)
    out["int8_dynamic"] = dyn
    static = {
        "int8_static": {"op_types_to_quantize": ["Conv"]},
        "int8_static_backbone": {"nodes_to_quantize": backbone_convs(pre)},
    }
    for variant, select in static.items():
        path = str(folder / f"op_{variant}.onnx")
        reader = CalibrationReader(pipeline, calib_paths, "input")
        quantize_static(
            pre,
            path,
            reader,
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            reduce_range=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            calibrate_method=CalibrationMethod.MinMax,
            **select,
        )
        out[variant] = path
    for variant, path in out.items():
        if variant != "fp32":
            copy_metadata(fp32, path)
    return out


def main(argv=None) -> int:
    args = parse_args(argv)
    out_path = Path(args.json)
    if not out_path.parent.is_dir():
        print(f"error: --json {out_path}: folder {out_path.parent} does not exist", file=sys.stderr)
        return 2
    import cv2
    from tqdm import tqdm

    from simplepose.data.coco import load_coco_keypoints
    from simplepose.evaluation import evaluate_keypoints
    from simplepose.evaluation.runner import run_predictor
    from simplepose.export import export_onnx, load_for_export
    from simplepose.inference.bottomup import BottomUpPipeline
    from simplepose.inference.onnx_backend import OnnxRuntimeModel
    from simplepose.predictor import Predictor
    from simplepose.spec import get_spec
    from simplepose.utils.io import atomic_write_json

    name = "openpose_mobilenet_thin"
    spec = get_spec(name)
    tmp = tempfile.TemporaryDirectory(prefix="int8_")
    folder = Path(tmp.name)
    fp32 = args.onnx
    if fp32 is None:
        fp32 = str(folder / "op.onnx")
        module, spec_, meta = load_for_export(name)
        export_onnx(module, spec_, fp32, checkpoint_meta=meta)
    calib_paths = sorted(Path(args.calib_dir).glob("*.jpg"))[: args.calib]
    t0 = time.perf_counter()
    torch_pipe = BottomUpPipeline(OnnxRuntimeModel(fp32), spec)
    paths = quantise(fp32, folder, torch_pipe, calib_paths)
    quant_s = time.perf_counter() - t0
    models = {k: OnnxRuntimeModel(v) for k, v in paths.items()}
    pipes = {k: BottomUpPipeline(m, spec) for k, m in models.items()}

    ann = load_coco_keypoints(args.ann)
    ids = ann.image_ids[: args.images] if args.images else ann.image_ids
    # speed: network ms per frame and end-to-end ms per frame, interleaved round-robin
    frames = [cv2.imread(str(ann.image_path(i, args.images_dir))) for i in ids[: args.speed_frames]]
    inputs = []
    for f in frames:
        g = torch_pipe.geometry(f.shape[1], f.shape[0])
        inputs.append(torch_pipe.preprocess(f, g)[None])
    net = {k: [] for k in models}
    e2e = {k: [] for k in models}
    for k, m in models.items():  # warm-up
        m.run(inputs[0])
    for _ in tqdm(range(args.repeats), desc="timing", unit="round"):
        for x, f in zip(inputs, frames):
            for k, model in models.items():
                t = time.perf_counter()
                model.run(x)
                net[k].append((time.perf_counter() - t) * 1e3)
                t = time.perf_counter()
                pipes[k].predict(f)
                e2e[k].append((time.perf_counter() - t) * 1e3)
    # AP on the val images, one pipeline per variant
    rows = {}
    for k, pipe in pipes.items():
        predictor = Predictor(pipe, spec, backend="onnxruntime")
        results, _ = run_predictor(predictor, ann, args.images_dir, image_ids=ids)
        metrics = evaluate_keypoints(ann, results, image_ids=ids)
        rows[k] = {
            "AP": round(metrics.as_dict()["AP"], 4),
            "AP50": round(metrics.as_dict()["AP50"], 4),
            "net_ms": round(statistics.median(net[k]), 1),
            "e2e_ms": round(statistics.median(e2e[k]), 1),
            "size_mb": round(os.path.getsize(paths[k]) / 2**20, 2),
        }
    base = rows["fp32"]
    for k, r in rows.items():
        r["net_speedup"] = round(base["net_ms"] / r["net_ms"], 3)
        r["e2e_speedup"] = round(base["e2e_ms"] / r["e2e_ms"], 3)
        r["AP_drop"] = round(base["AP"] - r["AP"], 4)
        r["pays"] = bool(k != "fp32" and r["e2e_speedup"] >= 1.5 and r["AP_drop"] <= 0.02)
    record = {
        "model": name,
        "ann": args.ann,
        "num_images_ap": len(ids),
        "speed_frames": len(frames),
        "repeats": args.repeats,
        "calibration_images": len(calib_paths),
        "quantise_s": round(quant_s, 1),
        "rows": rows,
        "load_average": os.getloadavg(),
        "cpu": platform.processor() or platform.machine(),
        "rule": "ship int8 only if e2e speedup >= 1.5 and AP drop <= 0.02",
    }
    atomic_write_json(out_path, record, indent=2)
    print(
        f"{'variant':14s} {'AP':>6s} {'AP50':>6s} {'net ms':>7s} {'e2e ms':>7s} "
        f"{'x net':>6s} {'x e2e':>6s} pays"
    )
    for k, r in rows.items():
        print(
            f"{k:14s} {r['AP']:6.3f} {r['AP50']:6.3f} {r['net_ms']:7.1f} {r['e2e_ms']:7.1f} "
            f"{r['net_speedup']:6.2f} {r['e2e_speedup']:6.2f} {r['pays']}"
        )
    print(f"-> {out_path}")
    tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
