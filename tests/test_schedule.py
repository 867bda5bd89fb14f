"""Learning-rate schedules against hand-computed values (SPEC 3.7, 5.5, 4.5)."""

from __future__ import annotations

import pytest

from simplepose.config import load_config
from simplepose.engine.schedule import lr_at, lr_from_config
from simplepose.errors import InputError

BASE = 1e-4  # 2.5e-5 x 4 GPUs
IPE = 100  # iterations per epoch


def sp(it, **kw):
    return lr_at(it, "simplepose_step", BASE, iters_per_epoch=IPE, **kw)


@pytest.mark.parametrize("it, expected", [
    (0, BASE * 1 / 300),  # warm-up: (1 + 0 + 0) / (3 * 100)
    (99, BASE * 100 / 300),
    (150, BASE * 151 / 300),  # epoch 1, step 50
    (299, BASE * 300 / 300),  # last warm-up iteration reaches the base
    (300, BASE),  # epoch 3
    (1499, BASE),  # epoch 14
    (1500, BASE * 0.2),  # epoch 15
    (2999, BASE * 0.2),  # epoch 29
    (3000, BASE * 0.04),  # epoch 30
    (7799, BASE * 0.2**5),  # epoch 77: 77 // 15 = 5
    (7800, BASE),  # epoch 78: exponent (78 - 78) // 5 = 0
    (8299, BASE),  # epoch 82
    (8300, BASE * 0.2),  # epoch 83: (83 - 78) // 5 = 1
    (9900, BASE * 0.2**4),  # epoch 99: 21 // 5 = 4
])
def test_simplepose_step(it, expected):
    assert sp(it) == pytest.approx(expected, rel=1e-12)


def test_simplepose_step_options():
    assert sp(0, warmup_epochs=0) == pytest.approx(BASE)
    assert sp(0, warmup_epochs=1) == pytest.approx(BASE / 100)
    assert sp(1000, step_epochs=5, step_gamma=0.5) == pytest.approx(BASE * 0.25)


@pytest.mark.parametrize("it, expected", [
    (0, 5e-4 * 0.1),  # warm-up starts at 0.1, decay factor 1
    (1200, 5e-4 * 0.55 * (1 - 1200 / 96000)),  # half-way: 0.1 + 0.9 * 0.5
    (2400, 5e-4 * (1 - 2400 / 96000)),  # warm-up done
    (48000, 5e-4 * 0.5),
    (96000, 0.0),
    (100000, 0.0),  # never negative
])
def test_warmup_linear(it, expected):
    got = lr_at(it, "warmup_linear", 5e-4, max_iters=96000, warmup_iters=2400, warmup_factor=0.1)
    assert got == pytest.approx(expected, rel=1e-12, abs=1e-18)


def test_multistep_and_constant():
    kw = {"iters_per_epoch": 10, "milestones": [6, 12, 18], "step_gamma": 0.5, "warmup_epochs": 0}
    assert lr_at(59, "multistep", 5e-4, **kw) == pytest.approx(5e-4)
    assert lr_at(60, "multistep", 5e-4, **kw) == pytest.approx(2.5e-4)
    assert lr_at(125, "multistep", 5e-4, **kw) == pytest.approx(1.25e-4)
    assert lr_at(500, "multistep", 5e-4, **kw) == pytest.approx(6.25e-5)
    assert lr_at(12345, "constant", 3e-3) == 3e-3


def test_bad_input():
    with pytest.raises(InputError):
        lr_at(0, "cosine", 1.0)
    with pytest.raises(InputError):
        lr_at(-1, "constant", 1.0)
    with pytest.raises(InputError):
        lr_at(0, "simplepose_step", 1.0, iters_per_epoch=0)


def test_from_config():
    cfg = load_config(None, ["optim.schedule=warmup_linear", "optim.warmup_iters=10",
                             "optim.warmup_factor=0.5"])
    assert lr_from_config(5, cfg.optim, 1.0, 1, 100) == pytest.approx(0.75 * 0.95)
