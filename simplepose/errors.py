"""Exceptions raised on bad input. Each message names the input and what is wrong."""

__all__ = [
    "AnnotationError",
    "CheckpointError",
    "ExtensionMissingError",
    "InputError",
    "SimplePoseError",
]


class SimplePoseError(Exception):
    """Base class of every error simplepose raises on purpose."""


class AnnotationError(SimplePoseError, ValueError):
    """An annotation or results file is missing, malformed, or not COCO person keypoints."""


class InputError(SimplePoseError, ValueError):
    """An array, image or argument has the wrong shape, dtype, values or is missing."""


class CheckpointError(SimplePoseError, ValueError):
    """A checkpoint is missing, corrupt, or belongs to another model or shape."""


class ExtensionMissingError(SimplePoseError, ImportError):
    """The compiled extension is not built."""
