"""simplepose: multi-person 2D human pose estimation, bottom-up (SimplePose IMHN) and
top-down (CPN, MSPN, RSN), with one data, evaluation and visualisation path.

Importing the package is cheap: neither torch, CUDA nor the compiled grouping extension is
loaded until a submodule that needs them is used.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
