"""Deep-unfolded WMMSE as a Flax module: :func:`jaxbeam.solvers.unfolded.unfolded_wmmse` with its ``3 T``
scalars as parameters (initialised to zero, i.e. to WMMSE-T itself), so the shared training engine trains it."""

from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp

from jaxbeam.solvers.unfolded import PARAMS, unfolded_wmmse


class UnfoldedWMMSE(nn.Module):
    """``T = iterations`` WMMSE iterations with learned per-iteration knobs (any K, N, mask).

    Attributes:
      iterations: T (>= 1).
      sigma2: the noise power [W] used when a call gives none (the one it trained at).
    """

    iterations: int
    sigma2: float = 0.01

    @nn.compact
    def __call__(self, H, P, mask=None, antenna_mask=None, sigma2=None):
        """Beams complex ``(B, K, N)`` for channels ``H`` ``(B, K, N)``, budget ``P`` [W] (scalar or ``(B,)``),
        optional bool ``mask`` ``(B, K)`` of present users and ``antenna_mask`` ``(B, N)`` of present antennas
        (absent antennas' columns are zeroed), and noise power ``sigma2`` [W] (default: ``self.sigma2``)."""
        if not isinstance(self.iterations, int) or self.iterations < 1:
            raise ValueError(f"iterations must be an int >= 1; got {self.iterations!r}")
        params = {n: self.param(n, nn.initializers.zeros, (self.iterations,), jnp.float32) for n in PARAMS}
        H = jnp.asarray(H)
        if antenna_mask is not None:
            H = H * jnp.asarray(antenna_mask, bool)[..., None, :]
        return unfolded_wmmse(H, P, self.sigma2 if sigma2 is None else sigma2, params, mask=mask)


__all__ = ["UnfoldedWMMSE"]
