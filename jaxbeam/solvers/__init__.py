"""Label solvers (functional core): batched, jitted WMMSE, projected-gradient SCA and exact max-min;
and the gradient refinement of any beams (paper 002, eq. 8).

All of them work on the K x K span coefficients of the channels (see ``_common``), use no LAPACK custom
calls (:func:`jaxbeam.core.linalg.hpd_solve`), accept any leading batch shape, a user mask, and run in
float32 or float64.
"""

from jaxbeam.solvers.maxmin import maxmin_exact
from jaxbeam.solvers.refine import refine
from jaxbeam.solvers.sca import UTILITIES, SCAState, sca
from jaxbeam.solvers.wmmse import WMMSEState, wmmse, wmmse_beams, wmmse_init, wmmse_step

__all__ = [
    "UTILITIES",
    "SCAState",
    "WMMSEState",
    "maxmin_exact",
    "refine",
    "sca",
    "wmmse",
    "wmmse_beams",
    "wmmse_init",
    "wmmse_step",
]
