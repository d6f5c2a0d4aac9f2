"""Label solvers (functional core): batched, jitted WMMSE, projected-gradient SCA and exact max-min; WMMSE
under per-antenna power constraints; and the gradient refinement of any beams (paper 002, eq. 8).

All of them but the per-antenna WMMSE (whose beams leave the channels' span) work on the K x K span
coefficients of the channels (see ``_common``); all use no LAPACK custom calls
(:func:`jaxbeam.core.linalg.hpd_solve`), accept any leading batch shape, a user mask, and run in float32 or
float64.
"""

from jaxbeam.solvers.maxmin import maxmin_exact
from jaxbeam.solvers.power_search import ee_scale, power_search, rzf_ee
from jaxbeam.solvers.refine import refine
from jaxbeam.solvers.sca import UTILITIES, SCAState, sca
from jaxbeam.solvers.unfolded import unfolded_wmmse
from jaxbeam.solvers.wmmse import WMMSEState, wmmse, wmmse_beams, wmmse_fixed, wmmse_init, wmmse_step
from jaxbeam.solvers.wmmse_antenna import wmmse_antenna

__all__ = [
    "UTILITIES",
    "SCAState",
    "WMMSEState",
    "ee_scale",
    "maxmin_exact",
    "power_search",
    "refine",
    "rzf_ee",
    "sca",
    "unfolded_wmmse",
    "wmmse",
    "wmmse_antenna",
    "wmmse_beams",
    "wmmse_fixed",
    "wmmse_init",
    "wmmse_step",
]
