"""`jaxbeam evaluate` on a UBERT MoE-LoRA fine-tuning: each task is scored with its own expert mix."""

import json

import jax
import numpy as np

import jaxbeam as jb
from jaxbeam import configs
from jaxbeam.cli import main
from jaxbeam.data.format import LabelSet, save_labels, split_ids
from jaxbeam.jobs.builders import ubert_model
from jaxbeam.jobs.evaluate import performance_rows
from jaxbeam.jobs.pretrain import finetune_ubert, task_params
from jaxbeam.models import lora


def _labels(utility, S, K, N, seed):
    """Stand-in label sets (RZF beams, EE at half power): fast and deterministic."""
    H = np.asarray(jb.rayleigh(jax.random.key(seed), (S,), K, N))
    P = np.ones(S, np.float32)
    W = np.asarray(jb.rzf(H, P, 0.1)) * (0.5 if utility == "ee" else 1.0)
    U = np.asarray(jb.utility(utility, H, W, 0.1))
    return LabelSet(H=H, W=W, P=P, U=U, split_ids=split_ids(S, seed), meta={"utility": utility, "solver": "rzf"})


def test_evaluate_scores_a_ubert_moe_lora_run_per_task(tmp_path, capsys):
    cfg = configs.get_preset("smoke", features=8, num_layers=1, epochs=1)
    model = ubert_model(cfg)
    H, P = jb.rayleigh(jax.random.key(5), (6,), 4, 6), np.ones(6, np.float32)
    base = jax.device_get(model.init(jax.random.key(3), H, P, np.zeros(6, np.int32))["params"])  # any base
    sets = {u: _labels(u, 90, 4, 6, seed=1) for u in jb.TASKS}
    adapter = lora.LoRAConfig(rank=2, experts=2)
    tuned = finetune_ubert(cfg, sets, tmp_path / "ft", base, epochs=2, learning_rate=1e-2, adapter=adapter,
                           progress=False)  # fmt: skip
    dirs = [str(save_labels(tmp_path / u, sets[u])) for u in jb.TASKS]
    out = tmp_path / "rows.json"
    assert main(["evaluate", str(tmp_path / "ft"), "--labels", *dirs, "--out", str(out)]) == 0
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
    code = main(["finetune", str(tmp_path / "ft"), "--workdir", str(tmp_path / "ft2"), "--epochs", "1"])
    err = capsys.readouterr().err
    assert code == 2 and "mix per task" in err and "Traceback" not in err, err
