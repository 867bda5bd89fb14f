"""Model registry: ``build_model(name, **overrides)``.

The registry maps a name to ``"module:function"`` so that building one model imports only
its own module (and torch), never every model file.
"""

from __future__ import annotations

import importlib

__all__ = ["MODELS", "build_model", "available_models"]

MODELS: dict[str, str] = {
    # bottom-up
    "imhn": "simplepose.models.imhn:build_imhn",
    "openpose_mobilenet_thin": "simplepose.models.openpose:build_openpose_mobilenet_thin",
    # top-down
    "cpn50": "simplepose.models.cpn:build_cpn50",
    "cpn101": "simplepose.models.cpn:build_cpn101",
    "mspn": "simplepose.models.mspn:build_mspn",
    "rsn18": "simplepose.models.rsn:build_rsn18",
    "rsn50": "simplepose.models.rsn:build_rsn50",
}


def available_models() -> list[str]:
    return sorted(MODELS)


def build_model(name: str, **overrides):
    """Build the model registered as ``name`` with keyword ``overrides`` of its defaults."""
    if name not in MODELS:
        raise KeyError(f"unknown model {name!r}; available: {', '.join(available_models())}")
    module_name, func_name = MODELS[name].split(":")
    builder = getattr(importlib.import_module(module_name), func_name)
    return builder(**overrides)
