"""The one missing / unexpected / mis-shaped key report (checkpoints and converters)."""

import torch

from simplepose.utils.state_dict import state_dict_diff


def test_report_lists_each_kind_on_one_line():
    expected = {"a": torch.zeros(2), "b": torch.zeros(3), "c": (4, 5)}
    got = {"b": torch.zeros(4), "c": torch.zeros(4, 5), "z": torch.zeros(1)}
    report = state_dict_diff(expected, got, extra_unexpected=["ref.x"])
    assert report == "1 missing: a; 2 unexpected: ref.x, z; 1 shape mismatch: b (4,) != (3,)"
    assert state_dict_diff(expected, {"a": (2,), "b": (3,), "c": (4, 5)}) == ""


def test_report_is_bounded():
    expected = {f"k{i}": (1,) for i in range(30)}
    report = state_dict_diff(expected, {}, limit=3)
    assert report == "30 missing: k0, k1, k2, ... (27 more)"
