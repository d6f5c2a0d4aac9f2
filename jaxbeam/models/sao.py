r"""Semi-amortised Transformer optimiser of paper 002 (Zhang, Liu, Wang): MT-SAO and MT-SAO-lift.

**Framework** (002 Sec. III-A, Fig. 1). From the LMMSE start ``W^(0)`` (eq. 5: :func:`jaxbeam.rzf` with the
true noise power) and ``H^(0) = H o M_s`` (eq. 12), each of T layers maps ``(H^(t-1), W^(t-1))`` to residual
updates (eq. 9) and then takes Q projected gradient-ascent steps on the sum rate of the *true* masked channel
(eq. 8, :func:`jaxbeam.refine`):

.. math::
    H^{(t)} = H^{(t-1)} + \Delta H^{(t)}, \qquad
    W^{(t)} = \mathcal{G}_Q\big(\Pi(W^{(t-1)} + \Delta W_0^{(t)})\big) \qquad \text{(eq. 10, SAO-lift)}

with ``Pi`` the scaling onto ``||W||_F^2 = P`` that closes Sec. III-B. MT-SAO (Remark 1, eq. 11; ``lift=False``)
keeps ``H^(t) = H``.

**Masked Transformer of one layer** (002 Sec. III-B, Fig. 2). As written: user-level tokens ``S`` (the
``K_m`` rows of ``H`` and of ``W`` as ``[Re; Im]`` vectors of width ``2 N_m``) and antenna-level tokens ``T``
(the ``N_m`` columns, width ``2 K_m``), eq. 13; an FC embedding to ``M`` features and token-wise LayerNorm
each, no positional encoding; multi-head self-attention on each sequence with the attention masks of eqs.
16-18 (a masked user's two tokens, resp. a masked antenna's, are attended by no one), eq. 19; an MLP on the
concatenated heads with a residual, eqs. 20-21; LayerNorm and output MLPs, eqs. 22-23; the sample mask
applied to the outputs, eq. 24.

*Where jaxbeam departs from the text, and why.* Eq. 20 concatenates user-level token ``i`` with antenna-level
token ``i`` and eq. 24 reads the fused token ``i`` as a column of the output; that needs ``K_m = N_m`` and
pairs user ``i`` with antenna ``i``, so a masked user would change the output of the antenna with the same
index, and a padded batch could not equal the unpadded one. Here the two sequences are fused per *entry*:
the update of entry ``(k, n)`` is an MLP of user ``k``'s two tokens and antenna ``n``'s two tokens
(``MLP(a_k + b_n)`` with ``a = Dense(user tokens)``, ``b = Dense(antenna tokens)``), so any ``K_m, N_m``
work and masked users and antennas are inert. The beam tokens are divided by the per-entry scale
``sqrt(P / (K N))`` (and the update multiplied by it), and each output MLP's last layer starts at zero, so an
untrained layer is the identity and the untrained model is LMMSE followed by the gradient steps.

*Optional gradient input* (``gradient_input=True``; not in 002). The layer also receives ``G``, the ascent
direction of the sum rate at ``W^(t-1)`` (normalised per sample to RMS 1), as a third
token of every user and antenna, and the readout of entry ``(k, n)`` also sees ``H_kn``, ``W_kn`` and
``G_kn``. As written, the layer cannot compute that gradient from ``(H, W)`` and learns nothing beyond
LMMSE (README, "Why the layers do not learn"); with it, one layer learns a gradient-like step.

*Optional learned step length* (``learned_step=True``, with ``normalize_step``; not in 002). Each layer also
outputs a per-sample factor ``exp(a_t)``, ``|a_t| <= 4``, of the relative step length of its Q steps, from its
pooled user and antenna features and four scalars: ``log(||g||_F sqrt(P))``, ``log(||g_T||_F / ||g||_F)``
(``g_T`` the part of the gradient tangent to the power sphere, which vanishes at a stationary point) and
the active fractions ``K / K_m``, ``N / N_m``. The factor's head starts at zero, so the untrained model takes
the fixed normalised step. A fixed relative length cannot settle where the start is already optimal (K << N,
where RZF is); a learned one can shrink there and grow where the start is far off (K > N).

*Optional monotone layers* (``monotone=True``; not in 002): a layer's output replaces its input only where
it has the higher sum rate (per sample; the gradient flows through the kept branch, as through a max), so
the model is never below its LMMSE start.

**Sliding window** (002 Sec. III-C1). ``first_trained`` and ``active_layers`` select the window
``[t_s, t_e)`` of Algorithm 1: layers before it run under ``stop_gradient`` (their parameters are also frozen
by the trainer), layers after it are not applied; with ``trajectory=True`` the call returns every
``W^(t)`` of the window (the summed loss of eq. 25). Parameters always exist for all T layers.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxbeam.core import _checks
from jaxbeam.core.precoders import rzf
from jaxbeam.core.utility import sum_rate
from jaxbeam.models.encoder import attention_mask
from jaxbeam.solvers.refine import refine

LOG_STEP_RANGE = 4.0  # learned step factors lie in [e^-4, e^4]


def _ri(X: jax.Array) -> jax.Array:
    """``[Re; Im]`` of every token (last axis), eq. 13."""
    return jnp.concatenate([X.real, X.imag], axis=-1)


def _sphere(W, P):
    """``sqrt(P) W / ||W||_F`` per sample (Sec. III-B's normalisation); zero beams stay zero."""
    p = jnp.sum(W.real**2 + W.imag**2, axis=(-2, -1))
    scale = jnp.where(p > 0, jnp.sqrt(P / jnp.where(p > 0, p, 1.0)), 0.0)
    return W * scale[..., None, None].astype(W.dtype)


class MaskedTransformerLayer(nn.Module):
    """The optimiser network ``F_theta_t`` of one layer (002 eqs. 13-24; module docstring for the readout).

    Attributes:
      features: embedding width M (002 Table 1: 128).
      num_heads: attention heads E per sequence.
      head_features: D_e, the width of each head (002 Table 1: 64 with 12 heads); 0 = ``features // num_heads``.
      mlp_features: hidden width of the attention MLP (eq. 20) and of the output MLPs (eq. 22).
      lift: also output ``Delta H`` (SAO-lift); False gives ``Delta H = 0`` without its parameters (SAO).
      step_head: also output the log step factor ``a_t`` ``(B,)`` (SAO's ``learned_step``) from the pooled
        features and ``stats``.

    Call: ``layer(H, W, user_mask, antenna_mask, scale, G=None, stats=None) -> (Delta H, Delta W)`` for complex
    ``(B, K_m, N_m)`` ``H``, ``W`` (masked entries zero), bool ``(B, K_m)``, ``(B, N_m)`` masks, the per-sample
    beam scale ``(B,)``, optionally the normalised gradient ``G`` (same shape as ``W``; module docstring) and,
    with ``step_head``, per-sample scalars ``stats`` ``(B, f)``; both outputs are zero at masked users and
    antennas. With ``step_head`` it returns ``(Delta H, Delta W, a_t)``.
    """

    features: int = 128
    num_heads: int = 4
    mlp_features: int = 128
    lift: bool = True
    dtype: Any = None
    head_features: int = 0
    step_head: bool = False

    def _sequence(self, tokens, token_mask, name):
        """Embedding (FC + TN), masked MHSA (eqs. 14-19) and attention MLP with residual (eqs. 20-21)."""
        x = nn.LayerNorm(dtype=self.dtype, name=f"{name}_tn")(
            nn.Dense(self.features, dtype=self.dtype, name=f"{name}_fc")(tokens)
        )
        y = nn.MultiHeadDotProductAttention(
            num_heads=self.num_heads,
            qkv_features=self.num_heads * (self.head_features or self.features // self.num_heads),
            out_features=self.features,
            dtype=self.dtype,
            name=f"{name}_mhsa",
        )(x, x, mask=attention_mask(token_mask))
        y = nn.Dense(self.features, dtype=self.dtype, name=f"{name}_sa_out")(
            nn.gelu(nn.Dense(self.mlp_features, dtype=self.dtype, name=f"{name}_sa_hidden")(y))
        )
        return nn.LayerNorm(dtype=self.dtype, name=f"{name}_out_tn")(x + y)

    def _readout(self, u, a, e, name):
        """Entry-wise output MLP: user ``(B, K_m, c M)`` and antenna ``(B, N_m, c M)`` features and optional
        entry features ``e`` ``(B, K_m, N_m, f)`` -> ``(B, K_m, N_m)``."""
        hu = nn.Dense(self.mlp_features, dtype=self.dtype, name=f"{name}_user")(u)
        ha = nn.Dense(self.mlp_features, use_bias=False, dtype=self.dtype, name=f"{name}_antenna")(a)
        h = hu[:, :, None, :] + ha[:, None, :, :]
        if e is not None:
            h = h + nn.Dense(self.mlp_features, use_bias=False, dtype=self.dtype, name=f"{name}_entry")(e)
        h = nn.gelu(h)
        out = nn.Dense(2, dtype=jnp.float32, kernel_init=nn.initializers.zeros, name=f"{name}_out")(h)
        return jax.lax.complex(out[..., 0], out[..., 1])

    def _step_factor(self, u, a, user_mask, antenna_mask, stats):
        """``a_t`` ``(B,)`` in ``[-LOG_STEP_RANGE, LOG_STEP_RANGE]`` from masked means of the user and antenna
        features and ``stats``; its output Dense starts at zero (factor 1)."""
        mean = lambda x, m: jnp.sum(x * m[..., None], 1) / jnp.maximum(jnp.sum(m, -1, keepdims=True), 1.0)
        pooled = jnp.concatenate([mean(u, user_mask), mean(a, antenna_mask), stats], axis=-1)
        h = nn.gelu(nn.Dense(self.mlp_features, dtype=self.dtype, name="step_hidden")(pooled))
        raw = nn.Dense(1, dtype=jnp.float32, kernel_init=nn.initializers.zeros, name="step_out")(h)[..., 0]
        return LOG_STEP_RANGE * jnp.tanh(raw.astype(jnp.float32) / LOG_STEP_RANGE)

    @nn.compact
    def __call__(self, H, W, user_mask, antenna_mask, scale, G=None, stats=None):
        Km, Nm = H.shape[-2:]
        Wn = W / scale[:, None, None].astype(W.dtype)
        mats = [H, Wn] if G is None else [H, Wn, G]  # each gives one token per user and one per antenna
        c = len(mats)
        S = jnp.concatenate([_ri(X) for X in mats], axis=1)  # (B, c K_m, 2 N_m): user-level tokens, eq. 13
        T = jnp.concatenate([_ri(jnp.swapaxes(X, -1, -2)) for X in mats], axis=1)  # (B, c N_m, 2 K_m)
        s = self._sequence(S, jnp.concatenate([user_mask] * c, -1), "user")  # eqs. 16-17
        t = self._sequence(T, jnp.concatenate([antenna_mask] * c, -1), "antenna")  # eq. 18
        u = jnp.concatenate([s[:, i * Km : (i + 1) * Km] for i in range(c)], axis=-1).astype(jnp.float32)
        a = jnp.concatenate([t[:, i * Nm : (i + 1) * Nm] for i in range(c)], axis=-1).astype(jnp.float32)
        e = None if G is None else jnp.concatenate([jnp.stack([X.real, X.imag], -1) for X in mats], -1)
        entry = (user_mask[:, :, None] & antenna_mask[:, None, :]).astype(H.dtype)  # M_s, eq. 12
        dW = self._readout(u, a, e, "w").astype(W.dtype) * scale[:, None, None].astype(W.dtype) * entry
        dH = self._readout(u, a, e, "h").astype(H.dtype) * entry if self.lift else jnp.zeros_like(H)
        if not self.step_head:
            return dH, dW
        if stats is None:
            raise ValueError("step_head=True needs stats, the per-sample step features (B, f)")
        um, am = user_mask.astype(jnp.float32), antenna_mask.astype(jnp.float32)
        return dH, dW, self._step_factor(u, a, um, am, stats.astype(jnp.float32))


class SAO(nn.Module):
    """MT-SAO-lift (``lift=True``) or MT-SAO (``lift=False``) of paper 002 for any ``(K, N) <= (K_m, N_m)``.

    Attributes:
      max_users, max_antennas: K_m, N_m (002: 40, 40).
      num_layers: T (002: 10).
      steps: Q, gradient steps after each layer (002: Q_t = 5 in training, Q_i = 10 at inference; set the
        attribute per use with ``model.clone(steps=...)``).
      step_size: eta_w of eq. 8 (002: 1e-2); None = :func:`jaxbeam.refine`'s backtracking search.
      normalize_step: the steps are ``step_size sqrt(P) g / ||g||_F`` (:func:`jaxbeam.refine`'s ``normalize``;
        not in 002): one relative length at every SNR and (K, N), smooth to train through.
      sigma2: noise power [W] of the LMMSE start and of the gradient steps (002: 20 dB, 0.01 at P = 1).
      features, num_heads, head_features, mlp_features: of every :class:`MaskedTransformerLayer`.
      lift: SAO-lift (eq. 10) or SAO (eq. 11).
      gradient_input: feed each layer the sum-rate gradient at its input beams (module docstring; not in 002).
      learned_step: each layer scales its normalised step length per sample (module docstring; needs
        ``normalize_step`` and a ``step_size``; not in 002).
      monotone: keep a layer's input beams where its output has the lower sum rate (not in 002).
      first_trained, active_layers: the sliding window ``[first_trained, active_layers)`` (module docstring);
        defaults: all layers.
      trajectory: return ``(B, L_w, K, N)``, the beams after each layer of the window, instead of the last.

    Call: ``model.apply(variables, H, P, mask=None, antenna_mask=None) -> W``.

    Args:
      H: complex ``(B, K, N)`` channels, ``K <= K_m``, ``N <= N_m`` (padded inside to ``(K_m, N_m)``).
      P: power budget [W], scalar or per sample ``(B,)``.
      mask: optional bool ``(B, K)``, True for active users (002's ``R_u`` is its complement).
      antenna_mask: optional bool ``(B, N)``, True for active antennas (``R_a``'s complement).

    Returns:
      complex ``(B, K, N)`` beams with ``||W||_F^2 = P`` (zero at inactive users and antennas), or the
      window's trajectory ``(B, L_w, K, N)``.
    """

    max_users: int
    max_antennas: int
    num_layers: int = 10
    steps: int = 5
    step_size: float | None = 1e-2
    normalize_step: bool = False
    sigma2: float = 0.01
    features: int = 128
    num_heads: int = 4
    mlp_features: int = 128
    lift: bool = True
    gradient_input: bool = False
    learned_step: bool = False
    monotone: bool = False
    first_trained: int = 0
    active_layers: int | None = None
    trajectory: bool = False
    dtype: Any = None
    head_features: int = 0

    def _layer(self, t: int) -> MaskedTransformerLayer:
        return MaskedTransformerLayer(
            self.features,
            self.num_heads,
            self.mlp_features,
            self.lift,
            self.dtype,
            self.head_features,
            self.learned_step,
            name=f"layer_{t}",
        )

    def _ascent(self, H, W, user_mask, entry):
        """Ascent direction of the sum rate at ``W`` (eq. 8's gradient), zero at masked entries, under
        ``stop_gradient`` (a layer input)."""
        g = jax.grad(lambda w: jnp.sum(sum_rate(H, w, self.sigma2, mask=user_mask)))(W)
        # JAX's gradient of a real function of complex w is the conjugate direction
        return jax.lax.stop_gradient(jnp.conj(g) * entry)

    @staticmethod
    def _gradient(g, entry):
        """The ascent direction ``g`` (:meth:`_ascent`) normalised per sample to RMS 1 over the active entries
        (``gradient_input``)."""
        n_act = jnp.maximum(jnp.sum(entry.real, axis=(-2, -1)), 1.0)
        rms = jnp.sqrt(jnp.sum(g.real**2 + g.imag**2, axis=(-2, -1)) / n_act)
        return g / jnp.where(rms > 0, rms, 1.0)[:, None, None].astype(g.dtype)

    @staticmethod
    def _step_stats(g, W, P, user_mask, antenna_mask):
        """``(B, 4)``: ``log(||g|| sqrt(P))``, ``log(||g_T|| / ||g||)``, ``K / K_m``, ``N / N_m`` (module docstring)
        for the ascent direction ``g`` (:meth:`_ascent`) at ``W``."""
        sq = lambda X: jnp.sum(X.real**2 + X.imag**2, axis=(-2, -1))
        w2 = sq(W)
        radial = jnp.sum((jnp.conj(W) * g).real, axis=(-2, -1)) / jnp.where(w2 > 0, w2, 1.0)
        gt = g - radial[:, None, None].astype(g.dtype) * W  # tangent to ||W||_F^2 = P
        g2, t2 = sq(g), sq(gt)
        tiny = jnp.finfo(jnp.float32).tiny
        stats = [
            0.5 * jnp.log(g2 * P + tiny),
            0.5 * (jnp.log(t2 + tiny) - jnp.log(g2 + tiny)),
            jnp.mean(user_mask, -1, dtype=jnp.float32),
            jnp.mean(antenna_mask, -1, dtype=jnp.float32),
        ]
        return jax.lax.stop_gradient(jnp.stack([x.astype(jnp.float32) for x in stats], -1))

    def _window(self):
        t_e = self.num_layers if self.active_layers is None else self.active_layers
        if not 0 <= self.first_trained < t_e <= self.num_layers:
            raise ValueError(
                f"the window must satisfy 0 <= first_trained < active_layers <= num_layers = {self.num_layers}; "
                f"got first_trained={self.first_trained}, active_layers={self.active_layers}"
            )
        return self.first_trained, t_e

    @nn.compact
    def __call__(self, H, P, mask=None, antenna_mask=None):
        H = _checks.complex_kn("H", H)
        if H.ndim != 3:
            raise ValueError(f"H must have shape (B, K, N); got shape {H.shape}")
        B, K, N = H.shape
        Km, Nm = self.max_users, self.max_antennas
        if K > Km or N > Nm:
            raise ValueError(f"H must have K <= max_users = {Km} and N <= max_antennas = {Nm}; got shape {H.shape}")
        if not isinstance(self.steps, int) or self.steps < 0:
            raise ValueError(f"steps (Q) must be an int >= 0; got {self.steps!r}")
        if self.learned_step and not (self.normalize_step and self.step_size):
            raise ValueError(
                "learned_step=True needs normalize_step=True and a step_size > 0 (the factor scales that relative "
                f"length); got normalize_step={self.normalize_step}, step_size={self.step_size}"
            )
        t_s, t_e = self._window()
        P = jnp.broadcast_to(_checks.real_param("P", P, (B,), low=0.0, what="power budget in W"), (B,))
        P = P.astype(H.real.dtype)
        um = jnp.ones((B, K), bool) if mask is None else jnp.broadcast_to(_checks.user_mask(mask, (B,), K), (B, K))
        if antenna_mask is None:
            am = jnp.ones((B, N), bool)
        else:
            am = jnp.broadcast_to(_checks.user_mask(antenna_mask, (B,), N, name="antenna_mask"), (B, N))
        H = jnp.pad(H, ((0, 0), (0, Km - K), (0, Nm - N)))
        um = jnp.pad(um, ((0, 0), (0, Km - K)))
        am = jnp.pad(am, ((0, 0), (0, Nm - N)))
        entry = (um[:, :, None] & am[:, None, :]).astype(H.dtype)
        Hm = H * entry  # H^(0) = H o M_s, eq. 12
        k_act = jnp.maximum(jnp.sum(um, -1), 1).astype(P.dtype)
        n_act = jnp.maximum(jnp.sum(am, -1), 1).astype(P.dtype)
        scale = jnp.sqrt(P / (k_act * n_act))  # typical |W_kn| at equal power
        W = rzf(Hm, P, self.sigma2, mask=um)  # eq. 5 on the masked channel
        Haux, out = Hm, []

        def layer(t, W, Haux):  # one sum-rate gradient per layer feeds both optional inputs
            g = self._ascent(Hm, W, um, entry) if self.gradient_input or self.learned_step else None
            G = self._gradient(g, entry) if self.gradient_input else None
            stats = self._step_stats(g, W, P, um, am) if self.learned_step else None
            return self._layer(t)(Haux, W, um, am, scale, G, stats)

        for t in range(t_e):
            dH, dW, *factor = layer(t, W, Haux)
            eta = self.step_size * jnp.exp(factor[0]).astype(P.dtype) if factor else self.step_size
            W0 = _sphere((W + dW) * entry, P)
            Wt = refine(
                Hm, W0, P, self.sigma2, "sr", self.steps, eta, um, project="sphere", normalize=self.normalize_step
            )
            if self.monotone:
                better = sum_rate(Hm, Wt, self.sigma2, mask=um) >= sum_rate(Hm, W, self.sigma2, mask=um)
                Wt = jnp.where(better[:, None, None], Wt, W)
            W, Haux = Wt, Haux + dH
            if t < t_s:  # frozen part of the window: inference only
                W, Haux = jax.lax.stop_gradient(W), jax.lax.stop_gradient(Haux)
            else:
                out.append(W[:, :K, :N])
        if self.is_initializing():  # parameters for every layer, whatever the window
            for t in range(t_e, self.num_layers):
                layer(t, W, Haux)
        return jnp.stack(out, axis=1) if self.trajectory else out[-1]
