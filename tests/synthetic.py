"""Synthetic people shared by the tests."""

import numpy as np

# A standing person in COCO-17 order, original px (x, y, v).
PERSON = np.array([
    [100, 40, 2], [106, 34, 2], [94, 34, 2], [114, 38, 2], [86, 38, 2],
    [126, 72, 2], [74, 72, 2], [134, 110, 2], [66, 110, 2], [136, 146, 2], [64, 146, 2],
    [118, 150, 2], [82, 150, 2], [120, 200, 2], [80, 200, 2], [121, 248, 2], [79, 248, 2],
], dtype=np.float64)  # fmt: skip
