"""Write the persons of a converted MPII JSON in the layout of the MPII benchmark's
gt_valid.mat (1-based MATLAB px), with SYNTHETIC head boxes (see ../NOTICE_other_datasets.md).

    python tests/data/mpii/make_gt_sample.py                       # gt_sample.mat of test_mpii.json
    python tests/data/mpii/make_gt_sample.py ../shared/data/other_datasets/mpii/test_mpii.json \
        tests/data/mpii/gt_shared_sample.mat                        # the 5 persons of ../shared
"""

import json
import sys
from pathlib import Path

import numpy as np
import scipy.io

from simplepose.data.mpii import MPII_MAT_JOINTS
from simplepose.utils.io import atomic_path

HERE = Path(__file__).resolve().parent


def main(source=HERE / "test_mpii.json", out=HERE / "gt_sample.mat") -> None:
    records = json.loads(Path(source).read_text())
    n = len(records)
    pos = np.zeros((16, 2, n))
    missing = np.zeros((16, n))
    heads = np.zeros((2, 2, n))
    for i, rec in enumerate(records):
        joints = np.asarray(rec["joints"], dtype=np.float64)  # 1-based, as in the benchmark
        pos[:, :, i] = joints
        missing[:, i] = 1 - np.asarray(rec["joints_vis"])
        neck, top = joints[8], joints[9]  # upper neck, head top
        half = np.linalg.norm(top - neck) / 2
        mid = (neck + top) / 2
        heads[0, :, i] = mid - half  # top-left (x1, y1)
        heads[1, :, i] = mid + half  # bottom-right (x2, y2)
    names = np.empty((1, 16), dtype=object)
    names[0, :] = list(MPII_MAT_JOINTS)
    with atomic_path(out, ".mat") as tmp:
        scipy.io.savemat(str(tmp), {"dataset_joints": names, "jnt_missing": missing,
                               "pos_gt_src": pos, "headboxes_src": heads}, appendmat=False)
    print(f"{n} persons -> {out}")


if __name__ == "__main__":
    main(*sys.argv[1:3])
