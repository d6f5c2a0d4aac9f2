"""``experiments.all --dry-run``: the cost plan's step counts, FLOP-based projection and measured mode."""

import math

import pytest

from experiments import all as all_experiments
from experiments.plan import Accelerator, format_plan, plan, steps_per_budget
from experiments.settings import BUDGETS


def test_step_counts_follow_the_budgets():
    # paper: 100 epochs of 80 % of 3 x 80,000 samples at batch 32; cpu: its fixed 5,000 steps
    assert steps_per_budget(BUDGETS["paper"], 32) == 100 * math.ceil(0.8 * 240_000 / 32) == 600_000
    assert steps_per_budget(BUDGETS["cpu"], 64) == 5000


def test_projection_is_flops_over_stated_peak_and_sums_per_experiment(capsys):
    acc = Accelerator("test chip", {"float32": 2.0, "bfloat16": 4.0}, 0.5)
    exps = {"a": (2, 0), "b": (1, 3)}
    p = plan("smoke", BUDGETS["smoke"], exps, accelerator=acc, measure=False)
    big = p["systems"][1]
    assert (big["K"], big["N"]) == (8, 16) and big["flops_per_step"] > p["systems"][0]["flops_per_step"] > 0
    assert big["seconds_per_step"] == pytest.approx(big["flops_per_step"] / (2.0e12 * 0.5))
    assert "steps_per_s" not in big  # nothing ran
    per_budget, per_ft = p["steps_per_budget"], p["steps_per_finetune"]
    assert [r["steps"] for r in p["rows"]] == [2 * per_budget, per_budget + 3 * per_ft]
    assert p["total_minutes"] == pytest.approx(sum(r["steps"] for r in p["rows"]) * big["seconds_per_step"] / 60)
    assert "projected: test chip" in format_plan(p)
    with pytest.raises(ValueError, match="utilisation"):
        plan("smoke", BUDGETS["smoke"], exps, accelerator=Accelerator("x", {"float32": 1.0}, 0.0))


def test_dry_run_measures_on_this_machine_for_a_cpu_sized_preset_and_runs_nothing(tmp_path, capsys):
    assert all_experiments.main(["--preset", "smoke", "--dry-run", "--results", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "ms per step (measured on cpu)" in out and "fig3_pretraining" in out and "SAO models" in out
    assert not any(tmp_path.iterdir())  # no experiment ran
