"""Every reader of a run's checkpoints (`jaxbeam evaluate`, `jaxbeam finetune`, a restarted `jaxbeam pretrain`,
:func:`jaxbeam.train.load_params`) falls back past a truncated newest checkpoint with a warning, and stops with
one line naming the directory, nothing else on stderr, when none is readable."""

import gc
import logging
import shutil
import sys

import jax
import numpy as np
import pytest

import jaxbeam as jb
from jaxbeam import train
from jaxbeam.cli import main
from jaxbeam.data.format import LabelSet, save_labels, split_ids


def _labels(S=80, seed=0):
    """Stand-in SR labels at the smoke preset's (K, N) = (3, 4) (RZF beams): 64 training samples, 4 steps an epoch."""
    H = np.asarray(jb.rayleigh(jax.random.key(seed), (S,), 3, 4))
    P = np.ones(S, np.float32)
    W = np.asarray(jb.rzf(H, P, 0.1))
    U = np.asarray(jb.sum_rate(H, W, 0.1))
    return LabelSet(H=H, W=W, P=P, U=U, split_ids=split_ids(S, seed), meta={"utility": "sr", "solver": "rzf"})


def _truncate(step_dir):
    """Cut every array file of a checkpoint step to half its size (a disk that filled up, a copy cut short)."""
    files = [p for p in (step_dir / "arrays").rglob("*") if p.is_file() and "/d/" in str(p)]
    assert files
    for f in files:
        f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])


@pytest.fixture
def unraisable(monkeypatch):
    """Exceptions reported through ``sys.unraisablehook`` (printed as tracebacks outside pytest)."""
    seen = []
    monkeypatch.setattr(sys, "unraisablehook", lambda u: seen.append(u.exc_value))
    return seen


def _noise(caplog, unraisable):
    """What an abandoned read left behind: asyncio's 'Task exception was never retrieved' and unraisable
    exceptions (both tracebacks on the user's terminal)."""
    gc.collect()  # the abandoned tasks report when they are collected
    logged = [r.getMessage()[:200] for r in caplog.records if r.levelno >= logging.ERROR]
    return logged + [repr(e)[:200] for e in unraisable]


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    """A smoke-preset BERT run of 2 epochs x 4 steps (checkpoints 4 and 8) and its labels; read-only."""
    root = tmp_path_factory.mktemp("pretrained")
    labels = save_labels(root / "labels", _labels())
    assert main(["pretrain", "--preset", "smoke", "--labels", str(labels), "--workdir", str(root / "run")]) == 0
    ck = root / "run" / "model" / "checkpoints"
    assert sorted(p.name for p in ck.iterdir()) == ["4", "8"]
    return root / "run" / "model", labels


def test_every_reader_falls_back_past_a_truncated_newest_checkpoint(pretrained, tmp_path, caplog, unraisable):
    src, labels = pretrained
    run = tmp_path / "model"
    shutil.copytree(src, run)
    ck = run / "checkpoints"
    _truncate(ck / "8")
    with pytest.warns(UserWarning, match=f"{ck / '8'} is unreadable.*loaded step 4"):
        best = train.load_params(run)
    assert jax.tree.structure(best) == jax.tree.structure(train.load_params(src))
    out = tmp_path / "rows.json"
    with pytest.warns(UserWarning, match=f"{ck / '8'} is unreadable"):
        assert main(["evaluate", str(run), "--labels", str(labels), "--out", str(out)]) == 0
    assert out.is_file()
    argv = ["finetune", str(run), "--workdir", str(tmp_path / "ft"), "--epochs", "1", "--steps-per-epoch", "2"]
    with pytest.warns(UserWarning, match=f"{ck / '8'} is unreadable"):
        assert main(argv) == 0
    assert sorted(p.name for p in ck.iterdir()) == ["4", "8"]  # readers delete nothing; a resume would
    assert _noise(caplog, unraisable) == []


def test_every_reader_stops_with_one_line_naming_the_directory(pretrained, tmp_path, capfd, caplog, unraisable):
    src, labels = pretrained
    run = tmp_path / "run" / "model"
    shutil.copytree(src.parent, run.parent)
    ck = run / "checkpoints"
    for step in ("4", "8"):
        _truncate(ck / step)
    with pytest.raises(train.CheckpointError, match=f"no readable checkpoint under {ck}"):
        train.load_params(run)
    capfd.readouterr()
    commands = {
        "evaluate": ["evaluate", str(run), "--labels", str(labels)],
        "finetune": ["finetune", str(run), "--workdir", str(tmp_path / "ft"), "--epochs", "1"],
        "pretrain": ["pretrain", "--preset", "smoke", "--labels", str(labels), "--workdir", str(run.parent)],
    }
    for name, argv in commands.items():
        assert main(argv) == 2, name
        gc.collect()
        err = capfd.readouterr().err
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"jaxbeam {name}: error: no readable checkpoint under {ck}:")
    assert _noise(caplog, unraisable) == []
    assert sorted(p.name for p in ck.iterdir()) == ["4", "8"]  # an unreadable run is not deleted
