"""The package keeps its plan: import-linter's contracts in ``pyproject.toml`` hold (the layers import
only downward, the core's own layers, no command-line or plotting library below the application, a
private module imported only inside its package, no import cycle), and no module imports another
module's private name."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "src" / "scoredyn"


def test_import_contracts_are_kept():
    # import-linter's own entry point, in a child process so that its graph is built from the sources
    code = ("import sys; from importlinter.cli import lint_imports; "
            "sys.exit(lint_imports(config_filename='pyproject.toml', no_cache=True, no_logo=True))")  # fmt: skip
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    report = done.stdout + done.stderr
    assert done.returncode == 0, report[-6000:]
    assert "Contracts: 5 kept, 0 broken." in report, report[-3000:]  # every contract ran, none broke


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def private_name_imports(path: Path, module: str) -> list[str]:
    """``from X import _name`` where ``X`` is another module of the package, in the file ``path`` of ``module``."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if not isinstance(node, ast.ImportFrom):
            continue
        if node.level:
            base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
            target = ".".join(base + ([node.module] if node.module else []))
        else:
            target = node.module or ""
        if not target.startswith("scoredyn"):
            continue
        found += [f"{module}:{node.lineno} imports {alias.name} from {target}" for alias in node.names
                  if _private(alias.name)]  # fmt: skip
    return found


def test_no_module_imports_a_private_name_of_another():
    found = [line for path in sorted(PACKAGE.rglob("*.py")) for line in private_name_imports(path, _module_name(path))]
    assert not found, "\n".join(found)


def test_the_private_name_check_finds_one(tmp_path):
    # the check itself: a planted import of a private name is reported, a public one is not
    planted = tmp_path / "planted.py"
    planted.write_text("from .grids import _ends\nfrom ..core.tensors import as_time\n")
    assert private_name_imports(planted, "scoredyn.samplers.planted") == [
        "scoredyn.samplers.planted:1 imports _ends from scoredyn.samplers.grids"
    ]
