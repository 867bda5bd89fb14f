"""Multi-scale focal L2 loss (SPEC 3.6): hand-computed values, gamma, masks, reference code."""

import pytest
import torch
import torch.nn.functional as F

from simplepose.errors import InputError
from simplepose.losses import SCALE_WEIGHTS, MultiScaleFocalL2Loss


def _hand_example():
    """1 image, 50 channels, labels/mask 4x4, one stack, scales 4x4 and 2x2, few nonzero pixels."""
    target = torch.zeros(1, 50, 4, 4)
    target[0, 30, 0, 0] = 1.0  # keypoint channel (weight 3)
    target[0, 0, 1, 1] = 0.5  # limb channel (weight 1)
    mask = torch.ones(1, 1, 4, 4)
    mask[0, 0, 3, 3] = 0.0  # one unlabelled pixel
    p0 = torch.zeros(1, 50, 4, 4)
    p0[0, 30, 0, 0] = 0.6
    p0[0, 48, 2, 2] = 0.3  # person-mask channel (weight 0.1), negative
    p0[0, 5, 3, 3] = 0.9  # masked out: contributes nothing
    p1 = torch.zeros(1, 50, 2, 2)
    p1[0, 30, 0, 0] = 0.5
    p1[0, 49, 1, 1] = 0.4  # negative, mask there pools to 0.75
    p1[0, 40, 1, 0] = 0.2  # keypoint channel, negative
    return [[p0, p1]], target, mask


def _hand_value(gamma):
    """Explicit arithmetic: term = (p - t)^2 * |1 - p_t|^gamma * mask * channel weight."""
    # scale 0 (4x4): labels and mask as given
    l0 = (
        (0.6 - 1.0) ** 2 * abs(1 - 0.6) ** gamma * 1.0 * 3  # ch30 (0,0): positive, p_t = p
        + (0.0 - 0.5) ** 2 * abs(1 - 0.0) ** gamma * 1.0 * 1  # ch0 (1,1): positive, p = 0
        + (0.3 - 0.0) ** 2 * abs(0.3) ** gamma * 1.0 * 0.1
    )  # ch48 (2,2): negative, p_t = 1 - p
    # scale 1 (2x2): labels are 2x2 block means, mask is the bilinear 2x2 mean (0.75 at (1,1))
    t30, t0 = 1.0 / 4, 0.5 / 4
    l1 = (
        (0.5 - t30) ** 2 * abs(1 - 0.5) ** gamma * 1.0 * 3  # ch30 (0,0)
        + (0.0 - t0) ** 2 * abs(1 - 0.0) ** gamma * 1.0 * 1  # ch0 (0,0): t = 0.125 >= 0.01
        + (0.4 - 0.0) ** 2 * abs(0.4) ** gamma * 0.75 * 1  # ch49 (1,1)
        + (0.2 - 0.0) ** 2 * abs(0.2) ** gamma * 1.0 * 3
    )  # ch40 (1,0)
    return l0, l1


@pytest.mark.parametrize("gamma", [1.0, 2.0])
def test_hand_computed_value(gamma):
    preds, target, mask = _hand_example()
    l0, l1 = _hand_value(gamma)
    loss_fn = MultiScaleFocalL2Loss(gamma=gamma, scale_weights=(1.0, 2.0))
    loss, per_scale = loss_fn(preds, target, mask, return_per_scale=True)
    assert loss.dtype == torch.float32 and loss.dim() == 0
    assert per_scale.tolist() == pytest.approx([l0, l1], rel=1e-6)
    assert float(loss) == pytest.approx((1.0 * l0 + 2.0 * l1) / 3.0 / 1, rel=1e-6)
    # fixed normaliser (the reference's per-GPU batch of 4)
    ref4 = MultiScaleFocalL2Loss(gamma=gamma, scale_weights=(1.0, 2.0), batch_normalizer=4)
    assert float(ref4(preds, target, mask)) == pytest.approx((l0 + 2.0 * l1) / 3.0 / 4, rel=1e-6)


def test_gamma_one_vs_two():
    preds, target, mask = _hand_example()
    l1_0, l1_1 = _hand_value(1.0)
    l2_0, l2_1 = _hand_value(2.0)
    assert (l1_0, l1_1) != pytest.approx((l2_0, l2_1))
    g1 = MultiScaleFocalL2Loss(gamma=1, scale_weights=(1.0, 2.0))(preds, target, mask)
    g2 = MultiScaleFocalL2Loss(gamma=2, scale_weights=(1.0, 2.0))(preds, target, mask)
    assert float(g2) < float(g1)  # |1 - p_t| <= 1 here, so squaring shrinks every term
    # gamma = 0 is plain masked, channel-weighted L2
    g0 = MultiScaleFocalL2Loss(gamma=0, scale_weights=(1.0,))([[preds[0][0]]], target, mask)
    w = torch.ones(50)
    w[30:48] = 3
    w[48] = 0.1
    plain = ((preds[0][0] - target) ** 2 * mask * w[None, :, None, None]).sum()
    assert float(g0) == pytest.approx(float(plain), rel=1e-6)


def test_mask_resize_and_threshold():
    """Pooled mask 0.25 -> zeroed, 0.5 and 0.75 kept as fractional weights, 0 stays 0."""
    mask = torch.zeros(1, 1, 4, 4)
    mask[0, 0, 0, 0] = 1  # block (0,0): 1 of 4 -> 0.25
    mask[0, 0, 0:2, 2] = 1  # block (0,1): 2 of 4 -> 0.5
    mask[0, 0, 2:4, 0] = 1
    mask[0, 0, 2, 1] = 1  # block (1,0): 3 of 4 -> 0.75
    target = torch.zeros(1, 3, 4, 4)
    pred = torch.zeros(1, 3, 2, 2)
    pred[0, 0] = 1.0  # negatives everywhere: term = 1 * |1|^gamma * mask
    loss_fn = MultiScaleFocalL2Loss(
        scale_weights=(1.0,), keypoint_channels=(1, 2), person_mask_channel=2
    )
    assert float(loss_fn([[pred]], target, mask)) == pytest.approx(0.5 + 0.75)
    # on the full-resolution scale the mask is used as it is
    full = torch.zeros(1, 3, 4, 4)
    full[0, 0] = 1.0
    assert float(loss_fn([[full]], target, mask)) == pytest.approx(float(mask.sum()))


def _reference_loss(preds, target, mask_miss, batch_size, gamma=1.0):
    """Transcription of IBP MultiTaskLoss (loss_model.py), focal factor |1 - st| ** gamma."""
    nstack = len(preds)
    scale_weight, nstack_weight = list(SCALE_WEIGHTS), [1.0] * nstack
    losses = []
    for i in range(5):
        pred = torch.cat([preds[j][i][None, ...] for j in range(nstack)], dim=0)
        gt = F.adaptive_avg_pool2d(target, output_size=pred.shape[-2:])
        m = F.interpolate(mask_miss, size=pred.shape[-2:], mode="bilinear")
        m[m < 0.5] = 0
        s, sxing = pred, gt[None, ...]
        mask = m[None, ...].expand_as(sxing).clone()
        mask[:, :, -2, :, :] *= 0.1
        mask[:, :, 30:48, :, :] *= 3
        st = torch.where(torch.ge(sxing, 0.01), s, 1 - s)
        factor = torch.abs(1.0 - st) ** gamma
        out = (s - sxing) ** 2 * factor * mask
        loss_nstack = out.sum(dim=(1, 2, 3, 4))
        loss = sum(loss_nstack[k] * nstack_weight[k] for k in range(nstack)) / sum(nstack_weight)
        losses.append(loss * scale_weight[i])
    return sum(losses) / sum(scale_weight) / batch_size


@pytest.mark.parametrize("gamma", [1.0, 2.0])
def test_matches_reference_transcription(gamma):
    g = torch.Generator().manual_seed(0)
    b, size = 3, 32
    target = torch.rand(b, 50, size, size, generator=g) ** 4  # many values below 0.01
    mask = (torch.rand(b, 1, size, size, generator=g) > 0.3).float()
    preds = [
        [torch.rand(b, 50, size >> j, size >> j, generator=g) * 1.2 - 0.1 for j in range(5)]
        for _ in range(2)
    ]
    ours = MultiScaleFocalL2Loss(gamma=gamma, batch_normalizer=4)(preds, target, mask)
    ref = _reference_loss(preds, target, mask, batch_size=4, gamma=gamma)
    assert float(ours) == pytest.approx(float(ref), rel=1e-5)
    actual_batch = MultiScaleFocalL2Loss(gamma=gamma)(preds, target, mask)
    assert float(actual_batch) == pytest.approx(float(ref) * 4 / b, rel=1e-5)


def test_stack_weights():
    preds, target, mask = _hand_example()
    p2 = [[t * 0 for t in preds[0]], preds[0]]  # stack 0 predicts zeros, stack 1 the example
    loss_fn = MultiScaleFocalL2Loss(scale_weights=(1.0, 2.0), stack_weights=(1.0, 3.0))
    _, per_scale = loss_fn(p2, target, mask, return_per_scale=True)
    _, single = MultiScaleFocalL2Loss(scale_weights=(1.0, 2.0))(
        [[t * 0 for t in preds[0]]], target, mask, return_per_scale=True
    )
    l0, l1 = _hand_value(2.0)
    assert per_scale.tolist() == pytest.approx(
        [(single[0].item() + 3 * l0) / 4, (single[1].item() + 3 * l1) / 4], rel=1e-6
    )


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_low_precision_predictions_give_fp32_loss(dtype):
    g = torch.Generator().manual_seed(1)
    target = torch.rand(2, 50, 16, 16, generator=g)
    mask = torch.ones(2, 1, 16, 16)
    preds = [[torch.rand(2, 50, 16 >> j, 16 >> j, generator=g).to(dtype) for j in range(5)]]
    loss_fn = MultiScaleFocalL2Loss()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low = loss_fn(preds, target.to(dtype), mask)
    assert low.dtype == torch.float32
    exact = loss_fn([[p.float() for p in preds[0]]], target.to(dtype).float(), mask)
    assert float(low) == pytest.approx(float(exact), rel=1e-6)


def test_backward_through_tiny_imhn():
    from simplepose.models.imhn import build_imhn

    torch.manual_seed(0)
    model = build_imhn(
        num_stacks=2, inp_dim=32, increase=16, stem_channels=8, se_reduction=4, num_scales=3
    )
    preds = model(torch.rand(2, 3, 32, 32))  # batch 2: train-mode BN needs > 1 value at 1x1
    loss_fn = MultiScaleFocalL2Loss(scale_weights=SCALE_WEIGHTS[:3])
    loss = loss_fn(preds, torch.rand(2, 50, 8, 8), torch.ones(2, 1, 8, 8))
    loss.backward()
    grads = [p.grad for p in model.parameters()]
    assert all(gr is not None and torch.isfinite(gr).all() for gr in grads)


def test_bad_inputs_raise():
    preds, target, mask = _hand_example()
    with pytest.raises(InputError, match="2 scales"):
        MultiScaleFocalL2Loss(scale_weights=(1.0, 2.0))([[preds[0][0]]], target, mask)
    with pytest.raises(InputError, match="mask_miss"):
        MultiScaleFocalL2Loss(scale_weights=(1.0, 2.0))(preds, target, mask[:, 0])
    with pytest.raises(InputError, match="stack_weights"):
        MultiScaleFocalL2Loss(scale_weights=(1.0, 2.0), stack_weights=(1, 1))(preds, target, mask)
    with pytest.raises(InputError, match=r"must be \(1, 10, h, w\)"):
        MultiScaleFocalL2Loss(scale_weights=(1.0, 2.0))(preds, target[:, :10], mask)
    with pytest.raises(InputError, match="do not fit 10 channels"):
        MultiScaleFocalL2Loss(scale_weights=(1.0, 2.0))(
            [[p[:, :10] for p in preds[0]]], target[:, :10], mask
        )
    with pytest.raises(InputError, match="gamma"):
        MultiScaleFocalL2Loss(gamma=-1)
