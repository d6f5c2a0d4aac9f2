"""The header every results file carries: date, commit, machine, device, command and versions."""

from __future__ import annotations

import datetime
import os
import platform
import subprocess


def _git(*args) -> str | None:
    try:
        return subprocess.run(["git", *args], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def commit() -> str | None:
    """``HEAD``'s hash, marked when tracked files differ from it."""
    head = _git("rev-parse", "HEAD")
    if head and _git("status", "--porcelain", "--untracked-files=no"):
        head += " (with uncommitted changes)"
    return head


def header(module: str, argv: list[str], **versions) -> dict:
    """``{date, commit, machine, device, command, versions}`` for a results file made by ``python -m module``."""
    import jax

    dev = jax.devices()[0]
    return {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": commit(),
        "machine": f"{platform.node()}, {platform.machine()}, {os.cpu_count()} cores, {platform.platform()}",
        "device": f"{dev.platform}: {getattr(dev, 'device_kind', '')} x {jax.device_count()}",
        "command": " ".join([f"python -m {module}", *argv]),
        "versions": {"jax": jax.__version__, "python": platform.python_version(), **versions},
    }


def markdown_header(title: str, head: dict) -> str:
    lines = [f"# {title}", ""]
    lines += [f"- {k}: {head[k]}" for k in ("date", "commit", "machine", "device", "command")]
    lines += ["- versions: " + ", ".join(f"{k} {v}" for k, v in head["versions"].items()), ""]
    return "\n".join(lines)
