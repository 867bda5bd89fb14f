"""Networks. ``build_model(name, **overrides)`` builds the model registered as ``name`` in
:mod:`simplepose.spec` (the one registry of models); building one model imports only its own
module (and torch), never every model file."""

from __future__ import annotations

__all__ = ["available_models", "build_model"]


def available_models() -> list[str]:
    """Names of the registered models (:func:`simplepose.spec.available_specs`)."""
    from simplepose.spec import available_specs

    return available_specs()


def build_model(name: str, **overrides):
    """Build the model registered as ``name`` with keyword ``overrides`` of its spec's kwargs.

    Raises:
        InputError: ``name`` is not registered (the message lists the known names).
    """
    from simplepose.spec import get_spec

    return get_spec(name).build_model(**overrides)
