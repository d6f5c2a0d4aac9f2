r"""3GPP TR 38.901 channels from NVIDIA Sionna (``pip install jaxbeam[sionna]``: ``sionna-no-rt``, PyTorch) as
narrowband MU-MISO channels in jaxbeam's convention (#19).

One BS with a half-wavelength ULA of N single-polarised elements (the 38.901 element pattern, or ``"omni"``)
serves K single-antenna users dropped in one 120-degree sector (Sionna's ``gen_single_sector_topology``,
the scenario's default heights, distances and indoor share). Sionna draws the downlink channel impulse
response ``a[b, k, 0, 0, n, path, 0]``; the narrowband channel of the carrier's own subcarrier
(baseband frequency 0) is the sum over paths, ``g_k[n] = sum_p a_p``, and Sionna's received signal is
``y_k = g_k^T x``. jaxbeam's gains are ``h_k^H w`` (DESIGN.md), so ``H[k, n] = conj(g_k[n])``.

**Polarisation.** Sionna's sector drop gives every user a random orientation, so a single-polarised user
antenna is misaligned with the BS's vertical elements: the mean gain is ~2.2 dB below 38.901's path loss,
``10 log10((1 + 1 / XPR) / 2)`` with UMa NLoS's XPR of 7 dB, measured -2.3 dB per distance decile
(``tests/test_sionna_channels.py``). ``ut_orientation="aligned"`` turns every user upright (zero
orientation) and the path loss is the formula's to within 1 dB; ``"random"`` (default) keeps the drop's.

**Gain normalisation.** The path gains of a 38.901 scenario are around -80 to -160 dB; ``H`` is scaled by
``10^(gain_db / 20)`` (default 120 dB), so ``P / sigma2`` is the SNR per antenna of a user with 120 dB path
loss (a cell-edge user of UMa at 3.5 GHz: 100-150 dB over the sector).

**CDL** (:func:`sionna_cdl`, source ``sionna-cdl``): 38.901's clustered delay lines are single-link models with
fixed cluster angles, so K users from one profile would share their departure angles. Each user here is an
independent CDL link (its own rays' random phases and couplings) whose BS array is turned by a yaw uniform in
``+-max_angle_deg`` (the user's direction in the sector); the power-delay profile has unit energy, so with
omni elements ``E|H[k, n]|^2 = 1`` per antenna, as for ``rayleigh``, and ``P / sigma2`` is the SNR per antenna.

Sionna runs on PyTorch on the CPU here, outside any jitted function; it is seeded per call
(``sionna.phy.config.seed``) from the jax key, so the same key gives the same channels. Converted once per
call through numpy.
"""

from __future__ import annotations

import numpy as np

SCENARIOS = ("uma", "umi", "rma")


CDL_MODELS = ("A", "B", "C", "D", "E")


def _sionna():
    try:
        import sionna.phy  # noqa: F401
        from sionna.phy import config
        from sionna.phy.channel import gen_single_sector_topology
        from sionna.phy.channel.tr38901 import CDL, PanelArray, RMa, UMa, UMi
    except ImportError as e:
        raise ImportError(
            "the Sionna channel sources need the optional extra: pip install 'jaxbeam[sionna]' "
            f"(sionna-no-rt and PyTorch); importing it failed: {e}"
        ) from None
    return config, gen_single_sector_topology, {"uma": UMa, "umi": UMi, "rma": RMa, "cdl": CDL}, PanelArray


def _ula(PanelArray, n: int, pattern: str, carrier_frequency: float):
    """A 1 x ``n`` half-wavelength ULA of vertically polarised elements."""
    return PanelArray(
        num_rows_per_panel=1,
        num_cols_per_panel=int(n),
        polarization="single",
        polarization_type="V",
        antenna_pattern=pattern,
        carrier_frequency=carrier_frequency,
    )


def _check_sizes(batch, K, N):
    for name, v in (("batch", batch), ("K", K), ("N", N)):
        if isinstance(v, bool) or not isinstance(v, int | np.integer) or v < 1:
            raise ValueError(f"{name} must be a positive int; got {v!r}")


def sionna_channels(
    scenario: str,
    seed: int,
    batch: int,
    K: int,
    N: int,
    *,
    carrier_frequency: float = 3.5e9,
    gain_db: float = 120.0,
    bs_pattern: str = "38.901",
    indoor_probability: float | None = None,
    shadow_fading: bool = True,
    los: bool | None = None,
    ut_orientation: str = "random",
    return_topology: bool = False,
):
    """Narrowband downlink channels of a TR 38.901 scenario (module docstring): complex64 ``(batch, K, N)``.

    Args:
      scenario: ``"uma"``, ``"umi"`` or ``"rma"``.
      seed: Sionna's seed for this draw (int).
      batch, K, N: samples, users, BS antennas (a 1 x N ULA, half-wavelength spacing).
      carrier_frequency: [Hz].
      gain_db: the gain applied to every channel [dB] (module docstring, "Gain normalisation").
      bs_pattern: the BS element pattern, ``"38.901"`` (sector antenna, 8 dBi peak) or ``"omni"``.
      indoor_probability: share of indoor users (None: the scenario's, 0.8 for UMa / UMi).
      shadow_fading: draw log-normal shadowing (38.901 Table 7.4.1-1).
      los: force line of sight (True) or non-line-of-sight (False) for every user; None: drawn per user.
      ut_orientation: ``"random"`` (the drop's) or ``"aligned"`` (upright; module docstring, "Polarisation").
      return_topology: also return ``{"distance_3d": (batch, K) [m], "ut_height": (batch, K) [m]}``.
    """
    if scenario not in SCENARIOS:
        raise ValueError(f"scenario must be one of {SCENARIOS}; got {scenario!r}")
    _check_sizes(batch, K, N)
    if bs_pattern not in ("38.901", "omni"):
        raise ValueError(f"bs_pattern must be '38.901' or 'omni'; got {bs_pattern!r}")
    if ut_orientation not in ("random", "aligned"):
        raise ValueError(f"ut_orientation must be 'random' or 'aligned'; got {ut_orientation!r}")
    config, topology, models, PanelArray = _sionna()
    import torch

    config.seed = int(seed)
    bs = _ula(PanelArray, N, bs_pattern, carrier_frequency)
    ut = _ula(PanelArray, 1, "omni", carrier_frequency)
    model = models[scenario](
        carrier_frequency=carrier_frequency,
        ut_array=ut,
        bs_array=bs,
        direction="downlink",
        enable_pathloss=True,
        enable_shadow_fading=shadow_fading,
        device="cpu",
        **({"o2i_model": "low"} if scenario != "rma" else {}),
    )
    kw = {} if indoor_probability is None else {"indoor_probability": float(indoor_probability)}
    topo = list(topology(batch_size=int(batch), num_ut=int(K), scenario=scenario, device="cpu", **kw))
    if ut_orientation == "aligned":  # (ut_loc, bs_loc, ut_orientations, bs_orientations, velocities, in_state)
        topo[2] = torch.zeros_like(topo[2])
    model.set_topology(*topo, **({} if los is None else {"los": bool(los)}))
    with torch.no_grad():
        a, _ = model(num_time_samples=1, sampling_frequency=1.0)
    g = a.sum(dim=-2)[:, :, 0, 0, :, 0]  # (batch, K, N): paths summed, the first time sample
    H = np.conj(g.numpy()).astype(np.complex64) * np.float32(10.0 ** (gain_db / 20.0))
    if return_topology:
        ut_loc, bs_loc = topo[0].numpy(), topo[1].numpy()
        info = {"distance_3d": np.linalg.norm(ut_loc - bs_loc, axis=-1), "ut_height": ut_loc[..., 2]}
        return H, info
    return H


def sionna_cdl(
    seed: int,
    batch: int,
    K: int,
    N: int,
    *,
    model: str = "C",
    delay_spread: float = 300e-9,
    carrier_frequency: float = 3.5e9,
    max_angle_deg: float = 60.0,
    bs_pattern: str = "omni",
) -> np.ndarray:
    """Narrowband downlink channels of TR 38.901 CDL links, one per user (module docstring, "CDL"): complex64
    ``(batch, K, N)``, ``E|H[k, n]|^2 = 1`` with omni elements.

    Args:
      seed: Sionna's seed for this draw (int); the users' yaws come from the same seed.
      batch, K, N: samples, users, BS antennas (a 1 x N ULA, half-wavelength spacing).
      model: the CDL profile, ``"A"``-``"C"`` (NLoS) or ``"D"``, ``"E"`` (LoS).
      delay_spread: RMS delay spread [s] (> 0; it scales the delays, not the narrowband channel's statistics).
      carrier_frequency: [Hz].
      max_angle_deg: users' directions uniform in ``+-max_angle_deg`` [deg] (0 to 180).
      bs_pattern: the BS element pattern, ``"omni"`` or ``"38.901"`` (sector antenna, 8 dBi peak).
    """
    _check_sizes(batch, K, N)
    if model not in CDL_MODELS:
        raise ValueError(f"model must be one of {CDL_MODELS}; got {model!r}")
    if not 0.0 <= float(max_angle_deg) <= 180.0:
        raise ValueError(f"max_angle_deg must be in [0, 180]; got {max_angle_deg!r}")
    if not float(delay_spread) > 0:
        raise ValueError(f"delay_spread must be > 0; got {delay_spread!r}")
    if bs_pattern not in ("38.901", "omni"):
        raise ValueError(f"bs_pattern must be '38.901' or 'omni'; got {bs_pattern!r}")
    config, _, models, PanelArray = _sionna()
    import torch

    config.seed = int(seed)
    links = int(batch) * int(K)
    yaw = np.random.default_rng(int(seed)).uniform(-1.0, 1.0, links) * np.deg2rad(float(max_angle_deg))
    orientation = torch.zeros(links, 3, dtype=torch.float32)
    orientation[:, 0] = torch.from_numpy(yaw.astype(np.float32))
    cdl = models["cdl"](
        model,
        float(delay_spread),
        float(carrier_frequency),
        ut_array=_ula(PanelArray, 1, "omni", carrier_frequency),
        bs_array=_ula(PanelArray, N, bs_pattern, carrier_frequency),
        direction="downlink",
        bs_orientation=orientation,
        device="cpu",
    )
    with torch.no_grad():
        a, _ = cdl(batch_size=links, num_time_steps=1, sampling_frequency=1.0)
    g = a.sum(dim=-2)[:, 0, 0, 0, :, 0]  # (links, N): paths summed, the first time sample
    return np.conj(g.numpy()).astype(np.complex64).reshape(int(batch), int(K), int(N))
