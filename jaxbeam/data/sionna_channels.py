r"""3GPP TR 38.901 channels from NVIDIA Sionna (``pip install jaxbeam[sionna]``: ``sionna-no-rt``, PyTorch) as
narrowband MU-MISO channels in jaxbeam's convention (#19).

One BS with a half-wavelength ULA of N single-polarised elements (the 38.901 element pattern, or ``"omni"``)
serves K single-antenna users dropped in one 120-degree sector (Sionna's ``gen_single_sector_topology``,
the scenario's default heights, distances and indoor share). Sionna draws the downlink channel impulse
response ``a[b, k, 0, 0, n, path, 0]``; the narrowband channel of the carrier's own subcarrier
(baseband frequency 0) is the sum over paths, ``g_k[n] = sum_p a_p``, and Sionna's received signal is
``y_k = g_k^T x``. jaxbeam's gains are ``h_k^H w`` (docs/design.md), so ``H[k, n] = conj(g_k[n])``.

**Polarisation.** Sionna's sector drop gives every user a random orientation, so a single-polarised user
antenna is misaligned with the BS's vertical elements: the mean gain is ~2.2 dB below 38.901's path loss,
``10 log10((1 + 1 / XPR) / 2)`` with UMa NLoS's XPR of 7 dB, measured -2.3 dB per distance decile
(``tests/test_sionna_channels.py``). ``ut_orientation="aligned"`` turns every user upright (zero
orientation) and the path loss is the formula's to within 1 dB; ``"random"`` (default) keeps the drop's. With
the default 38.901 BS element the mean gain is the formula's plus the element's gain towards the user (its
pattern at the line of sight), ~0.6 dB less as the paths spread around it, within 1 dB per decile (ibid.).

**Gain normalisation.** The path gains of a 38.901 scenario are around -80 to -170 dB; ``H`` is scaled by
``10^(gain_db / 20)``, by default the scenario's :data:`REFERENCE_GAIN_DB`: minus the median per-antenna gain
``10 log10(|g_k|^2 / N)`` of a cell-edge user (2D distance within 5 % of ``ISD / 2``, :data:`CELL_EDGE_M`) at the
defaults here (3.5 GHz, 38.901 BS elements, random orientations, the scenario's indoor share and shadowing),
measured with Sionna (N = 8, 20,000 users per scenario, two seeds: within 1 dB of each other; rounded to 1 dB).
So ``P / sigma2`` is the median SNR per antenna of a cell-edge user in every scenario, as for
:func:`jaxbeam.pathloss`. The reference holds what 38.901's path-loss formulas leave out: the BS element (about
+5 dB over omni for cell-edge users; 8 dBi at boresight), the polarisation mismatch (about -2 dB), the O2I and
car penetration losses. It is the 3.5 GHz one whatever ``carrier_frequency`` (38.901's path losses grow by
``20 log10(fc)``). Per-antenna SNR ``P |g_k|^2 / (N sigma2)`` [dB] of all users at ``P / sigma2 = 10 dB``
(``python -m benchmarks.sionna_snr``, 4,000 users per scenario, N = 8, 2026-12-06; before: 120 dB for all)::

    scenario  gain_db      5 %    25 %    50 %    75 %    95 %   < 0 dB
    UMa       140          -4.4   +8.0   +20.0   +36.3   +56.4   10 %
    UMi       122          -5.9   +7.7   +20.3   +32.2   +51.2   12 %
    RMa       156          -4.1   +8.8   +19.1   +33.2   +56.4    9 %
    before    120 (UMa / UMi / RMa): medians -0.0 / +18.3 / -16.9 dB, 50 / 14 / 78 % below 0 dB

The median user sits ~10 dB above the cell edge; the 60 dB from 5 % to 95 % are 38.901's (distance,
shadowing, line of sight or not, indoor or not). The cell-edge medians measured there are within 1.3 dB of
``-REFERENCE_GAIN_DB``.

**Inherited from Sionna** (``sionna-no-rt`` 2.2, ``gen_single_sector_topology`` and the scenario models):
inter-site distances 500 / 200 / 5000 m (UMa / UMi / RMa; RMa: 38.901's larger option, not 1732 m), BS heights
25 / 10 / 35 m, minimum distances 35 / 10 / 35 m, every user at 1.5 m (indoor users too: no floors), indoor
shares 0.8 / 0.8 / 0.5, the BS tilted down towards the sector's centre. UMa / UMi indoor users get the low-loss
O2I model (``o2i_model="low"``, jaxbeam's choice; Sionna has no default); RMa's indoor users get the low-loss
model (its only one) and its outdoor users sit in cars (38.901 Table 7.2-3: car penetration loss N(9, 5^2) dB,
ordinary windows); RMa's buildings are 5 m high, its streets 20 m wide.

**CDL** (:func:`sionna_cdl`, source ``sionna-cdl``): 38.901's clustered delay lines are single-link models with
fixed cluster angles, so K users from one profile would share their departure angles. Each user here is an
independent CDL link (its own rays' random phases and couplings) whose BS array is turned by a yaw uniform in
``+-max_angle_deg`` (the user's direction in the sector); the power-delay profile has unit energy, so with
omni elements ``E|H[k, n]|^2 = 1`` per antenna, as for ``rayleigh``, and ``P / sigma2`` is the SNR per antenna.

Sionna runs on PyTorch on the CPU here, outside any jitted function; it is seeded per call
(``sionna.phy.config.seed``) from the jax key, so the same key gives the same channels, and every call puts
back the global state it touches (Sionna's seed and generators, PyTorch's default generators). Converted once
per call through numpy.
"""

from __future__ import annotations

import contextlib

import numpy as np

SCENARIOS = ("uma", "umi", "rma")

CELL_EDGE_M = {"uma": 250.0, "umi": 100.0, "rma": 2500.0}
"""Cell-edge distance per scenario, half of Sionna's default inter-site distance [m] (2D, BS to user)."""

REFERENCE_GAIN_DB = {"uma": 140.0, "umi": 122.0, "rma": 156.0}
"""Default ``gain_db`` per scenario [dB]: minus the median per-antenna gain of a cell-edge user
(:data:`CELL_EDGE_M`) at the defaults, measured (module docstring, "Gain normalisation"), so ``P / sigma2`` is
that user's median SNR per antenna. Part of a label set's identity (the recorded ``gain_db``)."""


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


@contextlib.contextmanager
def _global_state_restored(config):
    """Put back what seeding Sionna changes: its seed and generators, PyTorch's default CPU (and CUDA)
    generators."""
    import torch

    names = ("_seed", "_py_rng", "_np_rng", "_torch_rngs")
    sionna = {n: getattr(config, n) for n in names} if all(hasattr(config, n) for n in names) else None
    seed = config.seed
    cpu = torch.get_rng_state()
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None
    try:
        yield
    finally:
        if sionna is not None:  # the generators as they were, not restarted from the seed
            for n, v in sionna.items():
                setattr(config, n, v)
        else:
            config.seed = seed
        torch.set_rng_state(cpu)
        if cuda is not None:
            torch.cuda.set_rng_state_all(cuda)


def _bs_frame_angles(v: np.ndarray, orientation: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Zenith and azimuth [rad] of directions ``v`` ``(..., 3)`` in the frame of an array turned by
    ``orientation`` ``(..., 3)`` (yaw, tilt, roll [rad]; TR 38.901 eq. 7.1-2: ``R = R_z R_y R_x``)."""
    a, b, c = (orientation[..., i] for i in range(3))
    x, y, z = v[..., 0], v[..., 1], v[..., 2]
    x, y = np.cos(a) * x + np.sin(a) * y, -np.sin(a) * x + np.cos(a) * y  # R_z^T
    x, z = np.cos(b) * x - np.sin(b) * z, np.sin(b) * x + np.cos(b) * z  # R_y^T
    y, z = np.cos(c) * y + np.sin(c) * z, -np.sin(c) * y + np.cos(c) * z  # R_x^T
    return np.arccos(np.clip(z / np.sqrt(x**2 + y**2 + z**2), -1.0, 1.0)), np.arctan2(y, x)


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
    gain_db: float | None = None,
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
      gain_db: the gain applied to every channel [dB]; None: the scenario's :data:`REFERENCE_GAIN_DB` (module
        docstring, "Gain normalisation").
      bs_pattern: the BS element pattern, ``"38.901"`` (sector antenna, 8 dBi peak) or ``"omni"``.
      indoor_probability: share of indoor users (None: the scenario's, 0.8 for UMa / UMi).
      shadow_fading: draw log-normal shadowing (38.901 Table 7.4.1-1).
      los: force line of sight (True) or non-line-of-sight (False) for every user; None: drawn per user.
      ut_orientation: ``"random"`` (the drop's) or ``"aligned"`` (upright; module docstring, "Polarisation").
      return_topology: also return a dict of ``(batch, K)`` arrays: ``"distance_2d"``, ``"distance_3d"``,
        ``"ut_height"`` [m], ``"indoor"`` (bool), and ``"zenith"``, ``"azimuth"`` [rad], the user's direction
        from the BS in its array's frame (boresight: zenith pi / 2, azimuth 0).
    """
    if scenario not in SCENARIOS:
        raise ValueError(f"scenario must be one of {SCENARIOS}; got {scenario!r}")
    _check_sizes(batch, K, N)
    if bs_pattern not in ("38.901", "omni"):
        raise ValueError(f"bs_pattern must be '38.901' or 'omni'; got {bs_pattern!r}")
    if ut_orientation not in ("random", "aligned"):
        raise ValueError(f"ut_orientation must be 'random' or 'aligned'; got {ut_orientation!r}")
    gain_db = REFERENCE_GAIN_DB[scenario] if gain_db is None else float(gain_db)
    config, topology, models, PanelArray = _sionna()
    import torch

    with _global_state_restored(config), torch.no_grad():
        config.seed = int(seed)
        model = models[scenario](
            carrier_frequency=carrier_frequency,
            ut_array=_ula(PanelArray, 1, "omni", carrier_frequency),
            bs_array=_ula(PanelArray, N, bs_pattern, carrier_frequency),
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
        a, _ = model(num_time_samples=1, sampling_frequency=1.0)
    g = a.sum(dim=-2)[:, :, 0, 0, :, 0]  # (batch, K, N): paths summed, the first time sample
    H = np.conj(g.numpy()).astype(np.complex64) * np.float32(10.0 ** (gain_db / 20.0))
    if return_topology:
        v = topo[0].numpy() - topo[1].numpy()  # (batch, K, 3): BS to user
        zenith, azimuth = _bs_frame_angles(v, topo[3].numpy())
        info = {"distance_2d": np.linalg.norm(v[..., :2], axis=-1), "distance_3d": np.linalg.norm(v, axis=-1),
                "ut_height": topo[0].numpy()[..., 2], "indoor": topo[5].numpy().astype(bool), "zenith": zenith,
                "azimuth": azimuth}  # fmt: skip
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

    links = int(batch) * int(K)
    yaw = np.random.default_rng(int(seed)).uniform(-1.0, 1.0, links) * np.deg2rad(float(max_angle_deg))
    orientation = torch.zeros(links, 3, dtype=torch.float32)
    orientation[:, 0] = torch.from_numpy(yaw.astype(np.float32))
    with _global_state_restored(config), torch.no_grad():
        config.seed = int(seed)
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
        a, _ = cdl(batch_size=links, num_time_steps=1, sampling_frequency=1.0)
    g = a.sum(dim=-2)[:, 0, 0, 0, :, 0]  # (links, N): paths summed, the first time sample
    return np.conj(g.numpy()).astype(np.complex64).reshape(int(batch), int(K), int(N))
