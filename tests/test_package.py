"""The package's shape: the public API, a light import, and the import rules between layers."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import runlane

PACKAGE = Path(runlane.__file__).parent


def test_public_api_is_pinned() -> None:
    assert runlane.__all__ == sorted(runlane.__all__)
    assert set(runlane.__all__) == {
        "Api",
        "Bucket",
        "ConsoleBusyError",
        "DeletionRefusedError",
        "History",
        "ImageInfo",
        "JournalWriteError",
        "Lineage",
        "LogLine",
        "MetricPoint",
        "MetricSummary",
        "NoOpRun",
        "ProjectInfo",
        "ProjectNotFoundError",
        "Run",
        "RunClosedError",
        "RunInfo",
        "RunNotFoundError",
        "RunlaneError",
        "SnapshotTooLargeError",
        "StoreError",
        "StoreNotFoundError",
        "SystemPoint",
        "SystemSample",
        "__version__",
        "init",
        "is_enabled",
        "set_enabled",
    }
    for name in runlane.__all__:
        assert getattr(runlane, name) is not None


def test_import_runlane_loads_no_store_driver_or_heavy_library() -> None:
    code = (
        "import sys, runlane; "
        "print(','.join(sorted(m for m in sys.modules if m.split('.')[0] in "
        "{'sqlite3', 'msgpack', 'psutil', 'numpy', 'torch', 'psycopg', 'http', 'urllib3', 'requests', 'PIL', "
        "'pynvml'} "
        "or m.startswith(('runlane.store', 'runlane.sdk')))))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert result.stdout.strip() == ""


def _imports(path: Path) -> set[str]:
    """Absolute names of the runlane modules a file imports."""
    tree = ast.parse(path.read_text())
    # The package a relative import starts from: the directory, for a module and an __init__ alike.
    package_parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)[:-1]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package_parts[: len(package_parts) - node.level + 1]
                found.add(".".join([*base, node.module] if node.module else base))
            elif node.module:
                found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {name for name in found if name.startswith("runlane")}


def test_store_never_imports_the_sdk() -> None:
    for path in (PACKAGE / "store").rglob("*.py"):
        assert not any(name.startswith("runlane.sdk") for name in _imports(path)), path


def test_the_drain_never_imports_the_sdk() -> None:
    # The drain process starts with the store and the journal only: the SDK (capture, hooks, run) would
    # cost it start-up time and could install handlers meant for a training process.
    for path in (PACKAGE / "drain").rglob("*.py"):
        assert not any(name.startswith(("runlane.sdk", "runlane.api")) for name in _imports(path)), path


def test_lower_layers_never_import_upper_ones() -> None:
    pure = ["entities.py", "errors.py", "naming.py", "statuses.py", "wire.py", "journal.py", "config.py", "blobs.py"]
    for name in pure:
        imported = _imports(PACKAGE / name)
        assert not any(m.startswith(("runlane.sdk", "runlane.store", "runlane.api")) for m in imported), name


# Public modules a compat module may build on besides ``runlane``: MLflow's tracking model is shared with the
# server's MLflow REST routes, so that a run looks the same through either (see runlane/mlflow_tracking.py).
SHARED_MODELS = {
    "runlane.mlflow_entities": {"mlflow"},
    "runlane.mlflow_search": {"mlflow"},
    "runlane.mlflow_tracking": {"mlflow"},
}

OPTIONAL_LIBRARIES = {"mlflow": {"pandas"}}


def test_compat_modules_use_only_runlanes_public_api() -> None:
    public = set(runlane.__all__)
    modules = sorted((PACKAGE / "compat").glob("*.py"))
    assert {path.stem for path in modules} == {"__init__", "mlflow", "pluto", "runicorn"}
    for path in modules:
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                assert node.level == 0, f"{path.name}: relative import reaches into runlane's internals"
                root = (node.module or "").split(".")[0]
                if node.module in SHARED_MODELS and path.stem in SHARED_MODELS[node.module]:
                    continue
                if root == "runlane":
                    assert node.module == "runlane", f"{path.name}: imports {node.module}"
                    assert {alias.name for alias in node.names} <= public, path.name
                else:
                    assert root in sys.stdlib_module_names, f"{path.name}: imports {node.module}"
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    root = alias.name.split(".")[0]
                    if alias.name in OPTIONAL_LIBRARIES.get(path.stem, set()):
                        continue  # imported lazily, only when asked for (search_runs' pandas frame)
                    assert alias.name == "runlane" or root in sys.stdlib_module_names, f"{path.name}: {alias.name}"
            elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "runlane":
                assert node.attr in public, f"{path.name}: uses runlane.{node.attr}, which is not public"


def test_capture_code_never_touches_the_store_or_the_read_api() -> None:
    # Capture threads hand records to the run's journal; only the writer thread talks to the store.
    for path in (PACKAGE / "sdk" / "capture").rglob("*.py"):
        imported = _imports(path)
        assert not any(m.startswith(("runlane.store", "runlane.api", "runlane.recovery")) for m in imported), path


def test_a_plain_init_loads_no_image_or_gpu_library() -> None:
    # psutil and NVML load on the monitor thread, PIL on the first log_image(); a plain run needs none of them.
    code = (
        "import sys, tempfile, runlane; run = runlane.init(project='p', dir=tempfile.mkdtemp()); "
        "loaded = sorted(m for m in ('PIL', 'pynvml', 'numpy') if m in sys.modules); run.finish(); "
        "print(','.join(loaded))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert result.stdout.strip() == ""


def test_the_console_tee_loads_only_what_its_bare_interpreter_offers() -> None:
    # The tee runs under `python -I -S` (no site-packages but msgpack's) with runlane's packages as bare
    # namespaces: these modules may import the standard library, msgpack and each other, nothing else.
    modules = {
        "runlane.sdk.capture.tee": PACKAGE / "sdk" / "capture" / "tee.py",
        "runlane.sdk.capture.lines": PACKAGE / "sdk" / "capture" / "lines.py",
        "runlane.sdk.capture": PACKAGE / "sdk" / "capture" / "__init__.py",  # loaded as the package
        "runlane.journal": PACKAGE / "journal.py",
        "runlane.errors": PACKAGE / "errors.py",
    }
    for name, path in modules.items():
        assert _imports(path) <= set(modules), name
        for node in ast.walk(ast.parse(path.read_text())):
            roots = []
            if isinstance(node, ast.Import):
                roots = [alias.name.split(".")[0] for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                roots = [node.module.split(".")[0]]
            for root in roots:
                assert root in sys.stdlib_module_names or root in {"msgpack", "runlane"}, f"{name} imports {root}"
