r"""Dynamic Weight Average (DWA) of the task losses (Liu, Johns, Davison, CVPR 2019, eq. 7), the task
weighting of paper 003 (Sec. IV-D, its ref. [33]), as an option of UBERT's multi-task training.

.. math::
    \lambda_k(t) = \frac{K \exp(r_k(t-1) / T)}{\sum_i \exp(r_i(t-1) / T)}, \qquad
    r_k(t-1) = \frac{L_k(t-1)}{L_k(t-2)},

with ``L_k(t)`` task k's mean training loss over epoch ``t``, ``K`` tasks and temperature ``T`` (2 in Liu et
al.); ``lambda_k = 1`` for the first two epochs. A task whose loss falls more slowly than the others' gets
more weight. The weights sum to K, so the weighted eq. 29 keeps its scale.

How it reaches the loss: :func:`jaxbeam.train.fit` (``task_weighting=``) asks :meth:`DynamicWeightAverage.weights`
for the epoch's weights from the run's history, adds each sample's weight to every batch as ``"task_weight"``
(:meth:`DynamicWeightAverage.attach`), which :func:`jaxbeam.train.losses_multitask.make_multitask_loss`
multiplies into the per-sample loss, and records the epoch means of the unweighted per-task losses
(``train_loss_sr``, ...) and the weights used (``task_weights``) in the history, which is checkpointed: a
resumed run uses the same weights.

The per-task loss is the loss metric ``loss_<task>`` averaged over the epoch: each sample's loss where it
has that task, else 0, so with Algorithm 1's uniform sampling it is a third of the task's mean loss, a
constant factor that cancels in ``r_k``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from jaxbeam.core.utility import TASKS


class DynamicWeightAverage:
    """DWA task weights (module docstring) for the tasks of :data:`jaxbeam.TASKS`.

    Args:
      temperature: ``T > 0``; larger is closer to equal weights (Liu et al.: 2).
    """

    def __init__(self, temperature: float = 2.0):
        if isinstance(temperature, bool) or not isinstance(temperature, int | float) or not 0 < temperature < math.inf:
            raise ValueError(f"temperature must be a finite number > 0; got {temperature!r}")
        self.temperature = float(temperature)
        self.keys = tuple(f"loss_{t}" for t in TASKS)  # the per-task loss metrics of make_multitask_loss

    def __repr__(self) -> str:
        return f"DynamicWeightAverage(temperature={self.temperature})"

    def weights(self, history: Sequence[dict]) -> np.ndarray:
        """``lambda(t)`` (float32 ``(3,)``, sums to 3) for the epoch after the records of ``history``: ones
        until two epochs hold ``train_loss_<task>``; a task whose loss was 0 (none of its samples) counts
        ``r_k = 1``."""
        past = [r for r in history if all(f"train_{k}" in r for k in self.keys)]
        if len(past) < 2:
            return np.ones(len(TASKS), np.float32)
        last = np.array([past[-1][f"train_{k}"] for k in self.keys], np.float64)
        before = np.array([past[-2][f"train_{k}"] for k in self.keys], np.float64)
        if np.any(last < 0) or np.any(before < 0):
            raise ValueError(f"DWA needs non-negative task losses; got {last.tolist()} after {before.tolist()}")
        ratio = np.where(before > 0, last / np.where(before > 0, before, 1.0), 1.0)
        z = ratio / self.temperature
        e = np.exp(z - z.max())
        return (len(TASKS) * e / e.sum()).astype(np.float32)

    @staticmethod
    def attach(batch: dict, weights: np.ndarray) -> dict:
        """``batch`` with ``"task_weight"`` = ``weights[batch["task"]]`` (float32, one per sample)."""
        if "task" not in batch:
            raise ValueError(
                "task_weighting needs multi-task batches with a 'task' entry (UBERT's sources); "
                f"the batch holds {sorted(batch)}"
            )
        return {**batch, "task_weight": np.asarray(weights, np.float32)[np.asarray(batch["task"])]}
