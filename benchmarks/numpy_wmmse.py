"""A straightforward per-sample numpy WMMSE (what a user would otherwise write), for comparisons.

Standard N x N form of Shi et al. (2011): MMSE receivers, MSE weights, then the beams
``(sum_i v_i |u_i|^2 h_i h_i^H + mu I)^{-1} h_k u_k v_k`` with ``mu`` found by bisection on the
eigendecomposition of the N x N matrix. RZF start, stop when the relative sum-rate change is <= tol.
Independent of ``jaxbeam.solvers`` (plain numpy, float64).
"""

from __future__ import annotations

import numpy as np


def _sum_rate(H, W, sigma2):
    G2 = np.abs(H.conj() @ W.T) ** 2  # G2[k, i] = |h_k^H w_i|^2
    s = np.diag(G2)
    return float(np.sum(np.log2(1 + s / (G2.sum(1) - s + sigma2))))


def _rzf(H, P, sigma2):
    K, N = H.shape
    A = H.T @ H.conj() + (K * sigma2 / P) * np.eye(N)  # sum_i h_i h_i^H + a I (N x N)
    D = np.linalg.solve(A, H.T).T  # rows (a I + sum h h^H)^{-1} h_k
    D /= np.linalg.norm(D, axis=1, keepdims=True)
    return D * np.sqrt(P / K)


def wmmse_numpy(H, P, sigma2=0.1, tol=1e-4, max_iter=500, bisect_tol=1e-10):
    """One sample: ``H`` complex (K, N) -> (W (K, N), sum rate, iterations)."""
    H = np.asarray(H, np.complex128)
    K, N = H.shape
    W = _rzf(H, P, sigma2)
    U = _sum_rate(H, W, sigma2)
    it = 0
    while it < max_iter:
        it += 1
        G = H.conj() @ W.T
        total = np.sum(np.abs(G) ** 2, axis=1) + sigma2
        g = np.diag(G)
        u = g / total
        v = 1.0 / (1.0 - np.abs(g) ** 2 / total)
        A = (H.T * (v * np.abs(u) ** 2)) @ H.conj()
        B = H.T * (u * v)  # columns h_k u_k v_k
        lam, V = np.linalg.eigh(A)
        lam = np.maximum(lam, 0.0)
        Phi = np.abs(V.conj().T @ B) ** 2
        phi = Phi.sum(axis=1)

        def power(mu, lam=lam, phi=phi):
            return float(np.sum(phi / (lam + mu) ** 2))

        if lam.min() > 1e-12 and power(0.0) <= P:
            mu = 0.0
        else:
            lo, hi = 0.0, 1.0
            while power(hi) > P:
                hi *= 2
            while hi - lo > bisect_tol * max(hi, 1e-12):
                mid = 0.5 * (lo + hi)
                if power(mid) > P:
                    lo = mid
                else:
                    hi = mid
            mu = hi
        W = np.linalg.solve(A + mu * np.eye(N), B).T
        U_new = _sum_rate(H, W, sigma2)
        done = abs(U_new - U) <= tol * abs(U)
        U = U_new
        if done:
            break
    return W, U, it
