"""#19's experiment modules on the ``smoke`` preset: path-loss channels, transfer from Rayleigh, and the
scenario plumbing of the experiments' Context (per-antenna labels, models and references are checked here by
their identities and in test_antenna_power.py; the cpu run trains them).

They share one cache (one xdist group, file order): the transfer run reuses the scenario run's path-loss models.
"""

import importlib

import pytest
from experiment_checks import check_results_files

from experiments.common import Context

pytestmark = pytest.mark.xdist_group("channel_experiments")


@pytest.fixture(scope="module")
def dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("channel_experiments")
    return root / "runs", root / "results"


def _run(name, dirs):
    runs, results = dirs
    module = importlib.import_module(f"experiments.{name}")
    report = module.main(["--preset", "smoke", "--runs", str(runs), "--results", str(results), "--quiet"])
    return check_results_files(name, report, results)["raw"]


def test_channel_scenarios_on_smoke(dirs):
    (row,) = _run("channel_scenarios", dirs)  # smoke: the first scenario and utility only
    assert (row["channel"], row["power"], row["utility"]) == ("pathloss", "total", "sr")
    assert row["wmmse"] == pytest.approx(100.0, abs=1e-3)  # SR labels are WMMSE's beams
    assert all(0.0 < row[k] <= 100.0 + 1e-3 for k in ("mrt", "rzf", "rzf_bal", "bert", "ubert")), row


def test_channel_transfer_on_smoke(dirs):
    (row,) = _run("channel_transfer", dirs)
    assert row["target"] == "pathloss" and row["wmmse"] == pytest.approx(100.0, abs=1e-3)
    models = {k: v for k, v in row.items() if k.endswith(("zero-shot", "fine-tuned", "on target"))}
    assert len(models) == 6 and all(0.0 < v < 150.0 for v in models.values()), row  # BERT and UBERT, 3 each


def test_scenarios_are_cached_apart_and_rayleigh_keeps_its_keys(tmp_path):
    base = Context("cpu", tmp_path)
    assert base.variant().label_identity("sr", 6, 12) == base.label_identity("sr", 6, 12)
    keys = {
        (ch, pw): Context("cpu", tmp_path, channel=ch, power=pw).pretrained_dir("bert", "sr", 6, 12)
        for ch in ("rayleigh", "pathloss") for pw in ("total", "antenna")
    }  # fmt: skip
    assert keys[("rayleigh", "total")] == base.pretrained_dir("bert", "sr", 6, 12) and len(set(keys.values())) == 4
    assert base.variant(power="antenna").label_args("mr", 6, 12)["solver"] == "sca-antenna"
    test = base.variant(power="antenna").label_args("sr", 6, 12, test=True)  # the % denominators: to convergence
    assert (test["solver"], test["chunk_size"]) == ("wmmse-antenna-strict", test["samples"])
    assert "chunk_size" not in base.label_args("sr", 6, 12, test=True)  # total power: as before
    per_antenna = base.variant(power="antenna")  # its UBERT ends in the per-antenna set (it did not: #19)
    assert per_antenna.ubert(per_antenna.config("sr", 6, 12)).power == "antenna" and base.ubert().power == "total"
    with pytest.raises(ValueError, match="channel must be one of"):
        Context("cpu", tmp_path, channel="rayleigh2")
    with pytest.raises(ValueError, match="power must be 'total' or 'antenna'"):
        Context("cpu", tmp_path, power="column")
