"""`jaxbeam evaluate` on a UBERT MoE-LoRA fine-tuning: each task is scored with its own expert mix.

The fine-tuning is the shared ``ubert_moe_lora_run`` (tests/conftest.py: rank 2, 2 experts, 2 epochs at lr
1e-2, of a random smoke-sized base, on stand-in label sets of every task at (K, N) = (4, 6))."""

import json

import jax
import numpy as np
from trained_runs import TRAINED_RUNS

import jaxbeam as jb
from jaxbeam.cli import main
from jaxbeam.data.format import save_labels
from jaxbeam.jobs.evaluate import performance_rows
from jaxbeam.jobs.pretrain import task_params

pytestmark = TRAINED_RUNS


def test_evaluate_scores_a_ubert_moe_lora_run_per_task(ubert_moe_lora_run, tmp_path, capsys):
    run = ubert_moe_lora_run
    cfg, model, sets, adapter, tuned = run["cfg"], run["model"], run["sets"], run["adapter"], run["tuned"]
    dirs = [str(save_labels(tmp_path / u, sets[u])) for u in jb.TASKS]
    out = tmp_path / "rows.json"
    assert main(["evaluate", str(run["dir"]), "--labels", *dirs, "--out", str(out)]) == 0
    rows = json.loads(out.read_text())
    assert [r["utility"] for r in rows] == list(jb.TASKS)
    capsys.readouterr()
    for u, row in zip(jb.TASKS, rows, strict=True):
        t = jb.TASKS.index(u)
        test = sets[u].split("test")
        scores = [
            performance_rows(u, test, cfg.system.sigma2, cfg.system.Pc, model=model, references=(),
                             params=task_params(tuned, adapter, mix), task=t, model_name="ubert")[0]["ubert"]
            for mix in range(3)
        ]  # fmt: skip
        assert row["ubert"] == scores[t], (u, row["ubert"], scores)  # the task's own mix, bit for bit
    # and the mixes are different models (so scoring every task with one merge would have been wrong)
    merged = [task_params(tuned, adapter, t) for t in range(3)]
    for a, b in ((0, 1), (0, 2), (1, 2)):
        pairs = zip(jax.tree.leaves(merged[a]), jax.tree.leaves(merged[b]), strict=True)
        assert any(not np.array_equal(x, y) for x, y in pairs)
    # fine-tuning from such a run has no single set of parameters: one line, no traceback
    code = main(["finetune", str(run["dir"]), "--workdir", str(tmp_path / "ft2"), "--epochs", "1"])
    err = capsys.readouterr().err
    assert code == 2 and "mix per task" in err and "Traceback" not in err, err
