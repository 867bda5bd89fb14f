"""The top-down converters load 16-keypoint (MPII) reference checkpoints of MSPN and RSN."""

import json
from pathlib import Path

import pytest
import torch

from simplepose.convert.topdown import convert_mspn, convert_rsn
from simplepose.models.mspn import build_mspn
from simplepose.models.rsn import build_rsn

PARITY_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "fixtures" / "parity"


def _meta_ref_state_dict(fixture, k=16):
    """The COCO fixture's reference keys, as meta tensors with every 17-keypoint axis set to
    ``k``: the layout of a reference checkpoint trained on MPII (same architecture)."""
    path = PARITY_DIR / f"{fixture}.json"
    if not path.exists():
        pytest.skip(f"parity fixtures not found at {PARITY_DIR} (shared/ checkout absent)")
    out = {}
    for e in json.loads(path.read_text())["state_dict"]:
        shape = [k if d == 17 else d for d in e["shape"]]
        out[e["key"]] = torch.empty(shape, device="meta", dtype=getattr(torch, e["dtype"].replace("torch.", "")))
    return out


def _shapes(sd):
    return {k: tuple(v.shape) for k, v in sd.items()}


def _meta(builder, **kw):
    with torch.device("meta"):
        return builder(**kw)


def test_mspn_and_rsn_16_keypoint_checkpoints_convert():
    out = convert_mspn(_meta_ref_state_dict("mspn_2stg"))
    assert _shapes(out) == _shapes(_meta(build_mspn, num_stages=2, num_keypoints=16).state_dict())
    out = convert_rsn(_meta_ref_state_dict("rsn18_4stg"))
    expected = _meta(build_rsn, depth=18, num_stages=4, num_keypoints=16).state_dict()
    assert _shapes(out) == _shapes(expected)
