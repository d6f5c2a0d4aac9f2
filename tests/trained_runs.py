"""Trained smoke runs shared by several test files (the fixtures in tests/conftest.py) and what their tests need.

Training even a smoke model is mostly compilation; the tests read one run of each kind instead of training
their own. Session-scoped fixtures are made once per xdist worker process, so every test that reads one is
marked :data:`TRAINED_RUNS` (one xdist group: one worker under ``--dist loadgroup``). The runs are read-only:
a test that changes a run copies it to its own tmp_path first.
"""

import jax
import numpy as np
import pytest

import jaxbeam as jb
from jaxbeam.data.format import LabelSet, split_ids

TRAINED_RUNS = pytest.mark.xdist_group("trained_runs")

SAO_RUN_ARGS = ["--set", "num_layers=1", "--set", "window=1", "--set", "K_schedule=2,4", "--set", "N_schedule=3"]
SAO_RUN_ARGS += ["--set", "steps_per_call=2"]  # two optimizer steps per dispatch


def stand_in_labels(utility="sr", S=80, K=3, N=4, seed=0):
    """Stand-in label sets (RZF beams, EE at half power): fast and deterministic."""
    H = np.asarray(jb.rayleigh(jax.random.key(seed), (S,), K, N))
    P = np.ones(S, np.float32)
    W = np.asarray(jb.rzf(H, P, 0.1)) * (0.5 if utility == "ee" else 1.0)
    U = np.asarray(jb.utility(utility, H, W, 0.1))
    return LabelSet(H=H, W=W, P=P, U=U, split_ids=split_ids(S, seed), meta={"utility": utility, "solver": "rzf"})
