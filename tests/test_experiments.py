"""Every paper experiment module end to end on the ``smoke`` preset (tiny data and models).

The modules share one cache of labels and models, as ``experiments.all`` does, so they run in one xdist
group (one worker, in file order): later experiments reuse what earlier ones trained, which is what the
cache is for, and no two processes write the same cached run.

On the smoke preset an experiment costs its compilations (every model kind, (K, N) and solver), 17 s to
7 min each and 39 min for all twelve on a busy 2-core CPU (Table I alone 326 s): CI runs :data:`IN_CI`
(labels, BERT pre-training and frozen-encoder fine-tuning through the Context, evaluation beside the
references, the results files, the cache reused) and the rest is marked ``slow``
(``pytest -m slow tests/test_experiments.py``). UBERT's and the baselines' training paths are tested in
CI by test_multitask.py, test_baselines.py and test_cli_jobs.py.
"""

import importlib
import json

import pytest
from experiment_checks import check_results_files

from experiments.all import EXPERIMENTS, estimate_minutes
from experiments.common import ADAPTERS, REF_HEADER

pytestmark = pytest.mark.xdist_group("experiments")


@pytest.fixture(scope="module")
def dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("experiments")
    return root / "runs", root / "results"


IN_CI = ("table4_cross_task",)


@pytest.mark.parametrize("name", [pytest.param(n, marks=() if n in IN_CI else pytest.mark.slow) for n in EXPERIMENTS])
def test_experiment_runs_on_smoke_and_writes_its_results(name, dirs):
    runs, results = dirs
    module = importlib.import_module(f"experiments.{name}")
    report = module.main(["--preset", "smoke", "--runs", str(runs), "--results", str(results), "--quiet"])
    payload = check_results_files(name, report, results)
    # every table carries RZF, RZF_BAL and WMMSE beside its models, and reports their numbers
    assert all(h in report.header or h.removesuffix(" %") in report.header for h in REF_HEADER), report.header
    raw = payload["raw"] if isinstance(payload["raw"], list) else payload["raw"]["table"]
    assert all(0.0 < r["rzf_bal"] < 150.0 for r in raw if "rzf_bal" in r) and any("rzf_bal" in r for r in raw)
    if name == "table7_multi_task_loss":  # both losses with our head and with the paper's element head, DWA
        assert {(r["loss"], r["head"], r["weighting"]) for r in raw} == {
            (x, h, "equal") for x in ("proposed", "sum") for h in ("balanced", "element")
        } | {("proposed", "balanced", "dwa")}
    if name in ("table4_cross_task", "table5_scenario_finetuning", "fig5_few_shot"):  # #18's adapter columns
        assert all(0.0 < r[c] < 150.0 for r in raw for c in ADAPTERS), raw
    # the references are computed on the same samples: WMMSE is the SR label solver itself
    for row in raw:
        if row.get("utility") == "sr" and "wmmse" in row and row.get("mu_db") is None:
            assert row["wmmse"] == pytest.approx(100.0, abs=1e-3)


def test_cache_is_reused_across_experiments(dirs):
    """A second run of an experiment trains nothing: every model and label set comes from the cache."""
    runs, results = dirs
    argv = ["--preset", "smoke", "--runs", str(runs), "--results", str(results), "--quiet"]
    module = importlib.import_module("experiments.table4_cross_task")
    first = module.main(argv)  # trains whatever an earlier experiment of this session did not

    def snapshot():  # run configs are rewritten (same content) when a finished run is opened again
        files = [p for p in runs.rglob("*") if p.is_file() and p.name != "metrics.jsonl"]
        return {p: p.read_text() if p.name == "config.json" else p.stat().st_mtime_ns for p in files}

    before = snapshot()
    second = module.main(argv)
    assert snapshot() == before  # no checkpoint, label chunk or config written again
    assert second.rows == first.rows  # the same models give the same table
    assert len(list((runs / "models").glob("bert_sr_8x16_P1-2-3_supervised-*"))) == 1  # keyed by its identity


def test_all_states_a_run_time_estimate():
    from experiments.common import BUDGETS

    assert estimate_minutes("cpu") > estimate_minutes("smoke") > 0
    # step budgets: 99 model budgets of 5,000 steps at 55 steps/s (+ 0.5 min each) and 48 fine-tunings of 1 min
    assert estimate_minutes("cpu") == pytest.approx(99 * (5000 / 55 / 60 + 0.5) + 48 * 1.0)
    half = BUDGETS["cpu"].__class__(**{**BUDGETS["cpu"].__dict__, "steps": 2500})
    assert estimate_minutes("cpu", half) < estimate_minutes("cpu")


def test_step_and_clock_budgets_from_the_command_line(tmp_path):
    from experiments.common import BUDGETS, budget_from_args, parse_args

    assert budget_from_args(parse_args("x", "doc", ["--preset", "cpu"])).train_budget() == {
        "steps": BUDGETS["cpu"].steps,
        "machine_dependent": False,
    }
    b = budget_from_args(parse_args("x", "doc", ["--preset", "cpu", "--steps", "700"]))
    assert b.train_budget(3) == {"steps": 2100, "machine_dependent": False}
    b = budget_from_args(parse_args("x", "doc", ["--preset", "cpu", "--minutes", "1.5"]))
    assert b.train_budget() == {"minutes": 1.5, "machine_dependent": True}
    for bad in (["--steps", "0"], ["--minutes", "0"], ["--steps", "5", "--minutes", "1"]):
        with pytest.raises(SystemExit):
            parse_args("x", "doc", bad)


@pytest.mark.slow  # 2 min of compilations on a 2-core CPU
def test_bert_pretrain_cpu_runs_on_smoke_and_reports_the_references(tmp_path):
    from experiments import bert_pretrain_cpu

    out = tmp_path / "out.json"
    argv = ["--preset", "smoke", "--minutes", "0.02", "--samples", "40", "--kstar-samples", "8"]
    assert bert_pretrain_cpu.main(argv + ["--runs", str(tmp_path), "--out", str(out), "--quiet"]) == 0
    payload = json.loads(out.read_text())
    assert set(payload["bert_perf_best_weights"]) == {"5", "6", "7"}
    for K in ("5", "6", "7"):  # SR labels are WMMSE's beams; RZF sits just below them at 10 dB SNR
        assert 90.0 < payload["rzf_perf"][K] <= 100.5 and 0.0 < payload["rzf_bal_perf"][K] <= 100.5
    assert payload["curve"] and payload["cpu_count"] >= 1


@pytest.mark.slow  # 8 min on a busy 2-core CPU; CI covers its paths in test_cli_jobs, test_lora, test_multitask
def test_finetune_methods_runs_on_smoke_with_every_method(tmp_path):
    from experiments import finetune_methods

    argv = ["--preset", "smoke", "--runs", str(tmp_path / "runs"), "--results", str(tmp_path / "res"), "--quiet"]
    report = finetune_methods.main(argv)
    payload = check_results_files("finetune_methods", report, tmp_path / "res")
    rows = {r["method"]: r for r in payload["raw"] if r["kind"] == "bert"}
    assert set(rows) == set(finetune_methods.METHODS) | {next(iter(finetune_methods.SWEEP))}  # smoke: one sweep
    full, frozen, lora_row = rows["full"], rows["frozen encoder"], rows["LoRA r = 8"]
    assert rows["LoRA r = 2"]["trainable"] < lora_row["trainable"]
    assert frozen["trainable"] < lora_row["trainable"] < rows["MoE-LoRA r = 8, 4 experts"]["trainable"]
    assert frozen["trainable"] < full["trainable"] and all(0 < r["model"] < 100 for r in rows.values())
    assert all(r["wmmse"] == pytest.approx(100.0, abs=1e-3) for r in rows.values())  # SR: WMMSE labels
    ubert = {r["method"]: r for r in payload["raw"] if r["kind"] == "ubert"}
    assert set(ubert) == set(finetune_methods.UBERT_METHODS) and all(0 < r["model"] < 150 for r in ubert.values())
    # the adapters alone train (the smoke UBERT is so small that 4 experts of rank 8 outnumber its weights)
    n = {m: r["trainable"] for m, r in ubert.items()}
    assert n["LoRA r = 8"] < min(n["MoE-LoRA r = 8, 4 experts"], n["full"])


@pytest.mark.slow  # 3 min on a busy 2-core CPU: ten smoke fine-tunings
def test_finetune_gap_rows_change_only_what_they_say(tmp_path):
    """The diagnosis rows of #18 item 6: at a learning rate of ~0 each fine-tuning returns its starting point, so
    the start shows what a row changed: nothing (same N), the N-dependent layers (re-initialised), all (none)."""
    import jax
    import numpy as np

    from experiments import finetune_gap
    from experiments.common import Context

    ctx = Context("smoke", tmp_path / "runs", progress=False)
    pre = ctx.pretrained("bert", "sr", *finetune_gap.SOURCE)
    K, N = finetune_gap.SAME_N
    same = lambda a, b: all(np.allclose(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True))  # noqa: E731
    tuned = {kw: finetune_gap._finetune(ctx, pre, "sr", K, N, lr_scale=1e-9, **dict([kw]))[1] for kw in (
        ("reinit", False), ("reinit", True), ("scratch", True))}  # fmt: skip
    p0 = jax.device_get(pre[1])
    assert same(tuned[("reinit", False)], p0)
    assert same(tuned[("reinit", True)]["encoder"], p0["encoder"]) and not same(
        tuned[("reinit", True)]["head"], p0["head"]
    )
    assert not same(tuned[("scratch", True)]["encoder"], p0["encoder"])
    # LP-FT's first stage trains the new layers alone: the encoder leaves it as pre-trained
    probed = finetune_gap._finetune(ctx, pre, "sr", *finetune_gap.TARGET, factor=0.5, frozen=True)[1]
    assert same(probed["encoder"], p0["encoder"]) and probed["head"]["kernel"].shape != p0["head"]["kernel"].shape
    argv = ["--preset", "smoke", "--runs", str(tmp_path / "runs"), "--results", str(tmp_path / "res"), "--quiet"]
    report = finetune_gap.main(argv)
    raw = check_results_files("finetune_gap", report, tmp_path / "res")["raw"]
    assert [r["row"] for r in raw] == [row[0] for row in finetune_gap.ROWS]
    assert all(0 < r["bert"] < 100 and r["wmmse"] == pytest.approx(100.0, abs=1e-3) for r in raw)


def test_map_antennas_copies_each_new_antenna_from_an_old_one():
    """finetune_gap's mapped layers: antenna n of the N' = 5 model is antenna n mod 3 of the N = 3 one (real
    and imaginary rows of the embedding, scaled by sqrt(3 / 5); the output layer's columns as they are), the
    encoder untouched, and the mapped parameters run a BERT at N' = 5."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    import jaxbeam as jb
    from experiments.finetune_gap import map_antennas

    bert = lambda N: jb.models.BERT(num_antennas=N, features=8, num_layers=1, num_heads=2)  # noqa: E731
    H = jb.rayleigh(jax.random.key(0), (2,), 2, 3)
    p = jax.device_get(bert(3).init(jax.random.key(1), H, jnp.ones(2))["params"])
    q = map_antennas(p, 5)
    E, E5 = p["embed"]["fc"]["kernel"], q["embed"]["fc"]["kernel"]
    for n in range(5):
        for part in (0, 1):  # real, imaginary
            np.testing.assert_allclose(E5[part * 5 + n], E[part * 3 + n % 3] * np.sqrt(3 / 5), rtol=1e-6)
            np.testing.assert_array_equal(
                q["head"]["kernel"][:, part * 5 + n], p["head"]["kernel"][:, part * 3 + n % 3]
            )
            assert q["head"]["bias"][part * 5 + n] == p["head"]["bias"][part * 3 + n % 3]
    same = lambda a, b: jax.tree.all(jax.tree.map(np.array_equal, a, b))  # noqa: E731
    assert same(q["encoder"], p["encoder"]) and same(q["embed"]["ln"], p["embed"]["ln"])
    H5 = jb.rayleigh(jax.random.key(2), (2,), 2, 5)
    assert bert(5).apply({"params": q}, H5, jnp.ones(2)).shape == (2, 2, 5)
    assert same(map_antennas(p, 3), p)  # the same N: unchanged


def test_finetune_budget_overrides_reach_the_context_and_are_cached_apart(tmp_path):
    from experiments.common import BUDGETS, Context, budget_from_args, parse_args

    plain = Context("cpu", tmp_path, budget=budget_from_args(parse_args("x", "doc", ["--preset", "cpu"])))
    assert plain.budget == BUDGETS["cpu"] and plain._ft_tag() == ""  # the preset's runs keep their cache
    args = parse_args("x", "doc", ["--preset", "cpu", "--finetune-epochs", "20", "--finetune-lr", "5e-4"])
    ctx = Context("cpu", tmp_path, budget=budget_from_args(args))
    assert (ctx.budget.finetune_epochs, ctx.budget.finetune_lr) == (20, 5e-4)
    assert ctx.budget.samples_per_power == BUDGETS["cpu"].samples_per_power
    assert ctx._ft_tag() == "_e20_lr0.0005"
    # a longer pre-training (finetune_gap's last rows) is cached apart; factor 1 is the budget's own model
    d = plain.pretrained_dir("bert", "sr", 6, 12)
    assert plain.pretrained_dir("bert", "sr", 6, 12, budget_factor=1) == d
    assert plain.pretrained_dir("bert", "sr", 6, 12, budget_factor=4) != d
    same = parse_args("x", "doc", ["--preset", "cpu", "--finetune-epochs", str(BUDGETS["cpu"].finetune_epochs)])
    assert Context("cpu", tmp_path, budget=budget_from_args(same))._ft_tag() == ""  # the preset's value: same cache
    for bad in (["--finetune-epochs", "0"], ["--finetune-lr", "-1"]):
        with pytest.raises(SystemExit):
            parse_args("x", "doc", bad)
