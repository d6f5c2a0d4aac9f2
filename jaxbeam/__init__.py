"""jaxbeam: BERT4beam (learned MU-MISO beamforming) in JAX.

The functional core re-exported here is the public API of ``docs/design.md``::

    import jaxbeam as jb
    H = jb.rayleigh(key, (B,), K, N)
    W = jb.rzf(H, P, sigma2)
    jb.sum_rate(H, W, sigma2)
"""

from jaxbeam import models  # noqa: F401  (jb.models.BERT, docs/design.md)
from jaxbeam._version import __version__  # noqa: F401  (jb.__version__)
from jaxbeam.core.channels import correlated, csi_error, pathloss, rayleigh
from jaxbeam.core.power import (
    feasible,
    gpa,
    gpa_antenna,
    maxmin_power,
    project_antenna_power,
    project_power,
    scale_antenna_power,
)
from jaxbeam.core.precoders import mrt, rzf, zf
from jaxbeam.core.tokenize import angle_domain, antenna_tokens, spatial_domain, user_tokens
from jaxbeam.core.utility import (
    TASKS,
    energy_efficiency,
    gains,
    min_rate,
    performance,
    rates,
    sinr,
    sum_rate,
    transmit_power,
    utility,
)
from jaxbeam.solvers import (
    ee_scale,
    maxmin_exact,
    power_search,
    refine,
    rzf_ee,
    sca,
    wmmse,
    wmmse_antenna,
    wmmse_beams,
    wmmse_fixed,
    wmmse_init,
    wmmse_step,
)

__all__ = [
    "TASKS",
    "angle_domain",
    "antenna_tokens",
    "correlated",
    "csi_error",
    "energy_efficiency",
    "feasible",
    "gains",
    "gpa",
    "gpa_antenna",
    "maxmin_exact",
    "maxmin_power",
    "min_rate",
    "mrt",
    "pathloss",
    "performance",
    "project_antenna_power",
    "project_power",
    "rates",
    "rayleigh",
    "refine",
    "rzf",
    "sca",
    "scale_antenna_power",
    "sinr",
    "spatial_domain",
    "sum_rate",
    "transmit_power",
    "user_tokens",
    "utility",
    "power_search",
    "ee_scale",
    "rzf_ee",
    "wmmse",
    "wmmse_antenna",
    "wmmse_beams",
    "wmmse_fixed",
    "wmmse_init",
    "wmmse_step",
    "zf",
]
