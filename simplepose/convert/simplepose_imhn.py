"""Official SimplePose (Improved-Body-Parts) IMHN checkpoint -> simplepose IMHN state dict.

The released checkpoint is a dict whose ``"weights"`` entry is the state dict of the evaluation
wrapper ``NetworkEval``, so every key starts with ``posenet.`` (``module.posenet.`` when it was
saved from a DataParallel/DDP wrapper). The layout (SPEC 3.5, parity fixture README "IMHN") and our
names:

=============================================  =============================================
reference key (after the prefix)               simplepose key
=============================================  =============================================
``pre.conv1.weight`` / ``pre.bn1.*``           ``stem.conv1.conv.weight`` / ``stem.conv1.bn.*``
``pre.res{1,2}.<R>``                           ``stem.res{1,2}.<R>``
``pre.dilation.{i}.{conv,bn}.*``               ``stem.dilated.{i}.{conv,bn}.*``
``hourglass.{s}.hg.{d}.0.<R>``                 ``hourglasses.{s}.levels.{d}.skip.<R>``
``hourglass.{s}.hg.{d}.1.<R>``                 ``hourglasses.{s}.levels.{d}.down.<R>``
``hourglass.{s}.hg.{d}.2.<R>``                 ``hourglasses.{s}.levels.{d}.up.<R>``
``hourglass.{s}.hg.{d}.3.{conv,bn}.*``         ``hourglasses.{s}.levels.{d}.fuse.{conv,bn}.*``
``hourglass.{s}.hg.{last}.4.<R>``              ``hourglasses.{s}.bottom.<R>``
``features.{s}.before_regress.{j}.0.*``        ``features.{s}.{j}.conv1.*``
``features.{s}.before_regress.{j}.1.*``        ``features.{s}.{j}.conv2.*``
``features.{s}.before_regress.{j}.2.fc.0.*``   ``features.{s}.{j}.se.fc1.*``
``features.{s}.before_regress.{j}.2.fc.2.*``   ``features.{s}.{j}.se.fc2.*``
``outs.{s}.{j}.conv.{weight,bias}``            ``heads.{s}.{j}.{weight,bias}``
``merge_{preds,features}.{s}.{j}.conv.*``      ``merge_{preds,features}.{s}.{j}.*``
=============================================  =============================================

where a residual block ``<R>`` maps ``convBlock.{0,1,3,4,6,7}`` -> ``conv1, bn1, conv2, bn2, conv3,
bn3`` and ``skipConv.{0,1}`` -> ``shortcut.{conv,bn}``. Tensors are passed through unchanged (no
transposes or reshapes); the reference's NHWC input permute has no weights.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Mapping

import torch

from simplepose.errors import CheckpointError
from simplepose.utils.state_dict import state_dict_diff

__all__ = [
    "convert_simplepose",
    "infer_imhn_kwargs",
    "reference_key_to_ours",
    "strip_prefixes",
    "unwrap_checkpoint",
]

LOG = logging.getLogger(__name__)

#: Keys under which a training/evaluation script stores the state dict in a checkpoint dict.
CONTAINER_KEYS = ("weights", "state_dict", "model", "model_state_dict", "net")
_PREFIXES = ("module.", "posenet.")

_RESIDUAL = {
    "convBlock.0": "conv1",
    "convBlock.1": "bn1",
    "convBlock.3": "conv2",
    "convBlock.4": "bn2",
    "convBlock.6": "conv3",
    "convBlock.7": "bn3",
    "skipConv.0": "shortcut.conv",
    "skipConv.1": "shortcut.bn",
}
_RES_RE = r"(?P<r>(?:convBlock\.[013467]|skipConv\.[01])\.[A-Za-z_]+)"
_HG_SLOT = {"0": "skip", "1": "down", "2": "up"}
_FEAT_SLOT = {"0": "conv1", "1": "conv2", "2.fc.0": "se.fc1", "2.fc.2": "se.fc2"}


def _res(suffix: str) -> str:
    head, leaf = suffix.rsplit(".", 1)
    return f"{_RESIDUAL[head]}.{leaf}"


# Slot 4 (the innermost residual) exists only at the deepest level; convert_simplepose checks d.
_SLOT4_RE = re.compile(r"hourglass\.(?P<s>\d+)\.hg\.(?P<d>\d+)\.4\." + _RES_RE)

_RULES: list[tuple[re.Pattern, object]] = [
    (re.compile(r"pre\.conv1\.(?P<leaf>weight)"), lambda m: f"stem.conv1.conv.{m['leaf']}"),
    (re.compile(r"pre\.bn1\.(?P<leaf>\w+)"), lambda m: f"stem.conv1.bn.{m['leaf']}"),
    (re.compile(r"pre\.(?P<n>res[12])\." + _RES_RE), lambda m: f"stem.{m['n']}.{_res(m['r'])}"),
    (
        re.compile(r"pre\.dilation\.(?P<i>\d+)\.(?P<rest>(?:conv|bn)\.\w+)"),
        lambda m: f"stem.dilated.{m['i']}.{m['rest']}",
    ),
    (
        re.compile(r"hourglass\.(?P<s>\d+)\.hg\.(?P<d>\d+)\.(?P<slot>[012])\." + _RES_RE),
        lambda m: f"hourglasses.{m['s']}.levels.{m['d']}.{_HG_SLOT[m['slot']]}.{_res(m['r'])}",
    ),
    (
        re.compile(r"hourglass\.(?P<s>\d+)\.hg\.(?P<d>\d+)\.3\.(?P<rest>(?:conv|bn)\.\w+)"),
        lambda m: f"hourglasses.{m['s']}.levels.{m['d']}.fuse.{m['rest']}",
    ),
    (_SLOT4_RE, lambda m: f"hourglasses.{m['s']}.bottom.{_res(m['r'])}"),
    (
        re.compile(
            r"features\.(?P<s>\d+)\.before_regress\.(?P<j>\d+)\.(?P<slot>[01]|2\.fc\.[02])\."
            r"(?P<rest>(?:(?:conv|bn)\.)?\w+)"
        ),
        lambda m: f"features.{m['s']}.{m['j']}.{_FEAT_SLOT[m['slot']]}.{m['rest']}",
    ),
    (
        re.compile(r"outs\.(?P<s>\d+)\.(?P<j>\d+)\.conv\.(?P<leaf>weight|bias)"),
        lambda m: f"heads.{m['s']}.{m['j']}.{m['leaf']}",
    ),
    (
        re.compile(
            r"(?P<kind>merge_preds|merge_features)\.(?P<s>\d+)\.(?P<j>\d+)\.conv\."
            r"(?P<rest>(?:conv|bn)\.\w+)"
        ),
        lambda m: f"{m['kind']}.{m['s']}.{m['j']}.{m['rest']}",
    ),
]


def unwrap_checkpoint(obj) -> Mapping:
    """Return the state dict inside a checkpoint object.

    Accepts a plain ``{key: tensor}`` mapping or a container dict holding it under one of
    :data:`CONTAINER_KEYS` (``{"weights": sd, "epoch": ...}`` as saved by the SimplePose scripts).
    """
    if not isinstance(obj, Mapping):
        raise CheckpointError(f"expected a state dict or checkpoint dict, got {type(obj).__name__}")
    if obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        return obj
    for key in CONTAINER_KEYS:
        if isinstance(obj.get(key), Mapping):
            LOG.debug("using checkpoint[%r] as the state dict", key)
            return unwrap_checkpoint(obj[key])
    non_tensor = sorted(str(k) for k, v in obj.items() if not isinstance(v, torch.Tensor))[:5]
    raise CheckpointError(
        "not a state dict: no tensors under any of the container keys "
        f"{list(CONTAINER_KEYS)}; non-tensor entries include {non_tensor}"
    )


def strip_prefixes(sd: Mapping, prefixes=_PREFIXES) -> dict:
    """Remove any leading run of ``prefixes`` (``module.``, ``posenet.``) from every key."""
    out = {}
    for key, value in sd.items():
        k = key
        stripped = True
        while stripped:
            stripped = False
            for p in prefixes:
                if k.startswith(p):
                    k, stripped = k[len(p) :], True
        if k in out:
            raise CheckpointError(f"duplicate key {k!r} after removing prefixes {prefixes}")
        out[k] = value
    return out


def reference_key_to_ours(key: str) -> str | None:
    """Our name for one reference key (prefix already removed), or None if it is not an IMHN key."""
    for pattern, target in _RULES:
        m = pattern.fullmatch(key)
        if m:
            return target(m)
    return None


def infer_imhn_kwargs(sd: Mapping) -> dict:
    """IMHN constructor kwargs implied by a state dict in **simplepose** layout.

    Reads the widths from ``stem.conv1``, ``hourglasses.0.levels.{0,1}``, ``heads.0.0`` and the SE
    layer; counts stacks and hourglass levels. Raises CheckpointError when an anchor key is missing.
    """

    def shape(key):
        if key not in sd:
            raise CheckpointError(f"not an IMHN checkpoint: key {key!r} is missing")
        return tuple(sd[key].shape)

    inp_dim = shape("hourglasses.0.levels.0.skip.conv3.weight")[0]
    stacks = {int(m[1]) for k in sd if (m := re.match(r"hourglasses\.(\d+)\.", k))}
    levels = {int(m[1]) for k in sd if (m := re.match(r"hourglasses\.0\.levels\.(\d+)\.", k))}
    fc1 = shape("features.0.0.se.fc1.weight")[0]
    return {
        "num_stacks": max(stacks) + 1,
        "inp_dim": inp_dim,
        "increase": shape("hourglasses.0.levels.0.down.conv3.weight")[0] - inp_dim,
        "out_dim": shape("heads.0.0.weight")[0],
        "num_scales": max(levels) + 2,
        "stem_channels": shape("stem.conv1.conv.weight")[0],
        "se_reduction": max(inp_dim // max(fc1, 1), 1),
    }


def _expected_shapes(kwargs: dict) -> dict[str, tuple]:
    return dict(_expected_shapes_cached(tuple(sorted(kwargs.items()))))


@functools.lru_cache(maxsize=8)
def _expected_shapes_cached(kwargs_items: tuple) -> tuple:
    from simplepose.models.imhn import build_imhn

    with torch.device("meta"):  # no memory; still about a second for the default model
        model = build_imhn(**dict(kwargs_items))
    return tuple((k, tuple(v.shape)) for k, v in model.state_dict().items())


def convert_simplepose(sd) -> dict[str, torch.Tensor]:
    """Map an official SimplePose IMHN state dict onto :class:`~simplepose.models.imhn.IMHN` keys.

    Args:
        sd: the reference state dict (``checkpoint["weights"]``), or the whole checkpoint dict, with
            or without ``module.`` / ``posenet.`` prefixes. ``num_batches_tracked`` may be absent
            (checkpoints saved before PyTorch 0.4.1); it is then filled with 0.

    Returns:
        ``{our_key: tensor}`` (the same tensor objects, no copies) that loads with ``strict=True``
        into ``build_imhn(**infer_imhn_kwargs(result))``; for the released model that is
        ``build_imhn()``.

    Raises:
        CheckpointError: the input is not an IMHN checkpoint; the message lists unknown, missing and
        unexpected keys and shape mismatches.
    """
    sd = strip_prefixes(unwrap_checkpoint(sd))
    out: dict[str, torch.Tensor] = {}
    unknown: list[str] = []
    bottom_levels: dict[str, str] = {}  # reference key -> hourglass level of its slot-4 block
    for key, value in sd.items():
        new = reference_key_to_ours(key)
        if new is None:
            unknown.append(key)
            continue
        slot4 = _SLOT4_RE.fullmatch(key)
        if slot4:
            bottom_levels[key] = slot4["d"]
        out[new] = value
    if unknown and len(unknown) == len(sd):
        raise CheckpointError(
            f"not a SimplePose IMHN checkpoint: none of its {len(sd)} keys matches the reference "
            f"layout (first keys: {list(sd)[:5]})"
        )
    try:
        kwargs = infer_imhn_kwargs(out)
    except CheckpointError as exc:
        if unknown:
            raise CheckpointError(
                f"{exc}; {len(unknown)} keys are not in the reference layout, e.g. {unknown[:5]}"
            ) from None
        raise
    depth = kwargs["num_scales"] - 1
    wrong_bottom = [
        f"hourglass level {lvl} slot 4 (only the deepest level {depth - 1} has one)"
        for lvl in bottom_levels.values()
        if int(lvl) != depth - 1
    ]
    expected = _expected_shapes(kwargs)
    for key in expected:
        if key.endswith("num_batches_tracked") and key not in out:
            out[key] = torch.tensor(0, dtype=torch.long)
    diff = state_dict_diff(expected, out, extra_unexpected=unknown + wrong_bottom)
    if diff:
        raise CheckpointError(f"checkpoint does not match IMHN {kwargs}: {diff}")
    LOG.info("converted %d SimplePose tensors to IMHN %s", len(out), kwargs)
    return {k: out[k] for k in expected}
