"""Per-iteration learning-rate schedules (pure functions of the iteration index).

``iteration`` is the 0-based index of the optimiser step about to be taken; ``epoch =
iteration // iters_per_epoch`` and ``step = iteration % iters_per_epoch``. The trainer sets
``lr_at(iteration, ...)`` on every parameter group before each step, so the LR is a pure
function of the position in training and resuming needs no scheduler state.

Schedules:

* ``simplepose_step`` (SPEC 3.7, IBP ``train_distributed.py adjust_learning_rate``)::

      exponent = epoch // 15                      (step_epochs)
      exponent = (epoch - 78) // 5  if epoch >= 78  (late_step_epoch, late_step_epochs)
      lr = base * 0.2 ** exponent                 (step_gamma)
      lr *= (1 + step + epoch * iters_per_epoch) / (3 * iters_per_epoch)  if epoch < 3
                                                  (warmup_epochs; 0 disables)

  ``base`` is already multiplied by the world size by the caller when configured
  (``2.5e-5 * world_size`` in the reference).
* ``warmup_linear`` (SPEC 5.5, MSPN / RSN): a linear warm-up multiplier from
  ``warmup_factor`` (0.1) to 1 over ``warmup_iters`` (2400) iterations, times a linear decay
  from 1 at iteration 0 to 0 at ``max_iters``::

      warm = warmup_factor + (1 - warmup_factor) * iteration / warmup_iters  (iteration < W)
      lr = base * warm * max(0, 1 - iteration / max_iters)

  The reference's solver file was not available when this was written; SPEC 5.5 only states
  "linear warm-up from 0.1 to 1 over 2400 iterations, then linear decay to 0 at MAX_ITER".
  The product form is continuous and meets both statements [UNVERIFIED against the
  reference's exact formula; the difference is < 2.5 % of the LR during warm-up at the
  reference settings]. The reference calls ``scheduler.step()`` before each iteration, i.e.
  its iteration i uses our ``lr_at(i + 1)``; pass ``iteration + 1`` for that convention.
* ``multistep`` (PyTorch CPN, SPEC 4.5): ``base * step_gamma ** (number of milestones <=
  epoch)``, with the same optional per-iteration warm-up as ``simplepose_step``.
* ``constant``: ``base``.
"""

from __future__ import annotations

import bisect
import logging
from collections.abc import Sequence

from simplepose.errors import InputError

__all__ = ["SCHEDULES", "lr_at", "multistep_lr", "simplepose_step_lr", "warmup_linear_lr"]

LOG = logging.getLogger(__name__)

SCHEDULES = ("simplepose_step", "warmup_linear", "multistep", "constant")


def _epoch_warmup(iteration: int, iters_per_epoch: int, warmup_epochs: int) -> float:
    """Reference SimplePose warm-up factor ``(1 + it) / (warmup_epochs * iters_per_epoch)``."""
    if warmup_epochs <= 0 or iteration >= warmup_epochs * iters_per_epoch:
        return 1.0
    return (1.0 + iteration) / (warmup_epochs * iters_per_epoch)


def simplepose_step_lr(
    iteration: int,
    base_lr: float,
    iters_per_epoch: int,
    *,
    step_epochs: int = 15,
    step_gamma: float = 0.2,
    late_step_epoch: int = 78,
    late_step_epochs: int = 5,
    warmup_epochs: int = 3,
) -> float:
    """SimplePose step schedule (module docstring). ``iters_per_epoch`` >= 1."""
    if iters_per_epoch < 1:
        raise InputError(f"iters_per_epoch must be >= 1, got {iters_per_epoch}")
    epoch = iteration // iters_per_epoch
    exponent = epoch // step_epochs
    if late_step_epoch is not None and late_step_epoch >= 0 and epoch >= late_step_epoch:
        exponent = (epoch - late_step_epoch) // late_step_epochs
    lr = base_lr * step_gamma**exponent
    return lr * _epoch_warmup(iteration, iters_per_epoch, warmup_epochs)


def warmup_linear_lr(
    iteration: int,
    base_lr: float,
    max_iters: int,
    *,
    warmup_iters: int = 2400,
    warmup_factor: float = 0.1,
) -> float:
    """MSPN / RSN warm-up + linear decay to 0 at ``max_iters`` (module docstring)."""
    if max_iters < 1:
        raise InputError(f"max_iters must be >= 1, got {max_iters}")
    warm = 1.0
    if warmup_iters > 0 and iteration < warmup_iters:
        alpha = iteration / warmup_iters
        warm = warmup_factor * (1.0 - alpha) + alpha
    decay = max(0.0, 1.0 - iteration / max_iters)
    return base_lr * warm * decay


def multistep_lr(
    iteration: int,
    base_lr: float,
    iters_per_epoch: int,
    milestones: Sequence[int],
    *,
    step_gamma: float = 0.5,
    warmup_epochs: int = 0,
) -> float:
    """``base * step_gamma ** #(milestones <= epoch)`` with an optional epoch warm-up."""
    if iters_per_epoch < 1:
        raise InputError(f"iters_per_epoch must be >= 1, got {iters_per_epoch}")
    epoch = iteration // iters_per_epoch
    n = bisect.bisect_right(sorted(milestones), epoch)
    return base_lr * step_gamma**n * _epoch_warmup(iteration, iters_per_epoch, warmup_epochs)


def lr_at(
    iteration: int,
    schedule: str,
    base_lr: float,
    *,
    iters_per_epoch: int = 1,
    max_iters: int = 1,
    step_epochs: int = 15,
    step_gamma: float = 0.2,
    late_step_epoch: int = 78,
    late_step_epochs: int = 5,
    warmup_epochs: int = 3,
    warmup_iters: int = 2400,
    warmup_factor: float = 0.1,
    milestones: Sequence[int] = (),
) -> float:
    """Learning rate of the 0-based optimiser step ``iteration`` under ``schedule``.

    Args:
        iteration: optimiser steps already taken (0 for the first step).
        schedule: one of :data:`SCHEDULES`.
        base_lr: the (world-size scaled) base learning rate.
        iters_per_epoch: optimiser steps per epoch (epoch-based schedules).
        max_iters: total optimiser steps (``warmup_linear``).
        others: see the individual schedule functions.
    """
    if iteration < 0:
        raise InputError(f"iteration must be >= 0, got {iteration}")
    if schedule == "simplepose_step":
        return simplepose_step_lr(
            iteration,
            base_lr,
            iters_per_epoch,
            step_epochs=step_epochs,
            step_gamma=step_gamma,
            late_step_epoch=late_step_epoch,
            late_step_epochs=late_step_epochs,
            warmup_epochs=warmup_epochs,
        )
    if schedule == "warmup_linear":
        return warmup_linear_lr(
            iteration, base_lr, max_iters, warmup_iters=warmup_iters, warmup_factor=warmup_factor
        )
    if schedule == "multistep":
        return multistep_lr(
            iteration,
            base_lr,
            iters_per_epoch,
            milestones,
            step_gamma=step_gamma,
            warmup_epochs=warmup_epochs,
        )
    if schedule == "constant":
        return base_lr
    raise InputError(f"unknown LR schedule {schedule!r}; known: {', '.join(SCHEDULES)}")


def lr_from_config(iteration: int, optim, base_lr: float, iters_per_epoch: int,
                   max_iters: int) -> float:
    """:func:`lr_at` with the schedule options of an :class:`~simplepose.config.OptimConfig`."""
    return lr_at(
        iteration,
        optim.schedule,
        base_lr,
        iters_per_epoch=iters_per_epoch,
        max_iters=max_iters,
        step_epochs=optim.step_epochs,
        step_gamma=optim.step_gamma,
        late_step_epoch=optim.late_step_epoch,
        late_step_epochs=optim.late_step_epochs,
        warmup_epochs=optim.warmup_epochs,
        warmup_iters=optim.warmup_iters,
        warmup_factor=optim.warmup_factor,
        milestones=optim.milestones,
    )
