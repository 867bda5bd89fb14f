"""``simplepose export`` / ``python -m simplepose.export``: ONNX export of any simplepose model.

    python -m simplepose.export --model openpose_mobilenet_thin --output op.onnx
    python -m simplepose.export --model runs/imhn/model_final.safetensors --output imhn.onnx
    python -m simplepose.export --model rsn18 --output rsn18.onnx          # random init

The file holds the network (batch dynamic; height and width dynamic for bottom-up models, as
multiples of the network stride; top-down crops keep their fixed size) and, in its
``metadata_props``, everything needed to run it without simplepose's model code: the model
name and builder arguments, the input layout and normalisation, and the nesting of the forward
outputs (see :mod:`simplepose.inference.onnx_backend`, which reads it back).

Exporter: ``torch.onnx.export(..., dynamo=True)`` (``torch.export`` + onnxscript, opset 18 by
default). The TorchScript exporter (``dynamo=False``) is deprecated in torch 2.13 and bakes the
run-time TF ``SAME`` padding of the bundled model into constants, so a graph traced at one size
gives wrong-sized maps at another; the dynamo exporter keeps the size arithmetic symbolic.
After writing, the export runs the graph with ONNX Runtime on the example input and compares
it with PyTorch (``--no-check`` skips this).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import os
import sys
import warnings
from pathlib import Path

import numpy as np

from .errors import CheckpointError, InputError, SimplePoseError
from .inference.onnx_backend import (
    ONNX_FORMAT_VERSION,
    encode_metadata,
    flatten_outputs,
    output_names,
)

__all__ = [
    "DEFAULT_OPSET",
    "example_input",
    "export_onnx",
    "input_description",
    "load_for_export",
    "main",
    "model_metadata",
    "normalise_images",
    "parity",
]

LOG = logging.getLogger(__name__)

DEFAULT_OPSET = 18
MIN_OPSET = 13  # the network ops (Resize, Pad with tensor pads, ...) need at least this
#: parity tolerance: max |onnx - torch| <= ATOL * max(1, max |torch|) per output
ATOL = 1e-4


# ------------------------------------------------------------------------- model + meta
def load_for_export(model: str, model_kwargs: dict | None = None):
    """Resolve ``model`` (a registry name or a ``.safetensors`` checkpoint) into
    ``(module, spec, checkpoint_meta)``.

    A registry name builds the model of its :class:`~simplepose.spec.PoseModelSpec` (with
    ``model_kwargs``; a top-down ``input_size`` also sets the codec): models with bundled
    weights (``openpose_mobilenet_thin``) get them, every other model random weights (a warning
    says so). A checkpoint is rebuilt from the spec it carries (``model_kwargs`` must then be
    empty); its other metadata is returned as ``checkpoint_meta``.

    Raises:
        InputError: unknown name that is not a file either; bad builder kwargs.
        CheckpointError: unreadable checkpoint, or one of a model simplepose cannot rebuild.
    """
    from .checkpoint import extra_metadata, load_model
    from .spec import available_specs, get_spec

    model_kwargs = dict(model_kwargs or {})
    path = Path(model)
    if model in available_specs():
        try:
            spec = get_spec(model).with_kwargs(**model_kwargs)
            if spec.pretrained:
                module = spec.build_model(pretrained=True)
            else:
                LOG.warning(
                    "%s: no checkpoint given, exporting randomly initialised weights", model
                )
                module = spec.build_model()
        except (TypeError, InputError) as exc:
            raise InputError(f"cannot build model {model!r} with {model_kwargs}: {exc}") from None
        return module.eval(), spec, {}
    if path.suffix == ".onnx":
        raise InputError(
            f"--model {model} is already an ONNX file; give a model name or checkpoint"
        )
    if not path.exists() and path.suffix != ".safetensors":
        raise InputError(
            f"unknown model {model!r}: not a registered model ({', '.join(available_specs())}) "
            "and not a checkpoint file"
        )
    if model_kwargs:
        raise InputError("--model-kwargs applies to registry names; a checkpoint has its own")
    module, meta = load_model(path, map_location="cpu")
    return module.eval(), meta["spec"], extra_metadata(meta)


def input_description(spec, module=None) -> dict:
    """The ``simplepose_input`` metadata: graph input layout, the allowed sizes and the
    normalisation ``(pixel - mean) / std`` in ``channel_order`` (copied from the spec, so that
    a reader without simplepose can prepare inputs).

    Bottom-up height / width: ``{"multiple": m}`` with m the network's stride multiple
    (IMHN ``stride_multiple``, else the spec's ``pad_multiple``); top-down: ``{"fixed": n}``.
    """
    desc = {"name": "input", "layout": "NCHW", "dtype": "float32", "batch": "dynamic",
            "channel_order": spec.input.channel_order, "mean": list(spec.input.mean),
            "std": list(spec.input.std), "fill": list(spec.input.fill),
            "normalisation": "(pixel - mean) / std"}
    if spec.paradigm == "topdown":
        h, w = spec.input_hw
        desc.update(height={"fixed": h}, width={"fixed": w})
        return desc
    from .inference.bottomup import DEFAULT_BOX_SIZE, DEFAULT_PAD_MULTIPLE

    # the values BottomUpPipeline uses (its defaults where the spec has none)
    pad = int(spec.inference.get("pad_multiple", DEFAULT_PAD_MULTIPLE))
    multiple = int(getattr(module, "stride_multiple", 0) or pad)
    desc.update(height={"multiple": multiple}, width={"multiple": multiple}, pad_multiple=pad,
                box_size=int(spec.inference.get("box_size", DEFAULT_BOX_SIZE)))
    return desc


def model_metadata(spec, module, structure, checkpoint_meta=None) -> dict:
    """The simplepose metadata of an export (decoded form; see ``onnx_backend``)."""
    return {
        "simplepose_format": ONNX_FORMAT_VERSION,
        "simplepose_spec": spec.to_dict(),
        "simplepose_model": spec.name,
        "model_kwargs": spec.kwargs,
        "simplepose_paradigm": spec.paradigm,
        "simplepose_input": input_description(spec, module),
        "simplepose_outputs": structure,
        "simplepose_checkpoint": dict(checkpoint_meta or {}),
    }


def example_input(input_spec: dict, height: int | None = None, width: int | None = None,
                  batch: int = 2, seed: int = 0) -> np.ndarray:
    """A float32 (batch, 3, H, W) example: random BGR 0..255 normalised as the spec says.

    Bottom-up default size: at least 3 x 4 blocks of the stride multiple and 368 x 432; sizes
    must be multiples of it and at least 2 blocks (an example dimension of 1 block would be
    specialised by ``torch.export``). Top-down: the fixed crop size.
    """
    hs, ws = input_spec["height"], input_spec["width"]
    if "fixed" in hs:
        h, w = height or hs["fixed"], width or ws["fixed"]
        if (h, w) != (hs["fixed"], ws["fixed"]):
            raise InputError(f"this model's input size is fixed at {hs['fixed']}x{ws['fixed']}")
    else:
        m = hs["multiple"]
        h = height or m * max(3, -(-368 // m))
        w = width or m * max(4, -(-432 // m))
        if h % m or w % m or h // m < 2 or w // m < 2:
            raise InputError(f"example height/width must be multiples of {m} and at least {2 * m}")
    rng = np.random.default_rng(seed)
    images = list(rng.integers(0, 256, size=(batch, h, w, 3), dtype=np.uint8))
    return normalise_images(images, input_spec)


def normalise_images(images, input_spec: dict) -> np.ndarray:
    """BGR uint8 (H, W, 3) images of one size -> the float32 (N, 3, H, W) network input that
    ``input_spec`` (the ``simplepose_input`` metadata) describes."""
    x = np.stack(images).astype(np.float32).transpose(0, 3, 1, 2)  # BGR, 0..255
    if input_spec["channel_order"] == "rgb":
        x = x[:, ::-1]
    mean = np.asarray(input_spec["mean"], np.float32)[None, :, None, None]
    std = np.asarray(input_spec["std"], np.float32)[None, :, None, None]
    return np.ascontiguousarray((x - mean) / std, dtype=np.float32)


# ------------------------------------------------------------------------------ export
def _dynamic_shapes(input_spec: dict, example: np.ndarray):
    from torch.export import Dim

    dims = {0: Dim("batch", min=1, max=1024)}
    for axis, key in ((2, "height"), (3, "width")):
        rule = input_spec[key]
        if "multiple" in rule:
            m = rule["multiple"]
            blocks = Dim(f"{key}_blocks", min=2, max=max(4096 // m, example.shape[axis] // m))
            dims[axis] = blocks * m if m > 1 else blocks
    return (dims,)


@contextlib.contextmanager
def _quiet(logger_name: str):
    logger = logging.getLogger(logger_name)
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def _check_opset(opset: int) -> int:
    import onnx

    newest = onnx.defs.onnx_opset_version()
    if not isinstance(opset, int) or not MIN_OPSET <= opset <= newest:
        raise InputError(
            f"opset {opset} is not usable: simplepose models export at opset {MIN_OPSET}.."
            f"{newest} (default {DEFAULT_OPSET})"
        )
    return opset


def export_onnx(module, spec, output, *, checkpoint_meta=None, opset: int = DEFAULT_OPSET,
                example: np.ndarray | None = None, check: bool = True) -> dict:
    """Export ``module`` (the network of ``spec``, a :class:`~simplepose.spec.PoseModelSpec`)
    to ``output``.

    Args:
        module: the torch model (put in eval mode).
        spec: its spec, stored whole in the metadata.
        output: destination ``.onnx`` path; its folder must exist; written atomically.
        checkpoint_meta: extra metadata of the source checkpoint, stored as it is.
        opset: ONNX opset (``MIN_OPSET``..newest known to ``onnx``).
        example: float32 (N, 3, H, W) example input (default :func:`example_input`, N = 2).
        check: run the written graph with ONNX Runtime on ``example`` and compare with torch.

    Returns:
        a report dict: ``output``, ``opset``, ``outputs`` (names), ``metadata`` (decoded),
        ``max_abs_diff`` / ``max_rel_diff`` when checked.

    Raises:
        InputError: bad opset, missing output folder, output equal to an input, or an
            architecture that cannot be exported at this opset (one line).
    """
    import onnx
    import torch

    from .utils.io import atomic_path

    _check_opset(opset)
    output = Path(output)
    if not output.parent.is_dir():
        raise InputError(f"cannot write {output}: folder {output.parent} does not exist")
    module = module.eval()
    with torch.no_grad():
        in_spec = input_description(spec, module)
        if example is None:
            example = example_input(in_spec)
        x = torch.from_numpy(np.ascontiguousarray(example, dtype=np.float32))
        reference = module(x)
    leaves, structure = flatten_outputs(reference)
    names = output_names(structure)
    meta = model_metadata(spec, module, structure, checkpoint_meta)
    name = spec.name
    LOG.info("exporting %s %s at opset %d (%d outputs)", name, spec.kwargs, opset, len(names))
    log = io.StringIO()
    try:
        # the exporter prints progress and warns about things that do not concern these models
        with contextlib.redirect_stdout(log), torch.no_grad(), warnings.catch_warnings(), \
                _quiet("torch.onnx._internal.exporter._registration"):
            warnings.simplefilter("ignore", FutureWarning)
            program = torch.onnx.export(
                module, (x,), dynamo=True, input_names=["input"], output_names=names,
                dynamic_shapes=_dynamic_shapes(in_spec, example), opset_version=opset,
                external_data=False, verbose=False,
            )
    except Exception as exc:  # noqa: BLE001 - torch.export / onnxscript raise many types
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise InputError(f"cannot export {name} at opset {opset}: {first}") from None
    finally:
        LOG.debug("exporter log:\n%s", log.getvalue())
    proto = program.model_proto
    got = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), None)
    if got != opset:
        raise InputError(
            f"{name} cannot be exported at opset {opset}: the ONNX version converter could not "
            f"move its graph from opset {got} (use --opset {got} or another opset)"
        )
    del proto.metadata_props[:]
    for key, value in encode_metadata(meta).items():
        proto.metadata_props.add(key=key, value=value)
    proto.producer_name = "simplepose"
    with atomic_path(output, suffix=".onnx") as tmp:
        onnx.save_model(proto, os.fspath(tmp))
    report = {"output": str(output), "opset": opset, "outputs": names, "metadata": meta,
              "input_shape": list(example.shape)}
    if check:
        report.update(parity(output, example, [t.numpy() for t in leaves]))
    return report


def parity(onnx_path, x: np.ndarray, reference: list[np.ndarray]) -> dict:
    """Run ``onnx_path`` with ONNX Runtime on ``x`` and compare with the flat ``reference``
    outputs: ``max_abs_diff``, and ``max_rel_diff``: per output, max |diff| / max(1, max |ref|)
    (absolute for maps of unit scale, relative to the map's range where values are large, as
    float32 rounding grows with them); ``ok`` when it is at most :data:`ATOL`."""
    from .inference.onnx_backend import OnnxRuntimeModel

    got = OnnxRuntimeModel(onnx_path).run(x)
    abs_diff = max(float(np.abs(g - r).max()) for g, r in zip(got, reference, strict=True))
    rel = max(
        float(np.abs(g - r).max()) / max(1.0, float(np.abs(r).max()))
        for g, r in zip(got, reference, strict=True)
    )
    return {"max_abs_diff": abs_diff, "max_rel_diff": rel, "ok": rel <= ATOL}


# --------------------------------------------------------------------------------- CLI
def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=prog or "simplepose export",
        description="Export a simplepose model to ONNX (with metadata).",
    )
    p.add_argument("--model", required=True,
                   help="registry name (e.g. openpose_mobilenet_thin, imhn, rsn18) or a "
                        ".safetensors checkpoint")
    p.add_argument("--output", required=True, help="destination .onnx file (folder must exist)")
    p.add_argument("--model-kwargs", default=None,
                   help="JSON builder overrides for a registry name, e.g. '{\"num_stacks\": 1}'")
    p.add_argument("--opset", type=int, default=DEFAULT_OPSET,
                   help=f"ONNX opset ({MIN_OPSET}..; default {DEFAULT_OPSET})")
    p.add_argument("--height", type=int, default=None, help="example input height (bottom-up)")
    p.add_argument("--width", type=int, default=None, help="example input width (bottom-up)")
    p.add_argument("--no-check", action="store_true",
                   help="skip the ONNX Runtime vs PyTorch comparison after writing")
    return p


def _validate_paths(model: str, output: Path) -> None:
    if output.suffix != ".onnx":
        raise InputError(f"--output {output} must end in .onnx")
    if not output.parent.is_dir():
        raise InputError(f"--output {output}: folder {output.parent} does not exist")
    if output.is_dir():
        raise InputError(f"--output {output} is a folder")
    src = Path(model)
    if src.exists() and src.resolve() == output.resolve():
        raise InputError(f"--output {output} would overwrite the input checkpoint")


def require_exporter() -> None:
    """Raise :class:`InputError` naming the pip packages when the exporter's are missing."""
    import importlib.util

    missing = [m for m in ("onnx", "onnxscript") if importlib.util.find_spec(m) is None]
    if missing:
        raise InputError(
            f"ONNX export needs the package(s) {', '.join(missing)}: "
            "pip install 'simplepose[export]' (in a clone: pip install -e '.[export]')"
        )


def main(argv=None, prog: str | None = None) -> int:
    """Command line entry point; returns the exit status (0 ok, 1 parity failed, 2 bad input)."""
    args = build_parser(prog).parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        require_exporter()
        output = Path(args.output)
        _validate_paths(args.model, output)
        _check_opset(args.opset)
        try:
            kwargs = json.loads(args.model_kwargs) if args.model_kwargs else {}
        except json.JSONDecodeError as exc:
            raise InputError(f"--model-kwargs is not valid JSON: {exc}") from None
        if not isinstance(kwargs, dict):
            raise InputError("--model-kwargs must be a JSON object")
        module, spec, ckpt_meta = load_for_export(args.model, kwargs)
        example = None
        if args.height or args.width:
            example = example_input(input_description(spec, module), args.height, args.width)
        report = export_onnx(module, spec, output, checkpoint_meta=ckpt_meta,
                             opset=args.opset, example=example, check=not args.no_check)
    except (SimplePoseError, CheckpointError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    size_mb = output.stat().st_size / 2**20
    inp = report["metadata"]["simplepose_input"]
    size = "x".join(f"{v['fixed']}" if "fixed" in v else f"(k*{v['multiple']})"
                    for v in (inp["height"], inp["width"]))
    print(f"wrote {output} ({size_mb:.1f} MB): {spec.name}, opset {report['opset']}, "
          f"{len(report['outputs'])} output(s), input Nx3x{size}")
    if "ok" in report:
        print(f"parity (ONNX Runtime vs PyTorch, input {report['input_shape']}): max abs diff "
              f"{report['max_abs_diff']:.2e}, max rel diff {report['max_rel_diff']:.2e} -> "
              f"{'ok' if report['ok'] else 'FAILED'}")
        return 0 if report["ok"] else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
