"""The one image validator (detector, both pipelines, drawing)."""

import numpy as np
import pytest

from simplepose.errors import InputError
from simplepose.utils.image import check_image


def test_accepts_bgr_as_is_and_converts_grey_and_bgra():
    bgr = np.zeros((4, 5, 3), np.uint8)
    assert check_image(bgr, "x") is bgr
    grey = np.arange(20, dtype=np.uint8).reshape(4, 5)
    for g in (grey, grey[:, :, None]):
        out = check_image(g, "x")
        assert out.shape == (4, 5, 3) and (out == grey[:, :, None]).all()
    bgra = np.dstack([bgr + 7, np.full((4, 5), 255, np.uint8)])
    assert (check_image(bgra, "x") == 7).all() and check_image(bgra, "x").shape == (4, 5, 3)


@pytest.mark.parametrize("bad,message", [
    (None, "is None"),
    ("image.jpg", "numpy array"),
    (np.zeros((0, 5, 3), np.uint8), "empty"),
    (np.zeros((5, 5, 2), np.uint8), "shape"),
    (np.zeros((2, 5, 5, 3), np.uint8), "shape"),
    (np.zeros((5, 5, 3), np.float32), "uint8"),
    (np.full((5, 5, 3), np.nan), "uint8"),
])
def test_refuses_with_one_line_naming_the_caller(bad, message):
    with pytest.raises(InputError, match=f"^camera 2: .*{message}") as err:
        check_image(bad, "camera 2")
    assert "\n" not in str(err.value)
