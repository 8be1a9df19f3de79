"""The integrations' shape: never loaded by `import runlane`, built on the public API, and a missing
framework named with the extra that installs it."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import runlane

INTEGRATIONS = Path(runlane.__file__).parent / "integrations"
FRAMEWORKS = {"lightning", "lightning_utilities", "pytorch_lightning", "transformers", "keras"}


def test_import_runlane_loads_no_integration_or_framework() -> None:
    code = (
        "import sys, runlane; "
        "print(','.join(sorted(m for m in sys.modules if m.startswith('runlane.integrations') or "
        f"m.split('.')[0] in {sorted(FRAMEWORKS | {'torch'})!r})))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert result.stdout.strip() == ""


def test_integrations_use_only_runlanes_public_api() -> None:
    public = set(runlane.__all__)
    modules = sorted(INTEGRATIONS.glob("*.py"))
    assert {path.stem for path in modules} == {
        "__init__",
        "_common",
        "_lightning",
        "keras",
        "lightning",
        "pytorch_lightning",
        "transformers",
    }
    for path in modules:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                if node.level:  # within the package: only its shared helpers
                    assert node.level == 1, path.name
                    assert node.module in {"_common", "_lightning"}, path.name
                    continue
                root = (node.module or "").split(".")[0]
                if root == "runlane":
                    assert node.module == "runlane", f"{path.name}: imports {node.module}"
                    assert {alias.name for alias in node.names} <= public, path.name
                else:
                    assert root in sys.stdlib_module_names or root in FRAMEWORKS, f"{path.name}: {node.module}"
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    root = alias.name.split(".")[0]
                    assert alias.name == "runlane" or root in sys.stdlib_module_names | FRAMEWORKS, path.name
            elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "runlane":
                assert node.attr in public, f"{path.name}: uses runlane.{node.attr}, which is not public"


@pytest.mark.parametrize(
    ("module", "framework", "extra"),
    [
        ("lightning", "lightning", "lightning"),
        ("pytorch_lightning", "pytorch_lightning", "lightning"),
        ("transformers", "transformers", "transformers"),
        ("keras", "keras", "keras"),
    ],
)
def test_a_missing_framework_names_the_extra_to_install(module: str, framework: str, extra: str) -> None:
    # The framework is installed here: hide it the way a missing package looks to `import`.
    code = (
        f"import sys; sys.modules[{framework!r}] = None\n"
        "try:\n"
        f"    import runlane.integrations.{module}\n"
        "except ImportError as error:\n"
        "    print(error)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert f"pip install 'runlane[{extra}]'" in result.stdout
    assert f"runlane.integrations.{extra} needs" in result.stdout


def test_a_framework_that_fails_to_import_keeps_its_own_error() -> None:
    # Keras is installed, but its configured backend is not: that error says what is wrong, not ours.
    code = (
        "import os, sys; os.environ['KERAS_BACKEND'] = 'jax'; sys.modules['jax'] = None\n"
        "try:\n"
        "    import runlane.integrations.keras\n"
        "except ImportError as error:\n"
        "    print(type(error).__name__, error)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert "jax" in result.stdout
    assert "runlane[keras]" not in result.stdout
