"""The training jobs of the `jaxbeam` command end to end on the smoke preset, and their user errors."""

import dataclasses
import json

import jax
import numpy as np
import pytest
from trained_runs import SAO_RUN_ARGS, TRAINED_RUNS

import jaxbeam as jb
from jaxbeam.cli import main
from jaxbeam.data.format import load_labels
from jaxbeam.jobs import quickstart, runs
from jaxbeam.jobs.sao import load_sao, model_sum_rates


def _run_and_status(argv, capsys):
    try:
        code = main(argv)
    except SystemExit as e:  # argparse errors
        code = e.code
    return code, capsys.readouterr()


@pytest.mark.parametrize(
    "argv, message",
    [
        (["pretrain", "--preset", "laptop", "--workdir", "x"], "--preset must be one of"),
        (["pretrain", "--preset", "smoke", "--set", "nonsense=1", "--workdir", "x"], "unknown config field"),
        (["pretrain", "--preset", "smoke", "--set", "epochs=abc", "--workdir", "x"], "--set epochs"),
        (["pretrain", "--preset", "smoke", "--set", "epochs", "--workdir", "x"], "NAME=VALUE"),
        (["pretrain", "--preset", "smoke", "--K", "0", "--workdir", "x"], "positive integer"),
        (["pretrain", "--preset", "smoke", "--P", "-2", "--workdir", "x"], "positive number"),
        (["evaluate", "does/not/exist", "--labels", "x"], "not a training run directory"),
        (["pretrain", "--model", "sao", "--K", "3", "--workdir", "x"], "--K does not apply to --model sao"),
        (["pretrain", "--model", "sao_lift", "--set", "window=9", "--workdir", "x"], "window must be <="),
        (["pretrain", "--model", "sao", "--set", "K_schedule=4,40", "--workdir", "x"], "K_schedule must be"),
        (["pretrain", "--model", "sao", "--set", "step_size=0", "--workdir", "x"], "needs step_size > 0"),
        (["quickstart", "--model", "sao", "--steps", "3"], "--steps does not apply"),
        (["quickstart", "--set", "P=2"], "--set cannot change P in quickstart"),
        (["quickstart", "--set", "nonsense=1"], "unknown config field"),
        (["quickstart", "--model", "sao", "--set", "window=9"], "window must be <="),
        (["pretrain", "--set", "task_weighting=dwa", "--workdir", "x"], "task_weighting=dwa is for --model ubert"),
        (["pretrain", "--set", "task_weighting=greedy", "--workdir", "x"], "task_weighting must be 'equal' or 'dwa'"),
        (["pretrain", "--set", "domain=dft", "--workdir", "x"], "domain must be 'spatial' or 'angle'"),
    ],
)
def test_user_mistakes_exit_2_with_one_line(argv, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a mistake that got through would train into ./x, not into the repository
    code, out = _run_and_status(argv, capsys)
    assert code == 2
    assert message in out.err
    assert "Traceback" not in out.err


def test_pretrain_evaluate_finetune_and_label_mismatch(tmp_path, capsys):
    labels_dir = tmp_path / "labels"
    assert main(["label", "--utility", "sr", "--K", "3", "--N", "4", "--P", "1", "--samples", "160",
                 "--out", str(labels_dir), "--no-progress", "--chunk", "80"]) == 0  # fmt: skip
    # a data set whose K/N does not match the model is a user error, not a traceback
    code, out = _run_and_status(
        ["pretrain", "--preset", "smoke", "--labels", str(labels_dir), "--N", "5", "--workdir", str(tmp_path / "r")],
        capsys,
    )
    assert code == 2 and "(K, N) = (3, 4)" in out.err
    run = tmp_path / "run"
    argv = ["pretrain", "--preset", "smoke", "--labels", str(labels_dir), "--workdir", str(run)]
    # 3 optimizer steps per dispatch; the data set resident on the device (augmented there)
    argv += ["--set", "on_device=true", "--set", "steps_per_call=3", "--set", "epochs=2"]
    assert main(argv) == 0
    assert (run / "model" / "config.json").is_file()
    assert len((run / "model" / "metrics.jsonl").read_text().splitlines()) >= 2
    # the same workdir with another budget or config stops, naming what differs (no silent reuse)
    code, out = _run_and_status(argv[:-2] + ["--set", "epochs=3"], capsys)
    assert code == 2 and "config.train.epochs: stored 2, expected 3" in out.err
    code, out = _run_and_status(argv + ["--steps", "5"], capsys)
    assert code == 2 and "budget.steps" in out.err
    out_json = tmp_path / "eval.json"
    assert main(["evaluate", str(run / "model"), "--labels", str(labels_dir), "--out", str(out_json)]) == 0
    rows = json.loads(out_json.read_text())
    assert rows[0]["samples"] == int((load_labels(labels_dir).split_ids == 2).sum())
    assert rows[0]["wmmse"] == pytest.approx(100.0, abs=1e-3)  # SR labels are WMMSE's own beams
    assert 0 < rows[0]["bert"] < 100 and 0 < rows[0]["mrt"] < rows[0]["rzf"]
    code, out = _run_and_status(
        ["evaluate", str(run / "model"), "--labels", str(labels_dir), "--channel", "pathloss"], capsys
    )
    assert code == 2 and "label sets, which record their channel" in out.err
    # fine-tune to another antenna count: encoder loaded, embedding and head re-initialised
    ft = tmp_path / "ft"
    argv = ["finetune", str(run / "model"), "--N", "5", "--workdir", str(ft), "--epochs", "1", "--steps-per-epoch", "4"]
    assert main(argv + ["--set", "on_device=true"]) == 0  # channels drawn on the device
    assert json.loads((ft / "config.json").read_text())["system"]["N"] == 5
    assert json.loads((ft / "config.json").read_text())["train"]["on_device"] is True
    # LoRA and MoE-LoRA at the same N: the encoder frozen, adapters stored apart, `evaluate` merges them in
    for method in ("lora", "moe-lora"):
        d = tmp_path / method
        argv = ["finetune", str(run / "model"), "--workdir", str(d), "--epochs", "1", "--steps-per-epoch", "4"]
        assert main(argv + ["--method", method, "--rank", "2", "--experts", "2", "--utility", "mr"]) == 0
        assert (d / "adapters" / "adapters.npz").is_file()
        assert json.loads((d / "config.json").read_text())["adapter"]["experts"] == (2 if method == "moe-lora" else 0)
        assert main(["evaluate", str(d), "--labels", str(labels_dir), "--out", str(out_json)]) == 0
        assert 0 < json.loads(out_json.read_text())[0]["bert"] < 100
    code, out = _run_and_status(argv + ["--method", "lora", "--rank", "17", "--workdir", str(tmp_path / "r17")], capsys)
    assert code == 2 and "rank 17 exceeds the width of encoder/block_0/mha" in out.err
    code, out = _run_and_status(argv + ["--method", "frozen", "--rank", "4"], capsys)
    assert code == 2 and "--rank, --alpha and --experts are for --method lora" in out.err


def test_quickstart_runs_end_to_end_and_a_second_run_only_reevaluates(tmp_path):
    opts = quickstart.QuickstartOptions(
        preset="smoke",
        workdir=tmp_path,
        samples_per_power=80,
        kstar=(4,),
        kstar_samples_per_power=16,
        steps_per_model=12,
        utilities=("sr",),
        progress=False,
    )
    first = quickstart.run(opts)
    assert first["budget"]["steps"] == 12 and first["machine_dependent"] is False
    assert "12 steps" in (tmp_path / "quickstart.md").read_text()
    (run_dir,) = tmp_path.glob("bert_sr-*")
    assert [(r["K"], r["P"]) for r in first["rows"]] == [(3, 1.0), (3, 2.0), (3, 3.0), (4, 1.0), (4, 2.0), (4, 3.0)]
    for name in ("quickstart.md", "quickstart.json", "quickstart.png"):
        assert (tmp_path / name).stat().st_size > 0
    ckpt_files = sorted(p.relative_to(tmp_path) for p in run_dir.rglob("*") if p.is_file())
    second = quickstart.run(opts)
    for a, b in zip(first["rows"], second["rows"], strict=True):
        np.testing.assert_allclose([a["bert"], a["rzf"]], [b["bert"], b["rzf"]], rtol=1e-5)
    metrics = [p for p in ckpt_files if p.name == "metrics.jsonl"]
    assert metrics  # training wrote its log once; the second run added no training records
    again = sorted(p.relative_to(tmp_path) for p in run_dir.rglob("*") if p.is_file())
    assert again == ckpt_files
    # the same command in a fresh run directory trains again and gives the same numbers bit for bit (a fixed
    # step budget); its labels are copied there by hand, and are checked, not re-solved
    import shutil

    fresh = tmp_path / "fresh"
    shutil.copytree(tmp_path / "labels", fresh / "labels")
    third = quickstart.run(dataclasses.replace(opts, workdir=fresh))
    assert json.dumps(third["rows"]) == json.dumps(first["rows"])
    assert sorted(p.name for p in (fresh / "labels").iterdir()) == sorted(
        p.name for p in (tmp_path / "labels").iterdir()
    )


def test_a_clock_budget_is_labelled_machine_dependent(tmp_path):
    opts = quickstart.QuickstartOptions(preset="cpu", minutes_per_model=5.0)
    assert opts.budget(3) == {"minutes": 15.0, "machine_dependent": True}
    assert quickstart.QuickstartOptions(preset="cpu").budget() == {"steps": 16_000, "machine_dependent": False}
    with pytest.raises(ValueError, match="not both"):
        quickstart.QuickstartOptions(steps_per_model=10, minutes_per_model=1.0).budget()
    row = {"utility": "sr", "K": 6, "N": 12, "P": 1.0, "samples": 4, "label": 1.0, "bert": 90.0}
    budget = {**opts.budget(), "per_model": "a 5 min clock budget (results depend on the machine)"}
    quickstart.write_outputs(tmp_path, {"rows": [row], "budget": budget, "machine_dependent": True})
    assert "MACHINE-DEPENDENT" in (tmp_path / "quickstart.md").read_text()
    budget = {**quickstart.QuickstartOptions().budget(), "per_model": "16,000 steps"}
    quickstart.write_outputs(tmp_path, {"rows": [row], "budget": budget, "machine_dependent": False})
    assert "MACHINE-DEPENDENT" not in (tmp_path / "quickstart.md").read_text()
    code = main(["quickstart", "--steps", "5", "--minutes", "1", "--workdir", str(tmp_path / "x")])
    assert code == 2


def test_the_stated_duration_of_a_step_budget_uses_the_models_own_rate():
    """UBERT's step costs more than BERT's: its budget's stated minutes use its own assumed rate."""
    steps = runs.budget_record(steps=15_000)
    assert runs.cpu_rate(jb.models.UBERT(features=8, num_layers=1, num_heads=2)) == runs.UBERT_CPU_STEPS_PER_SECOND
    assert runs.cpu_rate(jb.models.BERT(12, features=8, num_layers=1, num_heads=2)) == runs.CPU_STEPS_PER_SECOND
    assert runs.describe_budget(steps, 35.0) == "15,000 steps (~7.1 min on a 2-core CPU at ~35 steps/s)"
    assert runs.describe_budget(steps) == "15,000 steps (~4.5 min on a 2-core CPU at ~55 steps/s)"
    assert runs.describe_budget(runs.budget_record(epochs=40)) == "40 epochs"


@TRAINED_RUNS
def test_sao_pretrain_then_evaluate_on_its_grid(sao_run, tmp_path, capsys, monkeypatch):
    """The shared ``sao_run`` (tests/conftest.py) is `jaxbeam pretrain --model sao_lift --preset smoke` with
    ``SAO_RUN_ARGS`` (one layer, stages (2, 3), (4, 3), 2 steps per dispatch); evaluated here on its grid."""
    run = sao_run.parent
    one = SAO_RUN_ARGS
    # two WMMSE-k rungs beside every grid point (each rung is one more program compiled per (K, N); the
    # record's code is the same for any number of them)
    monkeypatch.setattr("jaxbeam.jobs.sao.LADDER", (1, 50))
    capsys.readouterr()
    out_json = tmp_path / "grid.json"
    assert main(["evaluate", str(run / "model"), "--samples", "8", "--out", str(out_json)]) == 0
    rows = json.loads(out_json.read_text())
    assert [(r["K"], r["N"]) for r in rows] == [(2, 3), (4, 3)]
    for r in rows:  # the model and the references are evaluated on the same channels
        assert r["sao"] > 0 and r["wmmse"] >= r["rzf"] * 0.999 and (r["zf"] is None) == (r["K"] > r["N"])
    assert "SAO %" in capsys.readouterr().out
    code, out = _run_and_status(["evaluate", str(run / "model"), "--labels", "x"], capsys)
    assert code == 2 and "drop --labels" in out.err
    # --infer-steps: the model's column with Q_i = 0 gradient steps per layer, recomputed from the public path
    q0 = tmp_path / "q0.json"
    assert main(["evaluate", str(run / "model"), "--samples", "8", "--infer-steps", "0", "--out", str(q0)]) == 0
    assert "Q_i = 0 gradient steps" in capsys.readouterr().out
    cfg, params = load_sao(run / "model")
    for r, r0 in zip(rows, json.loads(q0.read_text()), strict=True):
        H = jb.rayleigh(jax.random.key(12345), (8,), r0["K"], r0["N"])
        np.testing.assert_allclose(r0["sao"], np.mean(model_sum_rates(cfg, params, H, steps=0)[0]), rtol=1e-5)
        assert r0["wmmse"] == r["wmmse"] and r0["sao"] != r["sao"]
    code, out = _run_and_status(["evaluate", str(run / "model"), "--infer-steps", "-1"], capsys)
    assert code == 2 and "--infer-steps" in out.err
    # another channel source: the references' columns recomputed on those channels (path loss, exponent 3)
    pl = tmp_path / "pathloss.json"
    argv = ["evaluate", str(run / "model"), "--samples", "8", "--channel", "pathloss", "--channel-arg", "exponent=3"]
    assert main(argv + ["--out", str(pl)]) == 0
    assert "pathloss, exponent=3 channels" in capsys.readouterr().out
    for r in json.loads(pl.read_text()):
        H = jb.pathloss(jax.random.key(12345), (8,), r["K"], r["N"], exponent=3.0)
        rzf = jb.sum_rate(H, jb.rzf(H, cfg.P, cfg.sigma2), cfg.sigma2)
        np.testing.assert_allclose(r["rzf"], np.mean(rzf), rtol=1e-5)
        assert r["wmmse"] >= r["rzf"] * 0.999 and r["sao"] > 0
    code, out = _run_and_status(argv[:-1] + ["radius"], capsys)
    assert code == 2 and "NAME=NUMBER" in out.err
    code, out = _run_and_status(argv[:-1] + ["height=3"], capsys)
    assert code == 2 and "no parameter(s) ['height']" in out.err
    # trained on path-loss channels: the run records them and is evaluated on them by default
    pl_run = tmp_path / "sao_pathloss"
    argv = ["pretrain", "--model", "sao_lift", "--preset", "smoke", "--workdir", str(pl_run), *one]
    assert main(argv + ["--set", "channel=pathloss"]) == 0
    assert load_sao(pl_run / "model")[0].channel == "pathloss"
    capsys.readouterr()
    assert main(["evaluate", str(pl_run / "model"), "--samples", "8"]) == 0
    assert "8 pathloss channels" in capsys.readouterr().out
