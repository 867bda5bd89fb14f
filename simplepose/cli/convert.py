"""Convert a released checkpoint (SimplePose, pytorch-cpn, MSPN, RSN) to simplepose safetensors.

Usage (IN: a released checkpoint you downloaded; ``python data_prep/convert_checkpoint.py``
takes the same options)::

    simplepose convert --from simplepose --input IN.pth --output imhn.safetensors
    simplepose convert --from pytorch-cpn --model cpn101 --input IN.pth.tar \\
        --output cpn101.safetensors
    simplepose convert --from rsn --input IN.pth --output rsn.safetensors \\
        --model-kwargs '{"stages": 4}'

Steps: read IN without unpickling code (``torch.load(weights_only=True)`` or safetensors), map its
keys with ``simplepose.convert.convert_state_dict(source, ...)``, build the target model and load
the result with ``strict=True``, then write OUT atomically with ``simplepose.checkpoint.save_model``
(metadata: model name, kwargs, source). Model kwargs are the source's defaults, updated by what the
converted weights imply (IMHN: stacks, widths), updated by ``--model-kwargs``. Errors are one line
on stderr with exit status 2.
"""

from __future__ import annotations

import argparse
import importlib
import json
from pathlib import Path

from simplepose.cli.common import run_reporting_errors
from simplepose.convert import CONVERTERS
from simplepose.errors import SimplePoseError

#: source -> "module:function" that infers builder kwargs from the converted state dict. Which
#: models a source converts into is the models' spec (``PoseModelSpec.convert_from``).
INFER_KWARGS: dict[str, str] = {
    "simplepose": "simplepose.convert.simplepose_imhn:infer_imhn_kwargs",
}


def source_models(source: str) -> list[str]:
    """Registered models whose weights convert from ``source``, the default (first
    registered) first."""
    from simplepose.spec import registered_specs

    return [s.name for s in registered_specs() if source in s.convert_from]


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--from",
        dest="source",
        required=True,
        choices=sorted(CONVERTERS),
        help="layout of the input checkpoint",
    )
    p.add_argument(
        "--input", type=Path, help="released checkpoint (.pth/.pt/.pkl/.tar or .safetensors)"
    )
    p.add_argument("--output", type=Path, help="simplepose checkpoint to write (.safetensors)")
    # the positional spelling of earlier releases: convert --from SRC IN OUT
    p.add_argument("old_input", nargs="?", type=Path, help=argparse.SUPPRESS)
    p.add_argument("old_output", nargs="?", type=Path, help=argparse.SUPPRESS)
    p.add_argument(
        "--model",
        default=None,
        help="target model name; defaults per source: "
        + ", ".join(f"{s}: {'|'.join(source_models(s))}" for s in sorted(CONVERTERS)),
    )
    p.add_argument(
        "--model-kwargs",
        default=None,
        metavar="JSON",
        help="keyword overrides for the model builder, e.g. '{\"num_stacks\": 4}'",
    )
    return p


def resolve_model(
    source: str, model: str | None, kwargs_json: str | None, converted
) -> tuple[str, dict]:
    """Model name and builder kwargs for ``source`` (see the module docstring for precedence)."""
    names = source_models(source)
    if not names:
        raise SimplePoseError(f"no registered model converts from {source!r}")
    name = model or names[0]
    if name not in names:
        raise SimplePoseError(
            f"--model {name!r} does not fit --from {source}; choose one of {list(names)}"
        )
    kwargs = {}
    inferrer = INFER_KWARGS.get(source)
    if inferrer:
        module_name, func_name = inferrer.split(":")
        kwargs.update(getattr(importlib.import_module(module_name), func_name)(converted))
    if kwargs_json:
        try:
            extra = json.loads(kwargs_json)
        except json.JSONDecodeError as exc:
            raise SimplePoseError(f"--model-kwargs is not valid JSON: {exc}") from None
        if not isinstance(extra, dict):
            raise SimplePoseError("--model-kwargs must be a JSON object")
        kwargs.update(extra)
    return name, kwargs


def main(argv=None, prog: str | None = None) -> int:
    parser = build_parser(prog)
    args = parser.parse_args(argv)
    args.input = args.input or args.old_input
    args.output = args.output or args.old_output
    if args.input is None or args.output is None:
        parser.error("--input and --output are required")
    from simplepose.checkpoint import build_and_load, load_state_dict_any, save_model
    from simplepose.convert import convert_state_dict
    from simplepose.spec import get_spec

    def convert():
        from simplepose.utils.io import check_output_file

        # before reading the (large) input: a missing or unwritable folder, or the input itself
        check_output_file(args.output, "--output", inputs=[args.input])
        raw = load_state_dict_any(args.input)
        converted = convert_state_dict(args.source, raw)
        name, kwargs = resolve_model(args.source, args.model, args.model_kwargs, converted)
        spec = get_spec(name).with_kwargs(**kwargs)
        model = build_and_load(spec, converted, source=f"converted {args.input}")
        n_params = sum(p.numel() for p in model.parameters() if p.requires_grad)
        save_model(
            args.output,
            spec,
            model.state_dict(),
            verify=False,
            extra_meta={"converted_from": args.source, "source_file": args.input.name},
        )
        return name, kwargs, converted, n_params

    result = run_reporting_errors(parser.prog, convert)
    if isinstance(result, int):
        return result
    name, kwargs, converted, n_params = result
    print(
        f"wrote {args.output}: model {name} {json.dumps(kwargs, sort_keys=True)}, "
        f"{len(converted)} tensors, {n_params:,} trainable parameters "
        f"(from {args.source} {args.input})"
    )
    return 0
