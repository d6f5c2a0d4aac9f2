r"""Small batched linear algebra written in plain XLA ops (no LAPACK custom calls).

The beamforming problems here only ever need K x K Hermitian positive-definite systems with K
of a few to a few tens. ``jnp.linalg.solve`` dispatches each to a LAPACK custom call on CPU, which in
jaxlib 0.10 is slow for large batches of tiny matrices and, with two such calls in one jitted
program, can deadlock XLA's CPU thread pool. Gauss-Jordan elimination as one ``fori_loop`` of K
vectorised rank-1 updates avoids both, runs the same on CPU, GPU and TPU, and differentiates
(forward and reverse) like any other loop.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax


def bmm(A: jax.Array, B: jax.Array) -> jax.Array:
    """Batched product of tiny matrices ``A @ B`` (``(..., K, M) x (..., M, L)``) as a broadcast-multiply-sum.

    For sizes of a few to a few tens this fuses with its neighbours and runs several times faster on CPU
    than XLA's batched ``dot`` (which loops over the batch calling a small GEMM).
    """
    return jnp.sum(A[..., :, :, None] * B[..., None, :, :], axis=-2)


def gains(A: jax.Array, B: jax.Array) -> jax.Array:
    """``G[..., k, i] = a_k^H b_i`` for the rows of ``A (..., K, N)`` and ``B (..., I, N)``: e.g. the
    effective gains ``h_k^H w_i`` of channels ``H`` and beams ``W``, or the Gram matrix ``gains(H, H)``.

    A broadcast-multiply-sum rather than ``einsum``, for the reason given in :func:`bmm` (about 3x
    faster on CPU for thousands of 8 x 16 channels).
    """
    return jnp.sum(jnp.conj(A)[..., :, None, :] * B[..., None, :, :], axis=-1)


def hpd_solve(A: jax.Array, B: jax.Array, *, return_min_pivot: bool = False):
    r"""Solve ``A X = B`` for Hermitian positive-definite ``A``, batched.

    Gauss-Jordan elimination without pivoting (stable for HPD matrices: every pivot is a
    Schur complement of ``A``, hence real and positive) on the equilibrated system ``S A S``,
    ``S = diag(A)^{-1/2}``: without it, float32 fails on channels whose users are tens of dB apart.

    Args:
      A: ``(..., K, K)`` Hermitian positive definite (real symmetric also works).
      B: ``(..., K, M)`` right-hand sides.

      return_min_pivot: also return ``min_j d_j / A_jj`` ``(...,)`` (real), the smallest pivot of the
        elimination relative to its diagonal entry: 1 for diagonal ``A``, about ``1 / cond(A)`` at worst,
        and at round-off level (``~eps``) for a numerically singular ``A``.

    Returns:
      ``(..., K, M)``, the dtype of ``A`` and ``B`` combined (and the relative pivot if requested).
    """
    if A.ndim < 2 or A.shape[-1] != A.shape[-2]:
        raise ValueError(f"A must be square (..., K, K); got shape {A.shape}")
    if B.ndim < 2 or B.shape[-2] != A.shape[-1]:
        raise ValueError(f"B must have shape (..., K={A.shape[-1]}, M); got shape {B.shape}")
    K = A.shape[-1]
    dtype = jnp.result_type(A.dtype, B.dtype)
    batch = jnp.broadcast_shapes(A.shape[:-2], B.shape[:-2])
    # Jacobi equilibration: A X = B as (S A S)(S^-1 X) = S B, S = diag(A)^{-1/2}: a unit diagonal whatever
    # the rows' scales (channels of users tens of dB apart); the relative pivots do not change
    d = jnp.real(jnp.diagonal(A, axis1=-2, axis2=-1))
    s = jnp.where(d > 0, lax.rsqrt(jnp.where(d > 0, d, 1.0)), 1.0).astype(dtype)
    M = jnp.concatenate(
        [
            jnp.broadcast_to(A * s[..., :, None] * s[..., None, :], batch + A.shape[-2:]).astype(dtype),
            jnp.broadcast_to(B * s[..., :, None], batch + B.shape[-2:]).astype(dtype),
        ],
        axis=-1,
    )
    s = jnp.broadcast_to(s, batch + (K,))[..., :, None]
    rows = jnp.arange(K)

    def eliminate(j, M):
        pivot_row = lax.dynamic_index_in_dim(M, j, axis=-2, keepdims=False)  # (..., K + m)
        pivot = lax.dynamic_index_in_dim(pivot_row, j, axis=-1, keepdims=True)  # (..., 1)
        pivot_row = pivot_row / pivot
        col = lax.dynamic_index_in_dim(M, j, axis=-1, keepdims=False)  # (..., K)
        col = jnp.where(rows == j, 0, col)  # the pivot row itself is replaced, not reduced
        M = M - col[..., :, None] * pivot_row[..., None, :]
        return jnp.where((rows == j)[:, None], pivot_row[..., None, :], M)

    if not return_min_pivot:
        M = lax.fori_loop(0, K, eliminate, M, unroll=K <= 16)
        return M[..., K:] * s
    diag = jnp.real(jnp.diagonal(M[..., :K], axis1=-2, axis2=-1))

    def eliminate_tracked(j, carry):
        M, rel = carry
        d = jnp.real(lax.dynamic_index_in_dim(lax.dynamic_index_in_dim(M, j, axis=-2, keepdims=False), j, -1, False))
        a = lax.dynamic_index_in_dim(diag, j, axis=-1, keepdims=False)
        rel = jnp.minimum(rel, jnp.where(a > 0, d / jnp.where(a > 0, a, 1.0), 0.0))
        return eliminate(j, M), rel

    M, rel = lax.fori_loop(0, K, eliminate_tracked, (M, jnp.ones(batch, diag.dtype)), unroll=K <= 16)
    return M[..., K:] * s, rel


def gauss_jordan_inverse_bm(A: jax.Array) -> jax.Array:
    r"""Inverse of HPD matrices stored batch-minor: ``A`` of shape ``(K, K, B)`` -> ``(K, K, B)``.

    In-place Gauss-Jordan without pivoting (stable for HPD matrices, as :func:`hpd_solve`; equilibrated the
    same way: in float32, WMMSE oscillated far below RZF on path-loss channels without it): step ``j``
    turns column ``j`` of the identity into column ``j`` of the inverse inside the same ``K x K`` array,
    so the whole inverse costs ``K^3`` multiply-adds (half of eliminating ``[A | I]``). Each of the K
    steps is vectorised over the minor batch axis. For solvers that keep their K x K work in this layout.
    """
    if A.ndim != 3 or A.shape[0] != A.shape[1]:
        raise ValueError(f"A must have shape (K, K, B); got shape {A.shape}")
    K = A.shape[0]
    idx = jnp.arange(K)[:, None]  # (K, 1): row index of (K, B) slices
    # Jacobi equilibration: A^{-1} = S (S A S)^{-1} S with S = diag(A)^{-1/2}, so that the eliminated matrix
    # has a unit diagonal (users tens of dB apart make the Gram matrix's diagonal span as much)
    d = jnp.real(jnp.sum(jnp.where((idx == jnp.arange(K)[None])[:, :, None], A, 0), axis=1))  # (K, B)
    s = jnp.where(d > 0, lax.rsqrt(jnp.where(d > 0, d, 1.0)), 1.0).astype(A.dtype)
    A = A * s[:, None, :] * s[None, :, :]

    def step(j, A):
        row = lax.dynamic_index_in_dim(A, j, axis=0, keepdims=False)  # (K, B), contiguous
        piv = 1 / lax.dynamic_index_in_dim(row, j, axis=0, keepdims=False)  # (B,)
        scaled = row * piv[None]  # row j / a_jj
        # a_ik -= a_ij a_jk / a_jj for i != j; column j becomes -a_ij / a_jj (k = j: factor 1 + 1/a_jj).
        update = jnp.where(idx == j, 1 + piv[None], scaled)
        col = jnp.where(idx == j, 0, lax.dynamic_index_in_dim(A, j, axis=1, keepdims=False))  # (K, B)
        A = A - col[:, None, :] * update[None]  # the pivot row itself is replaced below
        return jnp.where(idx[:, :, None] == j, jnp.where(idx == j, piv[None], scaled)[None], A)

    # A rolled loop on purpose: its result is materialised once. Unrolled, XLA CPU fuses the last
    # elimination steps into every consumer (e.g. a following matrix product), recomputing them per
    # use, which made a WMMSE iteration about 4x slower.
    return lax.fori_loop(0, K, step, A) * s[:, None, :] * s[None, :, :]
