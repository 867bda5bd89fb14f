"""Top-down losses (SPEC 4.4, 5.4): hand-computed values on tiny constant maps.

Every example uses B = 1, K = 3 keypoints, 2 x 2 maps, and constant predictions, so each
mean over pixels is a single squared difference. Target kernel t holds 10 (t + 1) for
keypoint 0 and 5 for keypoint 1; keypoint 2's target is 0.
"""

import pytest
import torch

from simplepose.codecs.topdown import cpn_codec, mspn_codec
from simplepose.errors import InputError
from simplepose.losses.topdown import CoarseToFineLoss, CPNLoss, ohkm


def _targets(num_kernels):
    t = torch.zeros(1, num_kernels, 3, 2, 2)
    for k in range(num_kernels):
        t[0, k, 0] = 10.0 * (k + 1)
        t[0, k, 1] = 5.0
    return t


def _const(*values):
    """(1, K, 2, 2) map with keypoint k equal to values[k] (one value: all keypoints)."""
    if len(values) == 1:
        values = values * 3
    return torch.tensor(values, dtype=torch.float32).view(1, -1, 1, 1).expand(1, 3, 2, 2)


def test_ohkm_keeps_divisor_when_few_keypoints_are_valid():
    loss = torch.tensor([[4.0, 0.0, 1.0, 9.0], [0.0, 0.0, 0.0, 6.0]])
    # row 0: top-2 = 9 + 4 -> 6.5; row 1: top-2 = 6 + 0 -> 3; mean 4.75
    assert ohkm(loss, top_k=2).item() == pytest.approx(4.75)
    with pytest.raises(InputError):
        ohkm(loss, top_k=5)


def test_cpn_loss_hand_computed():
    targets = _targets(4)
    weights = torch.tensor([[2.0, 1.0, 0.0]])  # visible, occluded, unlabelled
    global_outs = [_const(l + 1.0) for l in range(4)]  # level l predicts l + 1 everywhere
    refine = _const(1.0, 2.0, 3.0)
    loss = CPNLoss(top_k=2)(global_outs, refine, targets, weights)
    # Global level l (target kernel l): kp0 label 10(l+1) (visible), kp1 and kp2 label 0;
    # mean over 3 keypoints = ((c - 10(l+1))^2 + 2c^2) / 3 with c = l + 1, i.e. 83 (l+1)^2 / 3;
    # halved and summed: 83/6 * (1 + 4 + 9 + 16) = 415.
    assert loss["global"].item() == pytest.approx(415.0)
    # Refine (kernel 3 -> kp0 = 40, kp1 = 5, kp2 = 0): per keypoint (1-40)^2 = 1521,
    # (2-5)^2 = 9, kp2 masked (v = 0) -> 0; top-2 / 2 = (1521 + 9) / 2 = 765.
    assert loss["refine"].item() == pytest.approx(765.0)
    assert loss["loss"].item() == pytest.approx(1180.0)

    # TF-CPN: divide the global term by 4 levels.
    tf = CPNLoss(top_k=2, global_level_mean=True)(global_outs, refine, targets, weights)
    assert tf["loss"].item() == pytest.approx(415.0 / 4 + 765.0)

    # Only keypoint 0 labelled: the two zeros compete, the divisor stays 2.
    only0 = CPNLoss(top_k=2)(global_outs, refine, targets, torch.tensor([[2.0, 0.0, 0.0]]))
    assert only0["refine"].item() == pytest.approx(1521.0 / 2)


def test_cpn_loss_kernel_order_and_batch_mean():
    targets = _targets(4)
    weights = torch.tensor([[2.0, 1.0, 0.0]])
    global_outs = [_const(l + 1.0) for l in range(4)]
    refine = _const(1.0, 2.0, 3.0)
    # TF-CPN kernel order: level l uses kernel 3 - l, so kp0's label is 10 (4 - l):
    # l=0: (1-40)^2 + 2 = 1523; l=1: (2-30)^2 + 8 = 792; l=2: (3-20)^2 + 18 = 307;
    # l=3: (4-10)^2 + 32 = 68; sum 2690, / 3 keypoints / 2 = 448.333...
    rev = CPNLoss(level_targets=(3, 2, 1, 0), top_k=2)(global_outs, refine, targets, weights)
    assert rev["global"].item() == pytest.approx(2690.0 / 6)
    # A batch of two identical samples has the same (mean) loss.
    two = CPNLoss(top_k=2)([torch.cat([g, g]) for g in global_outs], torch.cat([refine, refine]),
                           torch.cat([targets, targets]), torch.cat([weights, weights]))
    assert two["loss"].item() == pytest.approx(1180.0)


def test_coarse_to_fine_loss_hand_computed():
    targets = _targets(5)
    weights = torch.tensor([[2.0, 1.0, 1.0]])  # only kp0 is visible
    # stage s, unit u predicts the constant 4 s + u + 1 for every keypoint
    stages = [[_const(4.0 * s + u + 1) for u in range(4)] for s in range(2)]
    loss = CoarseToFineLoss(top_k=2)(stages, targets, weights)
    # Plain units: labels of kp1, kp2 zeroed (v <= 1): ((p - label0)^2 + 2 p^2) / 3, times 1/4.
    # OHKM unit: per keypoint (p - label)^2 for all three (v > 0), top-2 / 2.
    # Stage 0 (kernels 0..3): u0 p=1: (81 + 2)/3/4 = 83/12; u1 p=2: (324 + 8)/3/4 = 83/3;
    #   u2 p=3: (729 + 18)/3/4 = 62.25; u3 p=4 (kernel 3: 40, 5, 0): 1296, 1, 16 -> 656.
    stage0 = 83 / 12 + 83 / 3 + 62.25 + 656
    # Stage 1 = last (kernels 1..4): u0 p=5: (225 + 50)/3/4 = 275/12; u1 p=6: (576 + 72)/12 = 54;
    #   u2 p=7: (1089 + 98)/12 = 1187/12; u3 p=8 (kernel 4: 50, 5, 0): 1764, 9, 64 -> 914.
    stage1 = 275 / 12 + 54 + 1187 / 12 + 914
    assert loss["per_stage"].tolist() == pytest.approx([stage0, stage1])
    assert loss["loss"].item() == pytest.approx(stage0 + stage1)  # 1842.666...

    # Without coarse-to-fine the last stage also uses kernels 0..3:
    # u0 p=5: ((5-10)^2 + 50)/12 = 75/12; u1 p=6: ((6-20)^2 + 72)/12 = 268/12;
    # u2 p=7: ((7-30)^2 + 98)/12 = 627/12; u3 p=8 (40, 5, 0): 1024, 9, 64 -> (1024 + 64)/2 = 544.
    flat = CoarseToFineLoss(last_stage_targets=None, top_k=2)(stages, targets, weights)
    assert flat["per_stage"][1].item() == pytest.approx((75 + 268 + 627) / 12 + 544)


def test_losses_from_codec_and_input_checks():
    c2f = CoarseToFineLoss.from_codec(mspn_codec())
    assert c2f.level_targets == (0, 1, 2, 3) and c2f.last_stage_targets == (1, 2, 3, 4)
    cpn = CPNLoss.from_codec(cpn_codec())
    assert cpn.level_targets == (0, 1, 2, 3) and cpn.refine_target == 3
    with pytest.raises(InputError, match="target kernels"):
        c2f([[_const(1.0)] * 4], _targets(4), torch.ones(1, 3))
    with pytest.raises(InputError, match="unit outputs"):
        c2f([[_const(1.0)] * 3], _targets(5), torch.ones(1, 3))


def test_coarse_to_fine_gradients_flow():
    targets = _targets(5)
    weights = torch.tensor([[2.0, 2.0, 2.0]])
    stages = [[_const(1.0).clone().requires_grad_(True) for _ in range(4)] for _ in range(2)]
    CoarseToFineLoss(top_k=2)(stages, targets, weights)["loss"].backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for s in stages for p in s)
