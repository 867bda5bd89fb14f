"""Official top-down checkpoint layouts -> simplepose state dicts (CPN, MSPN, RSN).

Layouts (from the parity fixtures in ``shared/fixtures/parity``):

* ``pytorch-cpn`` (GengDavid/pytorch-cpn): tensors under ``checkpoint["state_dict"]`` with
  the DataParallel prefix ``module.``; ResNet-50 or -101 is detected from the key set.
* ``mspn`` (megvii-detection/MSPN) and ``rsn`` (caiyuanhao1998/RSN): tensors under
  ``checkpoint["model"]``, no prefix; the number of stages (and RSN's depth) is detected.

Every converter accepts the whole checkpoint dict or the bare state dict, strips any number
of leading ``module.`` prefixes, fills in ``num_batches_tracked`` entries that pre-0.4.1
checkpoints lack, and validates the result against the matching simplepose model (built on
the ``meta`` device, so no memory or time is spent). A checkpoint of another model raises
:class:`~simplepose.errors.CheckpointError` listing missing and unexpected keys and shape
mismatches. Pass ``model=`` to validate against a specific model instead (for example one
with a non-default number of keypoints).
"""

from __future__ import annotations

import logging
import re
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping

import torch
from torch import nn

from simplepose.errors import CheckpointError
from simplepose.utils.state_dict import state_dict_diff

__all__ = ["CPN_RENAMES", "convert_mspn", "convert_pytorch_cpn", "convert_rsn"]

LOG = logging.getLogger(__name__)

_CONTAINER_KEYS = ("state_dict", "model", "model_state_dict", "net", "weights")

#: (pattern, replacement) applied in order to pytorch-cpn keys after the ``module.`` strip.
CPN_RENAMES: tuple[tuple[str, str], ...] = (
    (r"^resnet\.", "backbone."),
    (r"^global_net\.laterals\.(\d+)\.0\.", r"global_net.laterals.\1.conv."),
    (r"^global_net\.laterals\.(\d+)\.1\.", r"global_net.laterals.\1.bn."),
    (r"^global_net\.upsamples\.(\d+)\.1\.", r"global_net.upsamples.\1.conv."),
    (r"^global_net\.upsamples\.(\d+)\.2\.", r"global_net.upsamples.\1.bn."),
    (r"^global_net\.predict\.(\d+)\.0\.", r"global_net.predict.\1.conv1."),
    (r"^global_net\.predict\.(\d+)\.1\.", r"global_net.predict.\1.bn1."),
    (r"^global_net\.predict\.(\d+)\.3\.", r"global_net.predict.\1.conv2."),
    (r"^global_net\.predict\.(\d+)\.5\.", r"global_net.predict.\1.bn2."),
    (r"^refine_net\.final_predict\.0\.", "refine_net.final_block."),
    (r"^refine_net\.final_predict\.1\.", "refine_net.final_conv."),
    (r"^refine_net\.final_predict\.2\.", "refine_net.final_bn."),
)
_CPN_RENAMES = tuple((re.compile(p), r) for p, r in CPN_RENAMES)


def _unwrap(checkpoint: Mapping, source: str) -> OrderedDict[str, torch.Tensor]:
    """Return the tensor dict of ``checkpoint`` with leading ``module.`` prefixes removed."""
    if not isinstance(checkpoint, Mapping):
        raise CheckpointError(
            f"{source}: expected a dict checkpoint, got {type(checkpoint).__name__}")
    sd = checkpoint
    # Descend into the container (e.g. {"state_dict": {...}, "epoch": 3}) while there is one.
    for _ in range(3):
        inner = next((sd[k] for k in _CONTAINER_KEYS if isinstance(sd.get(k), Mapping)), None)
        if inner is None:
            break
        sd = inner
    out: OrderedDict[str, torch.Tensor] = OrderedDict()
    for k, v in sd.items():
        if not torch.is_tensor(v):
            continue
        while k.startswith("module."):
            k = k[len("module."):]
        out[k] = v
    if not out:
        raise CheckpointError(
            f"{source}: no tensors found (top-level keys: {_preview(checkpoint.keys())})")
    return out


def _preview(keys: Iterable[str], n: int = 8) -> str:
    keys = sorted(keys)
    s = ", ".join(keys[:n])
    return s + (f", ... ({len(keys) - n} more)" if len(keys) > n else "")


def _validate(sd: OrderedDict[str, torch.Tensor], model: nn.Module, source: str,
              what: str) -> OrderedDict[str, torch.Tensor]:
    """Check keys and shapes against ``model``; fill missing ``num_batches_tracked``.

    Returns ``sd`` reordered as ``model.state_dict()``. Raises CheckpointError otherwise.
    """
    expected = model.state_dict()
    for k, v in expected.items():
        if k.endswith("num_batches_tracked") and k not in sd:
            sd[k] = torch.zeros((), dtype=v.dtype)
    diff = state_dict_diff(expected, sd)
    if diff:
        raise CheckpointError(f"{source}: checkpoint does not match {what}: {diff}")
    return OrderedDict((k, sd[k]) for k in expected)


def _meta_model(builder: Callable[..., nn.Module], **kw) -> nn.Module:
    """Build a model on the meta device: shapes only, no memory, no init cost."""
    with torch.device("meta"):
        return builder(**kw)


def _num_keypoints(sd: Mapping[str, torch.Tensor], key: str, source: str) -> int:
    if key not in sd or sd[key].ndim != 4:
        raise CheckpointError(f"{source}: cannot find the heatmap conv {key!r}; keys: "
                              f"{_preview(sd.keys())}")
    return int(sd[key].shape[0])


def _count_blocks(sd: Mapping[str, torch.Tensor], prefix: str) -> int:
    """Number of consecutive block indices ``prefix{b}.`` present."""
    idx = {int(m.group(1)) for k in sd for m in [re.match(re.escape(prefix) + r"(\d+)\.", k)] if m}
    n = 0
    while n in idx:
        n += 1
    return n


def convert_pytorch_cpn(checkpoint: Mapping, model: nn.Module | None = None):
    """pytorch-cpn checkpoint (``{"state_dict": {"module.resnet....": ...}}``) -> our CPN.

    Args:
        checkpoint: the loaded checkpoint dict or its state dict, with or without
            ``module.`` prefixes.
        model: optional target model to validate against; by default CPN-50 or CPN-101 is
            chosen from the number of ``layer3`` blocks (6 or 23) and K from the last conv.

    Returns:
        OrderedDict loadable with ``load_state_dict(strict=True)`` into
        :func:`~simplepose.models.cpn.build_cpn50` / ``build_cpn101``.
    """
    source = "pytorch-cpn"
    sd = OrderedDict()
    for k, v in _unwrap(checkpoint, source).items():
        for pattern, repl in _CPN_RENAMES:
            k, n = pattern.subn(repl, k)
            if n:
                break
        sd[k] = v
    if model is None:
        from simplepose.models.cpn import build_cpn50, build_cpn101

        n3 = _count_blocks(sd, "backbone.layer3.")
        builders = {6: (build_cpn50, "CPN-50"), 23: (build_cpn101, "CPN-101")}
        if n3 not in builders:
            raise CheckpointError(
                f"{source}: found {n3} backbone.layer3 blocks (resnet.layer3.* in the file); "
                f"expected 6 (ResNet-50) or 23 (ResNet-101). Keys: {_preview(sd.keys())}")
        builder, what = builders[n3]
        k = _num_keypoints(sd, "refine_net.final_conv.weight", source)
        model = _meta_model(builder, num_keypoints=k)
        what = f"{what} with {k} keypoints"
    else:
        what = type(model).__name__
    out = _validate(sd, model, source, what)
    LOG.info("converted %s checkpoint: %d tensors for %s", source, len(out), what)
    return out


def _convert_multistage(checkpoint: Mapping, source: str, model: nn.Module | None,
                        build: Callable[[Mapping[str, torch.Tensor], int, int], tuple]):
    sd = _unwrap(checkpoint, source)
    if model is None:
        num_stages = 0
        while any(k.startswith(f"stage{num_stages}.") for k in sd):
            num_stages += 1
        if num_stages == 0:
            raise CheckpointError(f"{source}: no 'stage0.*' keys, so this is not a multi-stage "
                                  f"(MSPN/RSN) checkpoint. Keys: {_preview(sd.keys())}")
        last = num_stages - 1
        k = _num_keypoints(sd, f"stage{last}.upsample.up4.res_conv2.conv.weight", source)
        model, what = build(sd, num_stages, k)
    else:
        what = type(model).__name__
    out = _validate(sd, model, source, what)
    LOG.info("converted %s checkpoint: %d tensors for %s", source, len(out), what)
    return out


def convert_mspn(checkpoint: Mapping, model: nn.Module | None = None):
    """Official MSPN checkpoint (``{"model": {"top.conv.conv.weight": ...}}``) -> our MSPN.

    Our module names equal the official ones, so this unwraps and validates. The number of
    stages and K are read from the keys unless ``model`` is given.
    """
    from simplepose.models.mspn import build_mspn

    def build(sd, num_stages, k):
        m = _meta_model(build_mspn, num_stages=num_stages, num_keypoints=k)
        return m, f"MSPN with {num_stages} stages and {k} keypoints"

    return _convert_multistage(checkpoint, "mspn", model, build)


def convert_rsn(checkpoint: Mapping, model: nn.Module | None = None):
    """Official RSN checkpoint (``{"model": {...}}``) -> our RSN.

    Depth (18 or 50) is read from the number of blocks per layer, the number of stages, K
    and the presence of a Pose Refine Machine (``prm.*``) from the keys, unless ``model`` is
    given.
    """
    from simplepose.models.rsn import RSN_LAYERS, build_rsn

    def build(sd, num_stages, k):
        layers = tuple(_count_blocks(sd, f"stage0.downsample.layer{i}.") for i in range(1, 5))
        depth = next((d for d, lay in RSN_LAYERS.items() if lay == layers), None)
        if depth is None:
            raise CheckpointError(
                f"rsn: blocks per layer {list(layers)} match no RSN layout "
                f"({ {d: list(v) for d, v in RSN_LAYERS.items()} }). Keys: {_preview(sd.keys())}")
        use_prm = any(key.startswith("prm.") for key in sd)
        m = _meta_model(build_rsn, depth=depth, num_stages=num_stages, num_keypoints=k,
                        use_prm=use_prm)
        return m, f"RSN-{depth} with {num_stages} stages, {k} keypoints, prm={use_prm}"

    return _convert_multistage(checkpoint, "rsn", model, build)
