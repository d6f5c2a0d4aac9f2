"""The package's layers import only down the flow (docs/architecture.md), with no circles, and the functional
core does no I/O. Read from the source with ``ast`` (nothing is imported), so a violation anywhere, even in a
function-level import, fails here.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "jaxbeam"

# What each layer may import (besides itself). "facade" is ``import jaxbeam`` / ``from jaxbeam import f``:
# the public API, i.e. core + solvers + models.
ALLOWED = {
    "core": set(),
    "solvers": {"core"},
    "models": {"core", "solvers"},  # the semi-amortised SAO runs jb.refine inside the model
    "configs": {"core"},
    "data": {"core", "solvers"},
    "train": {"core", "data"},
    "jobs": {"core", "solvers", "models", "configs", "data", "train", "facade"},
    "cli": {"core", "solvers", "models", "configs", "data", "train", "jobs", "facade"},
    "facade": {"core", "solvers", "models"},
}
LAYERS = {"core", "solvers", "models", "configs", "data", "train", "jobs", "cli"}
# The functional core (and the solvers on it) is pure JAX: no training libraries, no files, no progress bars.
PURE = {"core", "solvers"}
PURE_FORBIDDEN = {"flax", "optax", "orbax", "tqdm", "matplotlib", "os", "io", "pathlib", "json", "pickle", "shutil"}
PURE_FORBIDDEN |= {"tempfile", "zipfile", "glob", "sys", "csv"}
MODELS_FORBIDDEN = {"optax", "orbax", "tqdm", "matplotlib", "os", "io", "pathlib", "json", "pickle", "shutil"}


def layer_of(module: str) -> str:
    """``jaxbeam.core.power`` -> ``core``; ``jaxbeam`` (and its private top-level helpers) -> ``facade``."""
    parts = module.split(".")
    if len(parts) >= 2 and parts[1] in LAYERS:
        return parts[1]
    return "facade"


def module_name(path: Path, root: Path = ROOT) -> str:
    rel = path.relative_to(root.parent).with_suffix("")
    parts = list(rel.parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(source: str, module: str) -> list[tuple[str, int]]:
    """Every module ``source`` imports (absolute names, relative ones resolved), with its line."""
    out = []
    package = module if module.count(".") == 0 else module.rsplit(".", 1)[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            out += [(a.name, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(
                    package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else [])
                )
            # ``from jaxbeam import train`` imports the module jaxbeam.train, ``from jaxbeam import rzf`` the
            # facade: keep ``base.name``; the callers cut it back to the module it names
            out += [(f"{base}.{a.name}", node.lineno) for a in node.names]
    return out


def violations(source: str, module: str) -> list[str]:
    """The layering rules ``source`` (the text of ``module``) breaks, one line each."""
    own = layer_of(module)
    found = []
    for name, line in imports(source, module):
        top = name.split(".")[0]
        if top == "jaxbeam":
            if name.startswith("jaxbeam._version"):
                continue  # a constant that every layer may record
            target = layer_of(name)
            if module == "jaxbeam" or own == "facade" and module.startswith("jaxbeam._"):
                continue  # the facade re-exports the public API; _version imports nothing
            if target != own and target not in ALLOWED[own]:
                found.append(f"{module}:{line} ({own}) imports {name} ({target})")
        elif own in PURE and top in PURE_FORBIDDEN:
            found.append(f"{module}:{line} ({own}, pure JAX) imports {name}")
        elif own == "models" and top in MODELS_FORBIDDEN:
            found.append(f"{module}:{line} (models) imports {name}")
    if own in PURE | {"models"}:
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("open", "print"):
                found.append(f"{module}:{node.lineno} ({own}) calls {node.func.id}()")
    return found


FILES = sorted(ROOT.rglob("*.py"))


def test_every_module_imports_only_down_the_flow():
    problems = [v for f in FILES for v in violations(f.read_text(), module_name(f))]
    assert not problems, "\n".join(problems)


def test_no_import_circles_between_modules():
    """No module reaches itself through the imports of other modules (function-level imports included)."""
    names = {module_name(f): f for f in FILES}
    graph = {}
    for m, f in names.items():
        deps = set()
        for name, _ in imports(f.read_text(), m):
            while name and name not in names:  # ``jaxbeam.core.power.gpa`` -> ``jaxbeam.core.power``
                name = name.rpartition(".")[0]
            # a package's __init__ importing its own submodules is how it re-exports them, not a circle
            if name and name != m and not (name.startswith(m + ".") and names[m].name == "__init__.py"):
                deps.add(name)
        graph[m] = deps
    state, cycles = {}, []

    def visit(m, stack):
        state[m] = "open"
        for d in sorted(graph[m]):
            if state.get(d) == "open":
                cycles.append(" -> ".join(stack[stack.index(d) :] + [d]))
            elif d not in state:
                visit(d, stack + [d])
        state[m] = "done"

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])
    assert not cycles, "\n".join(cycles)


@pytest.mark.parametrize(
    "module, source, expected",
    [
        ("jaxbeam.core.power", "import flax.linen as nn\n", "pure JAX"),
        ("jaxbeam.core.power", "def f():\n    from pathlib import Path\n", "pure JAX"),
        ("jaxbeam.core.power", "def f(p):\n    return open(p)\n", "calls open()"),
        ("jaxbeam.solvers.sca", "from jaxbeam.models import BERT\n", "imports jaxbeam.models"),
        ("jaxbeam.core.utility", "import jaxbeam as jb\n", "imports jaxbeam (facade)"),
        ("jaxbeam.models.bert", "from jaxbeam import train\n", "imports jaxbeam.train (train)"),
        ("jaxbeam.train.loop", "from jaxbeam.jobs.runs import budget_record\n", "(jobs)"),
        ("jaxbeam.jobs.runs", "from jaxbeam.cli.args import UserError\n", "(cli)"),
        ("jaxbeam.data.generate", "from jaxbeam import models\n", "(models)"),
    ],
)
def test_the_checker_catches_each_kind_of_violation(module, source, expected):
    found = violations(source, module)
    assert found and expected in found[0], found


def test_the_checker_accepts_imports_down_the_flow():
    ok = "import jax\nfrom jaxbeam.core import _checks\nfrom jaxbeam.solvers import _common as C\n"
    assert violations(ok, "jaxbeam.solvers.sca") == []
    assert violations("import jaxbeam as jb\nfrom jaxbeam import train\n", "jaxbeam.jobs.pretrain") == []
