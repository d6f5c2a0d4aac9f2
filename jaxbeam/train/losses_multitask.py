r"""The multi-task supervised loss of UBERT, eqs. 29-30 (Sec. V-C).

Eq. 30 writes, for one task, with ``W^full = [Re W, Im W]`` (K x 2N, real):

.. math::
    \mathcal{L} = \frac{1}{K N}\Big(1 - \frac{1}{K}\mathrm{Tr}\big(W_{Uout}^{full} (W_{Ucvx}^{full})^T\big)\Big),
    \qquad \mathrm{Tr}\big(W_{Uout}^{full} (W_{Ucvx}^{full})^T\big)
        = \sum_k \Re(w_{cvx,k}^H w_{out,k}) = \Re\langle W_{out}, W_{cvx}\rangle_F .

**Reading of the normalisation.** Taken literally, the loss is *linear* in ``W_out``: it is not 0 at the
label unless ``||W_cvx||_F^2 = K``; it can go negative; and under the power adapter
(``||W_out||_F^2 <= P``) its minimiser is ``sqrt(P) W_cvx / ||W_cvx||_F``, which differs from the label
whenever the label does not use the full budget (typical of EE labels). The ``1/K`` is the energy
normaliser of a label with unit-norm beams (``||W_cvx||_F^2 = K``). We therefore replace ``K`` by the
mean energy of the two matrices:

.. math::
    \ell(W_{out}, W_{cvx}) = 1 - \frac{2\,\Re\langle W_{out}, W_{cvx}\rangle_F}{\|W_{out}\|_F^2 + \|W_{cvx}\|_F^2}
                           = \frac{\|W_{out} - W_{cvx}\|_F^2}{\|W_{out}\|_F^2 + \|W_{cvx}\|_F^2} \in [0, 2].

Why this form: (i) it equals eq. 30's bracket ``1 - Tr/K`` exactly when both matrices have energy K,
the case eq. 30's ``1/K`` is built for; (ii) by the right-hand identity it is 0 if and only if
``W_out = W_cvx`` and positive otherwise, so its minimiser is the label itself, for every task and
power level; (iii) it is scale-free (homogeneous of degree 0 in the pair) and bounded, so SR, MR and
EE labels of very different energies give losses and gradients of comparable size, which is the
stated purpose of eq. 30 ("avoid ... large discrepancies in gradient magnitudes"). The alternative
``||W_out - W_cvx||^2 / ||W_cvx||^2`` also vanishes only at the label but is unbounded and not
symmetric; the literal form's pull towards full power would bias EE.

The leading ``1/(K N)`` of eq. 30 is a constant for one system size; with Adam it only changes the
effective epsilon, and across a mixed-size batch it would down-weight large systems. It is off by
default; ``paper_scale=True`` applies it with the counts of present users and antennas.

Eq. 29 sums the three tasks' losses; :func:`multitask_loss` does that over a batch (mean per task, then
sum). With uniform task sampling (Algorithm 1, :mod:`jaxbeam.train.task_sampling`) the plain batch mean of
:func:`multitask_label_loss` equals eq. 29 divided by 3, which is what :func:`make_multitask_loss` hands
the training engine.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from jaxbeam.core import _checks
from jaxbeam.core.utility import TASKS, utility

NUM_TASKS = len(TASKS)


def _masked(W, mask, antenna_mask):
    if mask is not None:
        W = jnp.where(mask[..., :, None], W, 0)
    if antenna_mask is not None:
        W = jnp.where(antenna_mask[..., None, :], W, 0)
    return W


def multitask_label_loss(
    W_out: ArrayLike,
    W_label: ArrayLike,
    mask: ArrayLike | None = None,
    antenna_mask: ArrayLike | None = None,
    *,
    paper_scale: bool = False,
    eps: float = 1e-12,
) -> jax.Array:
    r"""Per-sample loss of eq. 30 in the reading of the module docstring.

    .. math:: \ell = \frac{\|W_{out} - W_{label}\|_F^2}{\|W_{out}\|_F^2 + \|W_{label}\|_F^2}
              = 1 - \frac{2 \Re\langle W_{out}, W_{label}\rangle_F}{\|W_{out}\|_F^2 + \|W_{label}\|_F^2}

    Args:
      W_out: complex ``(..., K, N)`` model beamformers (after the GPA).
      W_label: complex ``(..., K, N)`` label beamformers ``W_Ucvx`` of the sample's task.
      mask: optional bool ``(..., K)``, True for present users (absent rows are removed from both).
      antenna_mask: optional bool ``(..., N)``, True for present antennas (absent columns removed).
      paper_scale: multiply by eq. 30's ``1 / (K N)`` (present users and antennas).
      eps: floor of the denominator, so the loss and its gradient stay finite at ``W_out = W_label = 0``.

    Returns:
      float ``(...,)`` in ``[0, 2]`` (``[0, 2 / (K N)]`` with ``paper_scale``); 0 exactly when
      ``W_out == W_label`` on the present entries.
    """
    W_out = _checks.complex_kn("W_out", W_out)
    W_label = _checks.complex_kn("W_label", W_label)
    _checks.same_shape("W_out", W_out, "W_label", W_label)
    batch = jnp.broadcast_shapes(W_out.shape[:-2], W_label.shape[:-2])
    K, N = W_out.shape[-2:]
    mask = _checks.user_mask(mask, batch, K)
    antenna_mask = _checks.antenna_mask(antenna_mask, batch, N)
    a = _masked(W_out, mask, antenna_mask)
    b = _masked(W_label, mask, antenna_mask)
    c = jnp.maximum(_checks.row_scale(a), _checks.row_scale(b))  # the loss is scale-free: no overflow at x 1e30
    a, b = a / c.astype(a.dtype), b / c.astype(b.dtype)
    d = a - b
    num = jnp.sum(d.real**2 + d.imag**2, axis=(-2, -1))
    den = jnp.sum(a.real**2 + a.imag**2, axis=(-2, -1)) + jnp.sum(b.real**2 + b.imag**2, axis=(-2, -1))
    loss = num / jnp.maximum(den, eps)
    if paper_scale:
        k = jnp.sum(mask, axis=-1) if mask is not None else K
        n = jnp.sum(antenna_mask, axis=-1) if antenna_mask is not None else N
        loss = loss / jnp.maximum(jnp.asarray(k * n, loss.dtype), 1)
    return loss


def multitask_loss(
    W_out: ArrayLike,
    W_label: ArrayLike,
    task: ArrayLike,
    mask: ArrayLike | None = None,
    antenna_mask: ArrayLike | None = None,
    *,
    paper_scale: bool = False,
) -> jax.Array:
    r"""Eq. 29 over a batch: ``L_SR + L_MR + L_EE``, each the mean of eq. 30 over that task's samples.

    Args:
      W_out, W_label, mask, antenna_mask, paper_scale: as :func:`multitask_label_loss`, batch ``(B,)``.
      task: int ``(B,)`` (or broadcastable to it), each sample's task id (index into ``jb.TASKS``); a
        concrete id outside ``[0, 3)`` raises ``ValueError``, a traced one is clamped into ``[0, 3)``.

    Returns:
      float scalar; a task with no sample in the batch contributes 0.
    """
    per_sample = multitask_label_loss(W_out, W_label, mask, antenna_mask, paper_scale=paper_scale)
    task = _checks.clamp_task(_checks.task_ids("task", task, per_sample.shape))
    onehot = (task[..., None] == jnp.arange(NUM_TASKS)).astype(per_sample.dtype)  # (..., 3)
    axes = tuple(range(per_sample.ndim))
    sums = jnp.sum(onehot * per_sample[..., None], axis=axes)
    counts = jnp.sum(onehot, axis=axes)
    return jnp.sum(sums / jnp.maximum(counts, 1))


def make_multitask_loss(*, sigma2: float = 0.1, Pc: float = 0.5, paper_scale: bool = False, utility_scale="label"):
    """The engine-facing multi-task loss ``loss_fn(W, batch) -> (loss (B,), metrics)`` (eqs. 29-30).

    ``batch`` holds ``"H"`` (complex ``(B, K, N)``), ``"W_label"`` (each sample's label for its own
    task), ``"task"`` (int ``(B,)``; concrete ids outside ``[0, 3)`` raise ``ValueError``, traced ones are
    clamped into ``[0, 3)``), optional ``"mask"``, ``"antenna_mask"`` and ``"sigma2"`` (the noise rule of
    :mod:`jaxbeam.core._checks`: ``(B, 1)`` per sample or ``(B, K)`` per user). The loss
    is per sample (:func:`multitask_label_loss`); its batch mean is eq. 29 / 3 under uniform task
    sampling. An optional ``"task_weight"`` (float ``(B,)``, each sample's task weight, e.g. DWA's:
    :mod:`jaxbeam.train.task_weighting`) multiplies the per-sample loss; the ``loss_<task>`` metrics stay
    unweighted.

    ``metrics`` (per sample, ``(B,)``): ``"task_utility"`` and ``"label_utility"``, the utility of each
    sample's own task (SR, MR or EE: different units) for ``W`` and for the label; ``"loss_sr"``,
    ``"loss_mr"``, ``"loss_ee"`` (the loss where the sample has that task, else 0); and ``"utility"``,
    the validation criterion of :func:`jaxbeam.train.fit` (higher is better), made scale-free so that
    tasks in different units can be averaged:

    * ``utility_scale="label"`` (default): ``task_utility / label_utility`` per sample (1 = as good as
      the label solver on that sample);
    * a sequence of 3 positive floats ``c`` (one per task, ``jb.TASKS`` order): ``task_utility / c[task]``.
      With ``c[t]`` the mean label utility of task ``t`` on the validation set, the validation mean of
      ``"utility"`` over a set with equal per-task counts is the mean over tasks of eq. 31 / 100;
    * None: ``task_utility`` itself (only meaningful for a single task).
    """
    _checks.values("sigma2", sigma2, low=0.0, what="noise power in W")
    _checks.values("Pc", Pc, low=0.0, strict=False, what="circuit power in W")
    if utility_scale is None or (isinstance(utility_scale, str) and utility_scale == "label"):
        scale = utility_scale
    else:
        try:
            scale = tuple(float(c) for c in utility_scale)
        except TypeError:
            raise ValueError(
                f"utility_scale must be 'label', None or {NUM_TASKS} floats; got {utility_scale!r}"
            ) from None
        if len(scale) != NUM_TASKS or not all(0 < c < float("inf") for c in scale):
            raise ValueError(
                f"utility_scale must hold {NUM_TASKS} positive floats (one per task); got {utility_scale!r}"
            )

    def loss_fn(W: jax.Array, batch: dict) -> tuple[jax.Array, dict]:
        H, mask, amask = batch["H"], batch.get("mask"), batch.get("antenna_mask")
        task = _checks.clamp_task(_checks.task_ids("task", batch["task"], jnp.shape(H)[:-2]))
        s2 = batch.get("sigma2", sigma2)
        loss = multitask_label_loss(W, batch["W_label"], mask, amask, paper_scale=paper_scale)

        def own(Wx):
            us = jnp.stack([utility(name, H, Wx, s2, Pc, mask) for name in TASKS], axis=-1)
            return jnp.take_along_axis(us, task[..., None], axis=-1)[..., 0]

        u, u_label = own(W), own(batch["W_label"])
        if scale is None:
            score = u
        elif isinstance(scale, str):
            score = u / jnp.maximum(u_label, jnp.finfo(u.dtype).tiny)
        else:
            score = u / jnp.asarray(scale, u.dtype)[task]
        metrics = {"utility": score, "task_utility": u, "label_utility": u_label}
        for t, name in enumerate(TASKS):
            metrics[f"loss_{name}"] = jnp.where(task == t, loss, 0)
        if "task_weight" in batch:
            loss = loss * batch["task_weight"]
        return loss, metrics

    return loss_fn


def make_sum_loss(*, sigma2: float = 0.1, Pc: float = 0.5, utility_scale):
    """The Sum Loss of eq. 32 in the multi-task setting (Table VII): each sample's loss is minus the utility of
    its own task in that task's units (bit/s/Hz for SR and MR, bit/s/Hz/W for EE), so the batch mean sums the
    three tasks' negative utilities. Metrics (the validation criterion among them) as
    :func:`make_multitask_loss` with the same ``utility_scale`` (no ``"task_weight"``: DWA's ratios need
    positive losses)."""
    base = make_multitask_loss(sigma2=sigma2, Pc=Pc, utility_scale=utility_scale)

    def loss_fn(W: jax.Array, batch: dict) -> tuple[jax.Array, dict]:
        _, metrics = base(W, batch)
        return -metrics["task_utility"], metrics

    return loss_fn
