"""The one report of how a state dict differs from what a model expects."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

__all__ = ["state_dict_diff"]


def _shape(value) -> tuple:
    return tuple(value.shape) if hasattr(value, "shape") else tuple(value)


def state_dict_diff(
    expected: Mapping, got: Mapping, limit: int = 12, extra_unexpected: Iterable[str] = ()
) -> str:
    """One line naming missing keys, unexpected keys and shape mismatches ('' when they match).

    Args:
        expected: key -> tensor (anything with ``.shape``) or shape tuple, what the model has.
        got: key -> tensor or shape tuple, what the checkpoint has.
        limit: at most this many items are listed per kind (the count is always given).
        extra_unexpected: further unexpected entries to report first (e.g. keys that a
            converter could not map at all).

    Returns:
        e.g. ``"2 missing: a, b; 1 unexpected: c; 1 shape mismatch: d (3,) != (4,)"``, with
        the checkpoint's shape before the model's.
    """
    missing = [k for k in expected if k not in got]
    unexpected = [*extra_unexpected, *(k for k in got if k not in expected)]
    mismatched = [
        f"{k} {_shape(got[k])} != {_shape(expected[k])}"
        for k in expected
        if k in got and _shape(got[k]) != _shape(expected[k])
    ]
    parts = []
    for title, items in (
        ("missing", missing),
        ("unexpected", unexpected),
        ("shape mismatch", mismatched),
    ):
        if items:
            more = f", ... ({len(items) - limit} more)" if len(items) > limit else ""
            parts.append(f"{len(items)} {title}: {', '.join(items[:limit])}{more}")
    return "; ".join(parts)
