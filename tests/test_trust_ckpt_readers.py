"""Every reader of a run's checkpoints (`jaxbeam evaluate`, `jaxbeam finetune`, a restarted `jaxbeam pretrain`,
:func:`jaxbeam.train.load_params`) falls back past a truncated newest checkpoint with a warning, and stops with
one line naming the directory, nothing else on stderr, when none is readable.

Both tests read the shared smoke BERT run (``smoke_bert_run`` in tests/conftest.py: 2 epochs x 4 steps,
checkpoints 4 and 8) and damage a copy of it."""

import gc
import logging
import shutil
import sys

import jax
import pytest
from trained_runs import TRAINED_RUNS

from jaxbeam import train
from jaxbeam.cli import main

pytestmark = TRAINED_RUNS


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


@pytest.fixture
def pretrained(smoke_bert_run):
    """The shared smoke BERT run (2 epochs x 4 steps: checkpoints 4 and 8) and its labels; read-only."""
    run, labels = smoke_bert_run
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["4", "8"]
    return run, labels


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
