"""The one check of an in-memory image handed to simplepose (detector, pipelines, drawing)."""

from __future__ import annotations

import numpy as np

from ..errors import InputError

__all__ = ["check_image"]


def check_image(image, where: str) -> np.ndarray:
    """Validate one image and return it as an (H, W, 3) uint8 BGR array.

    Accepted: (H, W, 3) uint8 BGR (returned as is, no copy), grey (H, W) or (H, W, 1) uint8
    (repeated to three channels) and (H, W, 4) uint8 BGRA (alpha dropped, a view). Other
    dtypes are refused rather than rescaled: a float image in [0, 1] would otherwise turn
    black without a word.

    Args:
        image: the image.
        where: who asks, for the message (e.g. ``"PersonDetector"`` or ``"image 3"``).

    Raises:
        InputError: ``None`` (what ``cv2.imread`` returns for an unreadable file), not a numpy
            array, empty, another shape, or not uint8.
    """
    if image is None:
        raise InputError(f"{where}: image is None (cv2.imread returns None for unreadable files)")
    if not isinstance(image, np.ndarray):
        raise InputError(
            f"{where}: image must be a numpy array (H, W, 3) BGR, got {type(image).__name__}"
        )
    if image.ndim == 3 and image.shape[2] in (1, 4):
        image = image[:, :, 0] if image.shape[2] == 1 else image[:, :, :3]
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] != 3):
        raise InputError(
            f"{where}: image must be (H, W, 3) BGR (or grey / BGRA), got shape {image.shape}"
        )
    if image.size == 0:
        raise InputError(f"{where}: image is empty, shape {image.shape}")
    if image.dtype != np.uint8:
        raise InputError(f"{where}: image must be uint8 (0-255), got dtype {image.dtype}")
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    return image
