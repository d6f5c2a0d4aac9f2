"""A small training run in its own process, for the kill-and-resume tests (tests/test_resume.py).

    python tests/resume_worker.py ROOT JOB [JOB ...]

runs each JOB in turn in the run directory ROOT/JOB and writes ROOT/JOB.npz at its end. A JOB is
``bert`` (supervised BERT pre-training, eq. 17), ``ubert`` (UBERT on balanced multi-task batches,
Algorithm 1, eq. 30) or ``finetune`` (unsupervised fine-tuning of BERT from given parameters with a
frozen encoder, eq. 18). Each run resumes from its directory if it holds a checkpoint. Before every training
batch is handed to the engine the process prints ``BATCH <job> <global step>`` (flushed), so that a test
can kill it at a chosen point; at the end of a job it writes the final parameters, best parameters, best
metric and history (minus timing) to ROOT/JOB.npz (atomically). One CPU device, smoke sizes; with
``JAXBEAM_TEST_JAX_CACHE`` set, compiled programs are cached there (restarts skip most compilation).
"""

import json
import os
import sys

os.environ.setdefault("XLA_FLAGS", "")

import jax  # noqa: E402

jax.config.update("jax_num_cpu_devices", 1)
if os.environ.get("JAXBEAM_TEST_JAX_CACHE"):
    jax.config.update("jax_compilation_cache_dir", os.environ["JAXBEAM_TEST_JAX_CACHE"])
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)

import numpy as np  # noqa: E402

import jaxbeam as jb  # noqa: E402
from jaxbeam import train  # noqa: E402
from jaxbeam.data.format import LabelSet, split_ids  # noqa: E402
from jaxbeam.train import losses  # noqa: E402
from jaxbeam.train.losses_multitask import make_multitask_loss  # noqa: E402

K, N, S = 3, 4, 60  # 48 training samples
CHECKPOINT_EVERY = 2


def labels(seed):
    H = np.asarray(jb.rayleigh(jax.random.key(seed), (S,), K, N))
    P = np.ones(S, np.float32)
    W = np.asarray(jb.rzf(H, P, 0.1))  # a stand-in label solver: fast and deterministic
    return LabelSet(H=H, W=W, P=P, U=np.asarray(jb.sum_rate(H, W, 0.1)), split_ids=split_ids(S, seed), meta={})


class Announced:
    """A source that prints ``BATCH <job> <global step>`` before each batch it yields."""

    def __init__(self, name, source):
        self.name, self.source, self.steps_per_epoch = name, source, source.steps_per_epoch

    def epoch(self, e, *, start=0):
        for i, batch in enumerate(self.source.epoch(e, start=start), start):
            print(f"BATCH {self.name} {e * self.steps_per_epoch + i}", flush=True)
            yield batch


def job(name):
    bert = jb.models.BERT(num_antennas=N, features=16, num_layers=2, num_heads=2)
    ls = labels(0)
    if name == "bert":
        src = train.ArraySource(train.label_arrays(ls.split("train")), 8, seed=3)
        loss = losses.make_loss("sr", supervised=True, lambda1=1.0, lambda2=0.1)
        return bert, loss, src, dict(epochs=2, learning_rate=3e-3, val=train.label_arrays(ls.split("val")))
    if name == "ubert":
        model = jb.models.UBERT(features=16, num_layers=2, num_heads=2)
        sets = {t: labels(i) for i, t in enumerate(jb.TASKS)}
        src = train.MultiTaskSource({t: x.split("train") for t, x in sets.items()}, 12, seed=4)
        val = train.multitask_arrays(sets, "val")
        return model, make_multitask_loss(), src, dict(epochs=2, learning_rate=3e-3, val=val)
    if name == "finetune":
        init = bert.init(jax.random.key(7), ls.H[:1], ls.P[:1])["params"]
        src = train.ArraySource(train.label_arrays(ls.split("train"), with_labels=False), 8, seed=5)
        kw = dict(epochs=2, learning_rate=1e-2, init_params=init, trainable_labels=train.trainable_labels(init))
        val = train.label_arrays(ls.split("val"), with_labels=False)
        return bert, losses.make_loss("sr", supervised=False), src, {**kw, "val": val}
    raise SystemExit(f"unknown job {name!r}")


def flat(tree):
    return {jax.tree_util.keystr(p): np.asarray(x) for p, x in jax.tree_util.tree_flatten_with_path(tree)[0]}


def run(root, name):
    model, loss_fn, src, kw = job(name)
    workdir = os.path.join(root, name)
    res = train.fit(
        model, loss_fn, Announced(name, src), workdir=workdir, checkpoint_every=CHECKPOINT_EVERY, log_every=1,
        progress=False, **kw,
    )  # fmt: skip
    history = [{k: v for k, v in r.items() if k != "train_seconds"} for r in res.history]
    arrays = {f"final{k}": v for k, v in flat(jax.device_get(res.state)).items()}
    arrays.update({f"best{k}": v for k, v in flat(res.best_params).items()})
    arrays["best_metric"] = np.float64(res.best_metric)
    arrays["history"] = np.asarray(json.dumps(history))
    tmp = os.path.join(root, f"{name}.tmp.npz")
    np.savez(tmp, **arrays)
    os.replace(tmp, os.path.join(root, f"{name}.npz"))


if __name__ == "__main__":
    print("READY", flush=True)
    for name in sys.argv[2:]:
        run(sys.argv[1], name)
    print("DONE", flush=True)
