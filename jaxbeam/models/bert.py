r"""BERT for single-task beamforming (BERT4beam Sec. IV-B, eqs. 4-16, Fig. 1).

.. math::
    T = [t_1, \dots, t_K]^T,\ t_k = [\Re h_k; \Im h_k]                       \quad (4) \\
    T_{emb} = \mathrm{ELU}(\mathrm{LN}(T W_{fc}))                           \quad (7) \\
    T_{sec} = \mathrm{TEB}_L \circ \dots \circ \mathrm{TEB}_1 (T_{emb})     \quad (8\text{-}13) \\
    W_{out} = \mathrm{GPA}(T_{sec} W_{real} + j\, T_{sec} W_{imag})         \quad (14\text{-}16)

The parameter tree has three top-level parts, so fine-tuning can address them by name
(:mod:`jaxbeam.train.finetune`): ``embed`` (``fc``, ``ln``; depends on N), ``encoder``
(``block_0 .. block_{L-1}``; independent of K and N) and ``head`` (the eq. 14 FC to ``2N`` outputs:
the first N are real parts, the last N imaginary parts; depends on N).

``domain="angle"`` (paper 003 eq. 18) feeds the tokens of the angle-domain channel ``H F`` (``F`` the unitary
DFT over the antennas, :func:`jaxbeam.angle_domain`) and reads the output FC as angle-domain beams, mapped
back by ``F^H`` before the GPA; the map is unitary, so it changes the model's view of the channel, not the
utilities.

There is no positional encoding, so the model is permutation-equivariant over users and its parameters
do not depend on K (Remark 1). Absent users (``mask == False``) are excluded from attention, get zero
beams and do not change the present users' beams.
"""

from __future__ import annotations

import math
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxbeam.core import _checks
from jaxbeam.core.power import POWER_CONSTRAINTS, gpa, gpa_antenna
from jaxbeam.core.tokenize import angle_domain, spatial_domain, user_tokens
from jaxbeam.models.encoder import Encoder, attention_mask

# Output layer (eq. 14) initialisation, shared by every model that ends in the GPA (BERT, UBERT's eq. 28,
# the baselines): small enough that the raw beams start inside the unit ball of eq. 15 (for BERT
# E||W||_F^2 = 2KN * OUTPUT_INIT_SCALE, 0.14 at (6, 12)), where their norm -- the transmit power -- gets a
# gradient. Outside the ball the GPA normalises: the gradient is tangent to the sphere, every step only
# grows the norm, and the model is stuck at full power. That cost EE (whose optimum lies below P) most:
# BERT on the cpu preset reached 80.7 % of the label solver with Flax's default init (below RZF's 84.4 %)
# and 98.8 % with this one (experiments/bert_pretrain_cpu.py --utility ee --minutes 10).
OUTPUT_INIT_SCALE = 1e-3
DOMAINS = ("spatial", "angle")  # the channel view of the tokens (paper 003 eq. 18)


def output_init(scale: float = OUTPUT_INIT_SCALE):
    """Kernel initialiser of the eq. 14 output layer (see ``OUTPUT_INIT_SCALE``): variance ``scale / fan_in``."""
    return nn.initializers.variance_scaling(scale, "fan_in", "truncated_normal")


def check_sizes(model: nn.Module, **low: int) -> None:
    """``ValueError`` naming the attribute unless each named size of ``model`` is an int ``>= low[name]``
    (a width of 0 would otherwise end in a ``ZeroDivisionError`` of an initialiser, a negative layer count
    in a model without those layers)."""
    for name, lo in low.items():
        _checks.count(name, getattr(model, name), lo, f"an attribute of {type(model).__name__}")


def param_shape(params, *path: str) -> tuple | None:
    """The shape of ``params[path[0]][path[1]]...``, or None where the path is absent."""
    for key in path:
        if not hasattr(params, "get"):
            return None
        params = params.get(key)
        if params is None:
            return None
    return tuple(params.shape) if hasattr(params, "shape") else None


def numbered(params, prefix: str) -> int | None:
    """How many of ``prefix0, prefix1, ...`` are keys of ``params`` (None where ``params`` is absent)."""
    if not hasattr(params, "keys"):
        return None
    return sum(1 for k in params.keys() if k.startswith(prefix) and k[len(prefix) :].isdigit())


def encoder_made_for(params) -> dict:
    """``num_layers``, ``num_heads``, ``mlp_ratio`` read off :class:`Encoder` parameters ``params`` (None: unknown)."""
    q = param_shape(params, "block_0", "mha", "query", "kernel")  # (F, C, F / C)
    ffn = param_shape(params, "block_0", "ffn_in", "kernel")  # (F, mlp_ratio F)
    return {
        "num_layers": numbered(params, "block_"),
        "num_heads": q[1] if q and len(q) == 3 else None,
        "mlp_ratio": ffn[1] // ffn[0] if ffn and ffn[0] else None,
    }


def check_variables(model: nn.Module, made_for) -> None:
    """Raise ``ValueError`` if the variables ``model`` is applied with were made for other attribute values.

    ``made_for(params) -> {attribute: value or None}`` reads the values off the parameter shapes (an attribute
    ``"a * b"`` is the product of two, where the shapes only fix that). Called at the start of ``__call__`` when
    applying (not initialising), before any layer meets a parameter of the wrong shape (Flax's
    ``ScopeParamShapeError`` names a kernel, not the attribute) or silently ignores extra ones (more encoder
    blocks than ``num_layers``).
    """
    if model.is_initializing() or "params" not in model.variables:
        return
    made = made_for(model.variables["params"])
    have = {k: _attribute(model, k) for k in made}
    wrong = [k for k, v in made.items() if v is not None and v != have[k]]
    if wrong:
        name = type(model).__name__
        raise ValueError(
            f"variables were made for {', '.join(f'{k} = {made[k]!r}' for k in wrong)}, but this {name} has "
            f"{', '.join(f'{k} = {have[k]!r}' for k in wrong)}; build the model with those values "
            f"(or make new variables with {name}.init)"
        )


def _attribute(model: nn.Module, label: str):
    """``model``'s attribute ``label``, or the product of the attributes of a label ``"a * b"``."""
    names = label.split(" * ")
    return math.prod(getattr(model, n) for n in names) if len(names) > 1 else getattr(model, label)


def check_beams(model: nn.Module, W: jax.Array, H: jax.Array) -> None:
    """``ValueError`` if the network's raw beams ``W`` (concrete) hold NaN or Inf: naming ``H`` and its scale.

    ``H`` itself is finite (checked on entry), so with finite variables the cause is overflow: channels far
    outside the scale the network computes with (entries near 1, as :func:`jaxbeam.rayleigh` draws) overflow its
    float32 (or ``dtype``) activations, e.g. ``H x 1e30``. Non-finite variables are named instead. Traced ``W``
    (under ``jit``) is not checked: such ``H`` gives NaN beams there.
    """
    if not _checks.is_concrete(W) or not _checks.is_concrete(H) or jnp.size(W) == 0:
        return
    with jax.ensure_compile_time_eval():
        if bool(jnp.all(jnp.isfinite(W))):
            return
        scale = float(jnp.max(jnp.abs(H))) if jnp.size(H) else 0.0
        leaves = jax.tree.leaves(model.variables.get("params", {}))
        bad = [x for x in leaves if _checks.is_concrete(x) and not bool(jnp.all(jnp.isfinite(x)))]
    if bad:
        raise ValueError(
            f"variables hold NaN or Inf ({len(bad)} of {len(leaves)} parameter arrays), so the beams do too "
            f"(H: largest entry magnitude {scale:.3g})"
        )
    raise ValueError(
        f"H is too large for the model: its largest entry magnitude is {scale:.3g}, and the network's activations "
        f"overflow (its beams hold NaN or Inf); H is expected at the scale the model computes with (entries of "
        f"order 1, as jb.rayleigh draws): scale it down (H / c with sigma2 / c^2 keeps every SINR)"
    )


class Embedding(nn.Module):
    """Embedding block, eq. 7: ``ELU(LN(T W_fc))``, ``(..., K, 2N) -> (..., K, F)``."""

    features: int
    dtype: Any = None

    @nn.compact
    def __call__(self, T: jax.Array) -> jax.Array:
        x = nn.Dense(self.features, dtype=self.dtype, name="fc")(T)
        x = nn.LayerNorm(dtype=self.dtype, name="ln")(x)
        return nn.elu(x)


class BERT(nn.Module):
    """BERT beamformer of Fig. 1 for a fixed number of antennas N and any number of users K.

    Attributes:
      num_antennas: N, the number of transmit antennas (sets the input width 2N and output width 2N).
      features: token width F (paper: 1024).
      num_layers: number of Transformer encoder blocks L (paper: 12).
      num_heads: attention heads C (paper: 16); must divide ``features``.
      mlp_ratio: FFN hidden width ``d' = mlp_ratio * F`` (docs/design.md: 4).
      dtype: computation dtype of the embedding and encoder (e.g. ``jnp.bfloat16``); parameters, the
        output FC and the power adapter stay float32.
      domain: ``"spatial"`` (eq. 4, the paper) or ``"angle"`` (tokens and beams in the DFT domain, paper 003
        eq. 18; module docstring).
      power: ``"total"`` (eq. 15's GPA, ``||W||_F^2 <= P``) or ``"antenna"`` (the GPA per antenna,
        :func:`jaxbeam.gpa_antenna`: ``sum_k |W[k, n]|^2 <= P / N`` for every antenna).

    Call: ``model.apply(variables, H, P, mask=None) -> W``.

    Args:
      H: complex ``(B, K, N)`` channels (any leading batch shape).
      P: power budget [W], scalar or per sample ``(B,)``.
      mask: optional bool ``(B, K)``, True for present users.

    Returns:
      complex ``(B, K, N)`` beamformers (the dtype of ``H``), ``||W||_F^2 <= P`` per sample (eq. 15),
      zero rows for absent users.

    Raises:
      ValueError: a size attribute that is not an int in range (``num_antennas``, ``features``, ``num_heads``,
        ``mlp_ratio`` >= 1, ``num_layers`` >= 0); variables made for other ``num_antennas``, ``features``,
        ``num_layers``, ``num_heads`` or ``mlp_ratio`` (named, with both values); a concrete ``H`` so large that
        the network overflows (named with its scale; under ``jit`` such ``H`` gives NaN beams).
    """

    num_antennas: int
    features: int
    num_layers: int
    num_heads: int
    mlp_ratio: int = 4
    dtype: Any = None
    domain: str = "spatial"
    power: str = "total"

    @nn.compact
    def __call__(self, H: jax.Array, P: jax.Array, mask: jax.Array | None = None) -> jax.Array:
        _checks.name_in("domain", self.domain, DOMAINS)
        _checks.name_in("power", self.power, POWER_CONSTRAINTS)
        check_sizes(self, num_antennas=1, features=1, num_layers=0, num_heads=1, mlp_ratio=1)
        check_variables(self, _bert_made_for)
        H = _checks.complex_kn("H", H)
        N = self.num_antennas
        if H.shape[-1] != N:
            raise ValueError(f"H must have N = num_antennas = {N} columns; got shape {H.shape}")
        mask = _checks.user_mask(mask, H.shape[:-2], H.shape[-2])
        if mask is not None:
            mask = jnp.broadcast_to(mask, H.shape[:-1])
        T = user_tokens(H if self.domain == "spatial" else angle_domain(H))  # eq. 4, (..., K, 2N)
        if mask is not None:
            T = jnp.where(mask[..., None], T, 0)
        x = Embedding(self.features, self.dtype, name="embed")(T)  # eq. 7
        x = Encoder(self.features, self.num_layers, self.num_heads, self.mlp_ratio, self.dtype, name="encoder")(
            x, attention_mask(mask)
        )  # eqs. 8-13
        out = nn.Dense(2 * N, dtype=jnp.float32, kernel_init=output_init(), name="head")(
            x.astype(jnp.float32)
        )  # eq. 14
        check_beams(self, out, H)
        rdtype = H.real.dtype
        W = jax.lax.complex(out[..., :N].astype(rdtype), out[..., N:].astype(rdtype))
        if self.domain == "angle":
            W = spatial_domain(W)
        if self.power == "antenna":
            P = _checks.real_param("P", P, H.shape[:-2], low=0.0, what="power budget in W")
            return gpa_antenna(W, jnp.asarray(P, rdtype)[..., None] / N, mask=mask)  # eq. 15 per antenna
        return gpa(W, P, mask=mask)  # eq. 15


def _bert_made_for(params) -> dict:
    """The attributes of :class:`BERT` read off its parameters (:func:`check_variables`)."""
    fc = param_shape(params, "embed", "fc", "kernel")  # (2N, F)
    head = param_shape(params, "head", "kernel")  # (F, 2N)
    return {
        "num_antennas": fc[0] // 2 if fc else (head[1] // 2 if head else None),
        "features": fc[1] if fc else None,
        **encoder_made_for(params.get("encoder", {})),  # no "encoder": made with num_layers = 0
    }
