"""``jaxbeam bench``: the training-step benchmark's FLOPs, memory and rates (``--train``), and its CLI."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxbeam import cli
from jaxbeam.jobs.bench import ModelSize, bert_latency, compiled_flops, matmul_time, train_throughput


def test_a_training_step_costs_about_three_forward_passes_and_holds_params_and_adam_state():
    """XLA's FLOPs of one smoke-preset step (forward, backward, Adam) against the forward pass alone of the
    same model and batch (backward ~2x forward); arguments hold at least the parameters and Adam's two
    moments (float32); a scan of 4 steps reports the same FLOPs per step and runs."""
    one = train_throughput("smoke", min_seconds=0.05)
    fwd = bert_latency(ModelSize("smoke", 16, 2, 2), 6, 12, one["batch"], np.float32, min_seconds=0.05)
    ratio = one["flops_per_step"] / (fwd["flops_per_sample"] * one["batch"])
    assert 2.0 < ratio < 5.0, ratio
    assert one["params"] == fwd["params"]
    mem = one["memory_bytes"]
    assert mem["argument"] >= 3 * 4 * one["params"] and mem["footprint"] > 0
    assert one["steps_per_s"] > 0 and one["samples_per_s"] == pytest.approx(one["batch"] * one["steps_per_s"])
    chunk = train_throughput("smoke", steps_per_call=4, min_seconds=0.05, matmuls=False)
    assert chunk["flops_per_step"] == pytest.approx(one["flops_per_step"])
    # the step's own matmuls: most of its FLOPs (their timing is the benchmark's, not asserted on a shared CPU)
    mm = one["matmuls"]
    assert 0.5 * one["flops_per_step"] < mm["flops"] <= one["flops_per_step"]
    assert mm["fraction_of_bound"] > 0 and mm["dots"] >= mm["shapes"] > 0
    assert chunk["steps"] % 4 == 0 and chunk["steps_per_s"] > 0
    with pytest.raises(ValueError, match="steps_per_call"):
        train_throughput("smoke", steps_per_call=0)
    # the engine's loop on an augmented data set, fed from the host or resident on the device: same program
    for feed in ("host", "resident"):
        row = train_throughput("smoke", feed=feed, steps_per_call=2, min_seconds=0.05, matmuls=False)
        assert row["feed"] == feed and row["flops_per_step"] > 0 and row["steps"] % 2 == 0 and row["steps_per_s"] > 0
    with pytest.raises(ValueError, match="feed must be one of"):
        train_throughput("smoke", feed="disk")


def test_cli_compile_only_writes_the_plan_without_running(tmp_path, capsys):
    out = tmp_path / "t.json"
    argv = ["bench", "--train", "--smoke", "--dtypes", "bfloat16", "--compile-only", "--out", str(out)]
    assert cli.main(argv) == 0
    (row,) = json.loads(out.read_text())["rows"]
    assert row["dtype"] == "bfloat16" and row["flops_per_step"] > 0 and "steps_per_s" not in row
    assert "GFLOP/step" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        cli.main(["bench", "--train", "--steps-per-call", "0"])
    assert "--steps-per-call" in capsys.readouterr().err


def test_matmul_time_counts_every_dot_of_a_differentiated_scan_with_its_flops():
    """Three layers of ``tanh(x @ w)`` in a ``lax.scan``, differentiated in ``w``: 3 forward dots and 2 per
    layer backward (input and weight gradients), FLOPs 2 M K N each; against XLA's cost analysis of the same
    dots unrolled (a program of matmuls only)."""
    x, w = jnp.ones((32, 48)), jnp.ones((48, 48))

    def f(w, x):
        def layer(h, _):
            return jnp.tanh(h @ w), None

        return jnp.sum(jax.lax.scan(layer, x, None, length=3)[0])

    mm = matmul_time(jax.grad(f), w, x, min_seconds=0.01)
    assert mm["dots"] == 9 and mm["flops"] == 9 * 2 * 32 * 48 * 48 and mm["seconds"] > 0
    assert sum(r["count"] for r in mm["top"]) == 9

    def dots_only(a, b, c):
        return (a @ b) @ c, jax.lax.dot_general(a.reshape(4, 8, 48), b.reshape(4, 12, 48), (((2,), (2,)), ((0,), (0,))))

    a, b, c = jnp.ones((32, 48)), jnp.ones((48, 48)), jnp.ones((48, 16))
    mm = matmul_time(dots_only, a, b, c, min_seconds=0.01)
    assert mm["dots"] == 3
    assert mm["flops"] == pytest.approx(compiled_flops(jax.jit(dots_only).lower(a, b, c).compile()), rel=1e-6)


def test_sionna_snr_quick_run_writes_both_reports(tmp_path):
    """``python -m benchmarks.sionna_snr --quick`` (~10 s; needs the ``sionna`` extra, required under CI): every
    scenario's SNR before and after, the same channels shifted by the change of gain, both files written."""
    import os

    if os.environ.get("CI", "").lower() == "true":
        import sionna.phy  # noqa: F401
    else:
        pytest.importorskip("sionna.phy")
    from benchmarks.sionna_snr import OLD_GAIN_DB, main
    from jaxbeam.data.sionna_channels import REFERENCE_GAIN_DB, SCENARIOS

    assert main(["--quick", "--out", str(tmp_path)]) == 0
    payload = json.loads((tmp_path / "sionna_snr.json").read_text())
    assert {"date", "commit", "machine", "command"} <= set(payload)
    assert [r["scenario"] for r in payload["rows"]] == list(SCENARIOS)
    for r in payload["rows"]:
        shift = REFERENCE_GAIN_DB[r["scenario"]] - OLD_GAIN_DB
        assert r["after"]["p50"] - r["before"]["p50"] == pytest.approx(shift, abs=1e-6)
    md = (tmp_path / "sionna_snr.md").read_text()
    assert all(f"{s.upper()} |  after" in md for s in SCENARIOS) and payload["commit"] in md


def test_ee_power_headroom_refuses_bad_arguments(capsys):
    from benchmarks.ee_power_headroom import main as headroom

    for argv, what in ((["--errors", "a,b"], "--errors must be comma-separated numbers"),
                       (["--samples", "1"], "--samples must be >= 2")):  # fmt: skip
        with pytest.raises(SystemExit) as e:
            headroom(argv)
        assert e.value.code == 2 and what in capsys.readouterr().err
