"""simplepose: multi-person 2D human pose estimation, bottom-up (SimplePose IMHN) and
top-down (CPN, MSPN, RSN), with one data, evaluation and visualisation path.

Importing the package is cheap: neither torch, CUDA nor the compiled grouping extension is
loaded until something that needs them is used (``simplepose.Predictor`` included).
"""

__version__ = "0.1.0"

__all__ = ["Person", "Predictor", "__version__"]


def __getattr__(name):  # PEP 562: lazy top-level API
    if name == "Predictor":
        from .predictor import Predictor

        return Predictor
    if name == "Person":
        from .structures import Person

        return Person
    raise AttributeError(f"module 'simplepose' has no attribute {name!r}")
