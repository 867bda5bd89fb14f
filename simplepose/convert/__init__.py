"""Official checkpoint layouts -> simplepose state dicts.

``convert_state_dict(source, state_dict)`` returns a state dict that loads with
``strict=True`` into the matching simplepose model. Sources are registered as
``"module:function"`` so that each converter imports only what it needs.
"""

from __future__ import annotations

import importlib

from ..errors import InputError

__all__ = ["CONVERTERS", "convert_state_dict"]

CONVERTERS: dict[str, str] = {
    "simplepose": "simplepose.convert.simplepose_imhn:convert_simplepose",
    "pytorch-cpn": "simplepose.convert.topdown:convert_pytorch_cpn",
    "mspn": "simplepose.convert.topdown:convert_mspn",
    "rsn": "simplepose.convert.topdown:convert_rsn",
}


def convert_state_dict(source: str, state_dict):
    """Map a released checkpoint's ``state_dict`` (layout ``source``) onto ours."""
    if source not in CONVERTERS:
        raise InputError(f"unknown checkpoint source {source!r}; available: {', '.join(sorted(CONVERTERS))}")
    module_name, func_name = CONVERTERS[source].split(":")
    return getattr(importlib.import_module(module_name), func_name)(state_dict)
