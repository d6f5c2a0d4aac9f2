r"""Gradient refinement of any beamformers: Q projected gradient-ascent steps on a utility (paper 002, eq. 8).

.. math::
    W_q = \Pi_P\big(W_{q-1} + \eta \nabla_W U(H, W_{q-1})\big), \qquad q = 1, \dots, Q

with :math:`\nabla_W` the real gradient written as a complex array (:math:`\partial U / \partial \Re W +
j\, \partial U / \partial \Im W`, the steepest-ascent direction), :math:`\eta` fixed (``step_size``, 002's
rule), fixed relative to the gradient's size (``normalize=True``: the step is ``step_size sqrt(P) g /
||g||_F``, the same relative length at every SNR and (K, N), and smooth, so a model trains through it) or
found per sample and step by backtracking (the default), and :math:`\Pi_P` the projection onto
the power ball :math:`\|W\|_F^2 \le P` (``project="ball"``) or, as eq. 8 writes it, the scaling onto the
sphere :math:`\|W\|_F^2 = P` (``project="sphere"``; full power, which the sum rate wants anyway but
energy efficiency does not). Every step is feasible and differentiable, so a model can be trained
through the refinement (002, semi-amortised learning).

Why a backtracking default: the gradient's size varies with SNR and (K, N) by orders of magnitude (its
norm is ~30 per unit of ``||W||`` at 20 dB, K = N = 8), so a fixed step that suits one setting diverges
in another (002's 1e-2 lowers RZF's sum rate there from 30.8 to 15 bit/s/Hz). The default tries the
steps ``r 2^-c sqrt(P) g / ||g||_F``, c = 0..11, keeps the longest that does not lower the utility (none:
the sample stays), and starts the next step from twice the relative length ``r`` it accepted.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from jax import lax
from jax.typing import ArrayLike

from jaxbeam.core import _checks
from jaxbeam.core._jit import public
from jaxbeam.core.power import project_power
from jaxbeam.core.utility import TASKS
from jaxbeam.core.utility import utility as utility_fn
from jaxbeam.solvers._common import check_count

PROJECTIONS = ("ball", "sphere")
READINGS = ("sample", "batch_mean")
TRIALS = 12  # backtracking halvings per step: relative lengths r, r / 2, ..., r / 2^11
R0 = 0.5  # first relative step length ||eta g|| / sqrt(P)


def _sphere(W, P):
    """``sqrt(P) W / ||W||_F`` per sample; zero beams stay zero (no NaN, finite gradient)."""
    p = jnp.sum(jnp.abs(W) ** 2, axis=(-2, -1))
    safe = jnp.where(p > 0, p, 1.0)
    scale = jnp.where(p > 0, jnp.sqrt(jnp.where(P > 0, P, 0.0) / safe), 0.0)  # NaN or P <= 0: zeros
    return W * scale[..., None, None].astype(W.dtype)


@public(static=("utility", "steps", "project", "normalize", "step_reading"))
def refine(
    H: ArrayLike,
    W0: ArrayLike,
    P: ArrayLike,
    sigma2: ArrayLike = 0.1,
    utility: str = "sr",
    steps: int = 10,
    step_size: ArrayLike | None = None,
    mask: ArrayLike | None = None,
    *,
    Pc: ArrayLike = 0.5,
    project: str = "ball",
    normalize: bool = False,
    step_reading: str = "sample",
) -> jax.Array:
    r"""``steps`` projected gradient-ascent steps on ``utility`` from ``W0`` (paper 002, eq. 8).

    Args:
      H: complex ``(..., K, N)`` channels.
      W0: complex ``(..., K, N)`` starting beams (any: a model's output, RZF, zeros give zeros).
      P: power budget [W] (> 0), scalar or per sample ``(...,)``.
      sigma2: noise power [W], as :func:`jaxbeam.sinr` (scalar, per user ``(..., K)``, per sample ``(..., 1)``).
      utility: ``"sr"``, ``"mr"`` (the gradient of the weakest user's rate, a subgradient of the minimum)
        or ``"ee"``.
      steps: Q, the number of steps (int >= 0; 0 returns the projection of ``W0``).
      step_size: a fixed eta, scalar or per sample ``(...,)`` (002 trains with 1e-2 at P = 1); default
        None: backtracking per sample and step (see the module docstring), so the utility never decreases.
      mask: optional bool ``(..., K)``; absent users' beams are zero after every step and do not count.
      Pc: circuit power [W] of ``"ee"``.
      project: ``"ball"`` (default, ``||W||^2 <= P``) or ``"sphere"`` (``= P``, eq. 8 as written).
      normalize: with ``step_size``, step ``step_size sqrt(P) g / ||g||_F`` (a relative length; not in 002)
        instead of ``step_size g``; a zero gradient does not move.
      step_reading: how a fixed ``step_size`` is read, as paper 002 leaves it open: ``"sample"`` (default: eta on
        each sample's own gradient) or ``"batch_mean"`` (eta on the gradient of the batch-mean utility, the usual
        PyTorch idiom: each sample then moves ``eta / B``, B the number of samples in ``H``'s batch).

    Returns:
      complex ``(..., K, N)`` beams with ``||W||_F^2 <= P`` per sample. jit, vmap and grad-able (with
      respect to ``H``, ``W0`` and model parameters that produce them); ``steps`` is static.
    """
    H = _checks.complex_kn("H", H)
    W0 = _checks.complex_kn("W0", W0)
    _checks.same_shape("H", H, "W0", W0)
    _checks.name_in("utility", utility, TASKS)
    _checks.name_in("project", project, PROJECTIONS)
    steps = check_count(steps, "steps", 0)
    batch = H.shape[:-2]
    P = _checks.real_param("P", P, batch, low=0.0, what="power budget in W").astype(H.real.dtype)
    fixed = step_size is not None
    if normalize and not fixed:
        raise ValueError("normalize=True needs a step_size (the relative step length); got step_size=None")
    _checks.name_in("step_reading", step_reading, READINGS)
    if step_reading != "sample" and not fixed:
        raise ValueError(f"step_reading={step_reading!r} reads a fixed step: give a step_size")
    if fixed:
        eta = _checks.real_param("step_size", step_size, batch, low=0.0, what="step size").astype(P.dtype)
        eta = jnp.broadcast_to(eta, batch)
        if step_reading == "batch_mean":
            eta = eta / max(1, math.prod(batch))
    m = _checks.user_mask(mask, batch, H.shape[-2])
    keep = (lambda W: W) if m is None else (lambda W: W * m[..., None].astype(W.dtype))
    proj = (lambda W: project_power(W, P)) if project == "ball" else (lambda W: _sphere(W, P))
    U = lambda W: utility_fn(utility, H, W, sigma2, Pc, mask)
    total = lambda W: jnp.sum(U(W))  # samples are independent: the gradient of the sum is each one's own
    ascent = lambda W: jnp.conj(jax.grad(total)(W))  # JAX's gradient of a real f is conj(df/dRe + j df/dIm)
    expand = lambda x: x[..., None, None]

    def direction(g):  # g, or sqrt(P) g / ||g||_F
        if not normalize:
            return g
        g2 = jnp.sum(g.real**2 + g.imag**2, axis=(-2, -1))
        scale = jnp.sqrt(jnp.where(P > 0, P, 0.0)) * lax.rsqrt(jnp.where(g2 > 0, g2, 1.0))  # finite grad at g = 0
        return g * expand(scale).astype(g.dtype)

    def fixed_step(W, _):
        return proj(keep(W + expand(eta).astype(W.dtype) * direction(ascent(W)))), None

    def search_step(carry, _):
        W, r = carry
        g = ascent(W)
        gn = jnp.sqrt(jnp.sum(jnp.abs(g) ** 2, axis=(-2, -1)))
        unit = g / expand(jnp.where(gn > 0, gn, 1.0)).astype(g.dtype)  # zero gradient: no move
        lengths = r * 2.0 ** -jnp.arange(TRIALS, dtype=r.dtype).reshape((TRIALS,) + (1,) * r.ndim)
        length = lengths * jnp.sqrt(jnp.where(P > 0, P, 0.0))
        trials = jax.vmap(lambda a: proj(keep(W + expand(a).astype(W.dtype) * unit)))(length)
        ok = jax.vmap(U)(trials) >= U(W)  # (TRIALS, ...): no worse than staying
        first = jnp.argmax(ok, axis=0)  # the longest acceptable step
        found = jnp.any(ok, axis=0)
        chosen = jnp.take_along_axis(trials, first[None, ..., None, None], axis=0)[0]
        W = jnp.where(expand(found), chosen, W)
        accepted = jnp.take_along_axis(lengths, first[None], axis=0)[0]
        r = jnp.where(found, jnp.minimum(2.0 * accepted, 1.0), r * 2.0**-TRIALS)
        return (W, r), None

    W = proj(keep(W0))
    if fixed:
        W, _ = lax.scan(fixed_step, W, None, length=steps)
    else:
        (W, _), _ = lax.scan(search_step, (W, jnp.full(batch, R0, P.dtype)), None, length=steps)
    return W
