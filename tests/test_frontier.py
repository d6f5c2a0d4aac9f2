"""``benchmarks.frontier``: the frontier marking, the matched-quality column, the confidence interval, the
reference solvers and a quick run writing every file (#36)."""

import json

import jax
import numpy as np
import pytest

import jaxbeam as jb
from benchmarks.frontier import classical, main, mark_frontier, match, quality


def _row(method, q, s, learned=False):
    return {"method": method, "quality_pct": q, "samples_per_s": {"8": s}, "learned": learned}


def test_frontier_keeps_exactly_the_undominated_methods():
    rows = [
        _row("slow exact", 100.0, 10.0),
        _row("fast good", 90.0, 100.0),
        _row("fast good twin", 90.0, 100.0),  # a tie dominates neither
        _row("dominated", 80.0, 50.0),
        _row("fastest poor", 20.0, 1000.0),
        _row("as fast, worse", 19.0, 1000.0),
    ]
    mark_frontier(rows, "8")
    assert [r["method"] for r in rows if r["on_frontier"]] == [
        "slow exact",
        "fast good",
        "fast good twin",
        "fastest poor",
    ]


def test_each_learned_row_names_the_fastest_classical_method_at_least_as_good():
    rows = [_row("model", 95.0, 100.0, learned=True), _row("WMMSE-5", 96.0, 800.0), _row("WMMSE-10", 99.0, 400.0),
            _row("RZF", 90.0, 5000.0), _row("better model", 99.5, 10.0, learned=True)]  # fmt: skip
    match(rows, "8")
    assert rows[0]["matched_by"] == "WMMSE-5" and rows[0]["speedup"] == 8.0
    assert rows[4]["matched_by"] is None and rows[4]["speedup"] is None


def test_quality_and_its_confidence_interval_against_a_bootstrap():
    rng = np.random.default_rng(0)
    best = rng.uniform(5, 15, 4000)
    u = best * rng.uniform(0.9, 1.0, 4000)
    q, ci = quality(u, best)
    np.testing.assert_allclose(q, 100 * u.mean() / best.mean())
    boot = [100 * u[i].mean() / best[i].mean() for i in rng.integers(0, 4000, (400, 4000))]
    np.testing.assert_allclose(ci, 1.96 * np.std(boot), rtol=0.15)


def test_the_references_reach_at_least_every_classical_method():
    """Per sample, the best reference solver is at least every closed form and ladder rung (what 100 % means)."""
    H = jb.rayleigh(jax.random.key(1), (16,), 4, 4)
    for utility in jb.TASKS:
        methods, refs = classical(utility, 4, 4, 0.01, budgets=(1, 3))
        u = {n: np.asarray(jb.utility(utility, H, f(H), 0.01, 0.5)) for n, f in methods.items()}
        best = np.max([u[n] for n in refs], axis=0)
        for n in ("RZF", "RZF_BAL"):
            assert np.all(best >= u[n] * (1 - 1e-4)), (utility, n)


def test_quick_run_writes_the_json_the_table_and_the_plot(tmp_path, capsys):
    out = tmp_path / "frontier.json"
    assert main(["--quick", "--quiet", "--out", str(out)]) == 0
    data = json.loads(out.read_text())
    assert {"date", "commit", "machine", "device", "command"} <= set(data["header"])
    rows = data["rows"]
    fields = {"K", "N", "snr_db", "utility", "method", "learned", "quality_pct", "samples_per_s", "latency_ms",
              "on_frontier", "device", "commit", "ci95"}  # fmt: skip
    assert all(fields <= set(r) for r in rows)
    for utility in jb.TASKS:
        panel = [r for r in rows if r["utility"] == utility]
        assert {"MRT", "ZF", "RZF", "RZF_BAL"} <= {r["method"] for r in panel}
        assert max(r["quality_pct"] for r in panel) >= 100.0 - 1e-6 and any(r["on_frontier"] for r in panel)
        assert all(v > 0 for r in panel for v in r["samples_per_s"].values()) and all(
            r["latency_ms"] > 0 for r in panel
        )
    assert {"WMMSE-1", "WMMSE-5", "WMMSE (converged)"} <= {r["method"] for r in rows if r["utility"] == "sr"}
    assert "max-min optimum" in {r["method"] for r in rows if r["utility"] == "mr"}
    assert {"RZF power search", "RZF + EE scale", "RZF EE, 2 passes", "SCA"} <= {
        r["method"] for r in rows if r["utility"] == "ee"
    }
    assert out.with_suffix(".png").stat().st_size > 0 and "## (3, 4), 10 dB, EE" in out.with_suffix(".md").read_text()
    assert "cheapest classical" in capsys.readouterr().out


def test_bad_utilities_are_refused(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--quick", "--utilities", "sr,xx"])
    assert e.value.code == 2 and "--utilities must be a comma-separated subset of sr,mr,ee" in capsys.readouterr().err
