"""``benchmarks.frontier``: the frontier marking, the measured utilities and the reference solvers."""

import json

import jax
import numpy as np
import pytest

import jaxbeam as jb
from benchmarks.frontier import closed_forms, frontier, main, measure, solver_methods


def test_frontier_keeps_exactly_the_undominated_methods():
    rows = [
        {"method": "slow exact", "quality": 100.0, "samples_per_s": 10.0},
        {"method": "fast good", "quality": 90.0, "samples_per_s": 100.0},
        {"method": "fast good twin", "quality": 90.0, "samples_per_s": 100.0},  # a tie dominates neither
        {"method": "dominated", "quality": 80.0, "samples_per_s": 50.0},
        {"method": "fastest poor", "quality": 20.0, "samples_per_s": 1000.0},
        {"method": "as fast, worse", "quality": 19.0, "samples_per_s": 1000.0},
    ]
    frontier(rows)
    assert [r["method"] for r in rows if r["frontier"]] == ["slow exact", "fast good", "fast good twin", "fastest poor"]


@pytest.mark.parametrize("utility", jb.TASKS)
def test_measure_scores_the_beams_on_the_utility(utility):
    H = jb.rayleigh(jax.random.key(0), (8,), 3, 4)
    fn = closed_forms(3, 4, 0.1)["RZF"]
    m = measure("RZF", fn, H, utility, 0.1, repeats=2)
    np.testing.assert_allclose(m["u"], jb.utility(utility, H, jb.rzf(H, 1.0, 0.1), 0.1, 0.5), rtol=1e-6)
    assert m["samples_per_s"] > 0 and m["latency_ms"] > 0
    assert "ZF" not in closed_forms(5, 4, 0.1)  # ZF does not exist for K > N


@pytest.mark.slow  # compiles every solver of the benchmark (~45 s on a busy 2-core CPU)
def test_the_reference_solvers_beat_the_closed_forms_on_their_utility():
    """The per-sample best of each utility's solvers is at least RZF's / RZF_BAL's utility (what the
    quality column divides by)."""
    H = jb.rayleigh(jax.random.key(1), (16,), 4, 4)
    for utility, closed in (("sr", "rzf"), ("mr", "rzf_bal"), ("ee", "rzf")):
        best = np.max([jb.utility(utility, H, f(H), 0.01, 0.5) for f in solver_methods(utility, 0.01).values()], 0)
        ref = closed_forms(4, 4, 0.01)[closed.upper()](H)
        assert np.all(best >= np.asarray(jb.utility(utility, H, ref, 0.01, 0.5)) * (1 - 1e-4)), utility


def test_smoke_run_writes_the_table_and_the_plot(tmp_path, capsys):
    """``python -m benchmarks.frontier --smoke``: every method of every utility measured, the best solver
    at 100 %, a frontier marked per panel, the JSON and the PNG written."""
    out = tmp_path / "frontier.json"
    assert main(["--smoke", "--quiet", "--out", str(out)]) == 0
    rows = json.loads(out.read_text())["rows"]
    assert out.with_suffix(".png").stat().st_size > 0 and "% of best solver" in capsys.readouterr().out
    for utility in jb.TASKS:
        panel = [r for r in rows if r["utility"] == utility]
        methods = {r["method"] for r in panel}
        assert {"MRT", "ZF", "RZF", "RZF_BAL", "SCA"} <= methods
        assert max(r["quality"] for r in panel) >= 100.0 - 1e-6 and any(r["frontier"] for r in panel)
        assert all(r["samples_per_s"] > 0 and r["latency_ms"] > 0 for r in panel)
        closed = [r["quality"] for r in panel if r["method"] in ("MRT", "ZF", "RZF", "RZF_BAL")]
        assert max(closed) <= 100.0 + 1e-3  # the reference solvers are at least the closed forms
    assert {"WMMSE tol 0.1", "WMMSE tol 0.001"} <= {r["method"] for r in rows if r["utility"] == "sr"}
    assert "exact max-min" in {r["method"] for r in rows if r["utility"] == "mr"}
