r"""Training losses of BERT4beam: eq. 17 (supervised pre-training) and eq. 18 (unsupervised fine-tuning).

Per-sample functions (``(..., K, N) -> (...,)``) plus :func:`make_loss`, which builds the
``loss_fn(W, batch) -> (loss (B,), metrics {name: (B,)})`` that the training engine
(:mod:`jaxbeam.train`) expects.

**The cosine term of eq. 17 for K x N matrices.** The paper writes
``|W_cvx^H W_out|^2 / (||W_cvx||^2 ||W_out||^2)``, which for a single user (K = 1, vectors) is the
squared cosine similarity of two complex vectors. For K x N matrices we evaluate it on the vectorised
matrices (the Frobenius / trace inner product):

.. math::
    c(W_{cvx}, W_{out}) = \frac{|\langle \mathrm{vec}\,W_{cvx}, \mathrm{vec}\,W_{out}\rangle|^2}
                               {\|W_{cvx}\|_F^2\, \|W_{out}\|_F^2}
                        = \frac{|\mathrm{tr}(W_{cvx}^H W_{out})|^2}{\|W_{cvx}\|_F^2\, \|W_{out}\|_F^2}
                        \in [0, 1].

Why this form: it reduces to the paper's expression at K = 1; by Cauchy-Schwarz it is 1 exactly when
``W_out = a W_cvx`` for some complex ``a != 0``, so the term ``1 - c`` is 0 at the label, is
invariant to a common phase (and to a common scale, which the GPA of eq. 15 and the utility term fix);
and it is a real scalar per sample, as a loss must be (the literal ``W_cvx^H W_out`` is an N x N
matrix). ``similarity="per_user"`` offers the alternative mean over present users of the per-beam
squared cosine ``|w_cvx,k^H w_out,k|^2 / (||w_cvx,k||^2 ||w_out,k||^2)``, which is also invariant to
a separate phase per beam (the utilities are: ``|h_k^H w_i e^{j theta_i}|^2 = |h_k^H w_i|^2``).

Absent users are removed (masked) from both matrices first. Squared magnitudes are written as
``re^2 + im^2`` and the denominator is floored at ``eps^2``, so gradients are finite, also at ``W = 0``.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from jaxbeam.core import _checks
from jaxbeam.core.precoders import rzf
from jaxbeam.core.utility import TASKS, utility

SIMILARITIES = ("matrix", "per_user")


def _abs2(z):
    return z.real**2 + z.imag**2


def cosine_similarity(
    W_label: ArrayLike, W: ArrayLike, mask: ArrayLike | None = None, *, similarity: str = "matrix"
) -> jax.Array:
    r"""Squared cosine similarity of label and output beamformers (the fraction in eq. 17).

    Args:
      W_label: complex ``(..., K, N)`` label beamformers ``W_cvx``.
      W: complex ``(..., K, N)`` model beamformers ``W_out``.
      mask: optional bool ``(..., K)``, True for present users.
      similarity: ``"matrix"`` (vectorised matrices, module docstring) or ``"per_user"``.

    Returns:
      float ``(...,)`` in ``[0, 1]``; 1 when ``W = a W_label`` (any complex ``a != 0``).
    """
    W_label = _checks.complex_kn("W_label", W_label)
    W = _checks.complex_kn("W", W)
    _checks.same_shape("W_label", W_label, "W", W)
    batch = jnp.broadcast_shapes(W_label.shape[:-2], W.shape[:-2])
    mask = _checks.user_mask(mask, batch, W.shape[-2])
    _checks.name_in("similarity", similarity, SIMILARITIES)
    if mask is not None:
        W_label = jnp.where(mask[..., None], W_label, 0)
        W = jnp.where(mask[..., None], W, 0)
    # c is invariant to the scale of each matrix: divide by the largest entry so norms cannot overflow
    W_label = W_label / _checks.row_scale(W_label).astype(W_label.dtype)
    W = W / _checks.row_scale(W).astype(W.dtype)
    # Floor of the denominators (not an additive constant): where it binds, the numerator and its
    # gradient vanish too, so the gradient is exactly 0; eps^2 keeps 1 / floor^2 finite in float32.
    floor = jnp.finfo(W.real.dtype).eps ** 2
    inner = jnp.sum(jnp.conj(W_label) * W, axis=-1)  # (..., K): w_cvx,k^H w_out,k
    nl = jnp.sum(_abs2(W_label), axis=-1)
    nw = jnp.sum(_abs2(W), axis=-1)
    if similarity == "matrix":
        return _abs2(jnp.sum(inner, axis=-1)) / jnp.maximum(jnp.sum(nl, axis=-1) * jnp.sum(nw, axis=-1), floor)
    per_user = _abs2(inner) / jnp.maximum(nl * nw, floor)
    if mask is None:
        return jnp.mean(per_user, axis=-1)
    count = jnp.maximum(jnp.sum(mask, axis=-1), 1)
    return jnp.sum(jnp.where(mask, per_user, 0.0), axis=-1) / count


def supervised_loss(
    name: str,
    H: ArrayLike,
    W: ArrayLike,
    W_label: ArrayLike,
    sigma2: ArrayLike = 0.1,
    Pc: ArrayLike = 0.5,
    mask: ArrayLike | None = None,
    *,
    lambda1: float = 1.0,
    lambda2: float = 0.1,
    similarity: str = "matrix",
) -> jax.Array:
    r"""Supervised pre-training loss, eq. 17, per sample.

    .. math:: \mathcal{L}_{pre} = \lambda_1 \left(1 - c(W_{cvx}, W_{out})\right) - \lambda_2\, U(W_{out})

    Args:
      name: the utility U, one of ``"sr"``, ``"mr"``, ``"ee"``.
      H: complex ``(..., K, N)`` channels.
      W: complex ``(..., K, N)`` model output ``W_out``.
      W_label: complex ``(..., K, N)`` label ``W_cvx``.
      sigma2: noise power [W]; Pc: circuit power [W] (EE only); mask: optional bool ``(..., K)``.
      lambda1, lambda2: weights of the cosine and the utility term.
      similarity: how the cosine term is evaluated (:func:`cosine_similarity`).

    Returns:
      float ``(...,)``.
    """
    c = cosine_similarity(W_label, W, mask, similarity=similarity)
    return lambda1 * (1.0 - c) - lambda2 * utility(name, H, W, sigma2, Pc, mask)


def unsupervised_loss(
    name: str,
    H: ArrayLike,
    W: ArrayLike,
    sigma2: ArrayLike = 0.1,
    Pc: ArrayLike = 0.5,
    mask: ArrayLike | None = None,
) -> jax.Array:
    r"""Unsupervised fine-tuning loss, eq. 18: ``L_fin = -U(W_out)``, per sample ``(...,)``."""
    return -utility(name, H, W, sigma2, Pc, mask)


LossFn = Callable[[jax.Array, dict], tuple[jax.Array, dict]]


def make_loss(
    name: str,
    *,
    supervised: bool,
    sigma2: float = 0.1,
    Pc: float = 0.5,
    lambda1: float = 1.0,
    lambda2: float = 0.1,
    similarity: str = "matrix",
) -> LossFn:
    """The engine-facing loss ``loss_fn(W, batch) -> (loss (B,), metrics)`` for one utility.

    ``batch`` is a dict with ``"H"`` (complex ``(B, K, N)``), optional ``"mask"`` (bool ``(B, K)``),
    ``"W_label"`` (complex ``(B, K, N)``, needed when ``supervised``) and optional ``"sigma2"``, which
    overrides the default and follows the noise rule of :mod:`jaxbeam.core._checks`: ``(B, 1)`` per sample or
    ``(B, K)`` per user (a per-sample ``(B,)`` is rejected unless ``B == K``, where it would mean per
    user). ``metrics`` holds per-sample ``"utility"`` and, with labels in the batch, ``"label_utility"``
    and ``"cosine"``.

    Args:
      name: ``"sr"``, ``"mr"`` or ``"ee"``.
      supervised: eq. 17 if True (the batch must carry ``"W_label"``), eq. 18 if False.
      sigma2, Pc, lambda1, lambda2, similarity: as :func:`supervised_loss`.
    """
    _checks.name_in("name", name, TASKS)
    _checks.name_in("similarity", similarity, SIMILARITIES)
    _checks.values("sigma2", sigma2, low=0.0, what="noise power in W")
    _checks.values("Pc", Pc, low=0.0, strict=False, what="circuit power in W")
    _checks.values("lambda1", lambda1, low=0.0, strict=False)
    _checks.values("lambda2", lambda2, low=0.0, strict=False)

    def loss_fn(W: jax.Array, batch: dict) -> tuple[jax.Array, dict]:
        H, mask = batch["H"], batch.get("mask")
        s2 = batch.get("sigma2", sigma2)
        u = utility(name, H, W, s2, Pc, mask)
        metrics = {"utility": u}
        W_label = batch.get("W_label")
        if W_label is not None:
            c = cosine_similarity(W_label, W, mask, similarity=similarity)
            metrics["cosine"] = c
            metrics["label_utility"] = utility(name, H, W_label, s2, Pc, mask)
        if supervised:
            if W_label is None:
                raise ValueError("a supervised loss (eq. 17) needs batch['W_label']")
            loss = lambda1 * (1.0 - c) - lambda2 * u
        else:
            loss = -u
        return loss, metrics

    return loss_fn


def make_trajectory_loss(sigma2: float) -> LossFn:
    r"""Paper 002's unsupervised loss (eqs. 7, 25): minus the sum rate summed over the layers of the window.

    The model returns its trajectory ``W`` of shape ``(B, L_w, K, N)`` (:class:`jaxbeam.models.SAO` with
    ``trajectory=True``); the batch holds ``"H"`` ``(B, K, N)`` (masked entries zero), optional ``"mask"``
    ``(B, K)`` and ``"sigma2"``. Loss ``-sum_t R_sum(H, W^(t))`` per sample; metric ``"utility"``: the sum
    rate after the last layer [bit/s/Hz].
    """
    _checks.values("sigma2", sigma2, low=0.0, what="noise power in W")

    def loss_fn(W: jax.Array, batch: dict) -> tuple[jax.Array, dict]:
        H, mask = batch["H"], batch.get("mask")
        s2 = batch.get("sigma2", sigma2)
        if W.ndim == H.ndim:  # a model that returns only its last beams
            W = W[:, None]
        s2 = jnp.asarray(s2)
        s2 = s2[:, None] if s2.ndim == 2 else s2  # per sample (B, 1) or per user (B, K): one more axis
        m = None if mask is None else mask[:, None]
        rates = utility("sr", H[:, None], W, s2, 0.5, m)  # (B, L_w)
        return -jnp.sum(rates, axis=-1), {"utility": rates[:, -1]}

    return loss_fn


def make_relative_rate_loss(sigma2: float) -> LossFn:
    r"""Label-free sum-rate loss with every sample on one scale: ``-R_sum(H, W) / R_sum(H, W_RZF)`` per sample,
    RZF (eq. 5) at the same budget as the reference (a constant: no gradient flows through it). A batch that
    mixes system sizes then weighs each alike (a large system's rate is several times a small one's).

    The batch holds ``"H"`` ``(B, K, N)`` (masked entries zero), ``"P"`` ``(B,)``, optional ``"mask"`` ``(B, K)``
    and ``"sigma2"``. Metrics: ``"utility"`` (the sum rate [bit/s/Hz]) and ``"vs_rzf"`` (the ratio).
    """
    _checks.values("sigma2", sigma2, low=0.0, what="noise power in W")

    def loss_fn(W: jax.Array, batch: dict) -> tuple[jax.Array, dict]:
        H, mask, P = batch["H"], batch.get("mask"), batch["P"]
        s2 = jnp.asarray(batch.get("sigma2", sigma2))
        rate = utility("sr", H, W, s2, 0.5, mask)
        ref = jax.lax.stop_gradient(utility("sr", H, rzf(H, P, s2, mask=mask), s2, 0.5, mask))
        ratio = rate / jnp.maximum(ref, jnp.finfo(rate.dtype).tiny)
        return -ratio, {"utility": rate, "vs_rzf": ratio}

    return loss_fn
