"""Docs that cannot rot: every ``python`` code block of README.md and docs/*.md runs (each page in one fresh
interpreter, its blocks in order), every relative link of README.md and docs/ resolves, and nothing refers to a
file outside the repository."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]  # docs/notes/ holds history: links only
LINKED = [*PAGES, *sorted((ROOT / "docs").glob("notes/*.md")), *sorted((ROOT / "results").glob("*.md"))]
BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def python_blocks(page: Path) -> list[str]:
    return BLOCK.findall(page.read_text())


@pytest.mark.parametrize("page", [p for p in PAGES if python_blocks(p)], ids=lambda p: p.relative_to(ROOT).as_posix())
def test_code_blocks_run(page, tmp_path):
    code = "\n\n".join(python_blocks(page))
    p = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, f"{page.name}:\n{p.stderr[-3000:]}"


def test_relative_links_resolve():
    broken = []
    for page in LINKED:
        for target in LINK.findall(page.read_text()):
            if re.match(r"[a-z]+:", target) or target.startswith("#"):
                continue  # a web address or an anchor in the page
            path = (page.parent / target.split("#")[0]).resolve()
            if not path.exists():
                broken.append(f"{page.relative_to(ROOT)}: {target}")
    assert not broken, broken


def test_nothing_refers_outside_the_repository():
    files = [*LINKED, *(ROOT / "jaxbeam").rglob("*.py")]
    bad = [str(f.relative_to(ROOT)) for f in files if "shared/" in f.read_text()]
    assert not bad, bad


def test_python_blocks_exist_where_promised():
    """README's tour is code, within its first 60 lines."""
    readme = (ROOT / "README.md").read_text()
    first = readme.find("```python")
    assert first >= 0 and readme[:first].count("\n") < 60
