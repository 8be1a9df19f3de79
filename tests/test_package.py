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
                if node.module:
                    found.add(".".join([*base, node.module]))
                else:  # from . import journal: the module, or a name of the package itself
                    found.update(_module_or_package(".".join([*base, alias.name])) for alias in node.names)
            elif node.module:
                found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {name for name in found if name.startswith("runlane")}


def _module_or_package(name: str) -> str:
    path = PACKAGE.parent.joinpath(*name.split("."))
    return name if path.with_suffix(".py").exists() or path.is_dir() else name.rpartition(".")[0]


# The import rules, one table (the packages' docstrings and docs/architecture.md say the same). A module
# belongs to the first part whose name is a prefix of its own; it may import its own part and the parts
# listed for it, nothing else of runlane.
FOUNDATION = (
    "runlane.errors", "runlane.naming", "runlane.statuses", "runlane.steps", "runlane.merge",
    "runlane.downsample", "runlane.lineage", "runlane.entities", "runlane.wire", "runlane.journal",
    "runlane.blobs", "runlane.config", "runlane.diagnostics", "runlane.liveness", "runlane.spool",
)  # fmt: skip
ALLOWED: dict[str, tuple[str, ...]] = {
    **dict.fromkeys(FOUNDATION, FOUNDATION),  # pure pieces: they import one another, nothing above
    # backends: never the SDK, the drain, recovery or the read API ("runlane": the HTTP store's User-Agent version)
    "runlane.store": (*FOUNDATION, "runlane"),
    # Client side of a remote store: registrations and blobs waiting in the spool for their server.
    "runlane.pending": (*FOUNDATION, "runlane.store"),
    "runlane.spool_blobs": (*FOUNDATION, "runlane.store"),
    "runlane.recovery": (*FOUNDATION, "runlane.store", "runlane.pending", "runlane.spool_blobs"),
    "runlane.drain": (*FOUNDATION, "runlane.store", "runlane.recovery", "runlane.pending", "runlane.spool_blobs"),
    "runlane.sync": (*FOUNDATION, "runlane.store", "runlane.recovery"),  # copies between stores: no SDK
    # MLflow's tracking model over any Store, shared by the compat module and the server's MLflow REST routes.
    "runlane.mlflow_entities": FOUNDATION,
    "runlane.mlflow_search": FOUNDATION,
    "runlane.mlflow_tracking": (
        *FOUNDATION,
        "runlane.store",
        "runlane.mlflow_entities",
        "runlane.mlflow_search",
        "runlane.api",
    ),
    # The server: any store, the store side of recovery, the MLflow model; never the SDK (and the version).
    "runlane.server": (
        *FOUNDATION,
        "runlane.store",
        "runlane.recovery",
        "runlane.mlflow_entities",
        "runlane.mlflow_search",
        "runlane.mlflow_tracking",
        "runlane",
    ),
    "runlane.sdk.capture": FOUNDATION,  # capture threads only journal: no store, no recovery, no drain
    "runlane.sdk": (
        *FOUNDATION,
        "runlane.store",
        "runlane.recovery",
        "runlane.drain",
        "runlane.sdk.capture",
        "runlane.pending",
    ),
    "runlane.api": (*FOUNDATION, "runlane.store", "runlane.recovery"),  # never the SDK
    # The read API, sync and the server behind their own entry points, the store for `keys` (API keys live
    # in the store the server serves), and the version; nothing deeper.
    "runlane.cli": (*FOUNDATION, "runlane.api", "runlane.sync", "runlane.server", "runlane.store", "runlane"),
}


def _part(module: str) -> str | None:
    matches = [part for part in ALLOWED if module == part or module.startswith(part + ".")]
    return max(matches, key=len) if matches else None


def test_every_module_keeps_the_import_rules() -> None:
    checked = 0
    for path in PACKAGE.rglob("*.py"):
        module = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts).removesuffix(".__init__")
        part = _part(module)
        if part is None:
            continue  # the package's front (runlane/__init__.py), compat (its own test), later layers
        checked += 1
        allowed = (part, *ALLOWED[part])
        for name in _imports(path):
            assert (name == "runlane" and "runlane" in allowed) or _part(name) in allowed, f"{module} imports {name}"
    assert checked > 40


def test_no_import_cycles_between_modules_at_import_time() -> None:
    # Only imports that run when a module loads (top level, not under TYPE_CHECKING, not in a function):
    # a cycle there makes the result depend on which module is imported first.
    graph: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        module = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts).removesuffix(".__init__")
        graph[module] = _top_level_imports(path, module)
    state: dict[str, int] = {}

    def visit(module: str, stack: list[str]) -> None:
        state[module] = 1
        for name in sorted(graph.get(module, ())):
            if name not in graph or name == module:
                continue
            if state.get(name) == 1:
                cycle = [*stack[stack.index(name) :], name] if name in stack else [module, name]
                raise AssertionError(f"import cycle: {' -> '.join(cycle)}")
            if name not in state:
                visit(name, [*stack, name])
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])


def _top_level_imports(path: Path, module: str) -> set[str]:
    package_parts = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    found: set[str] = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package_parts[: len(package_parts) - node.level + 1]
                target = ".".join([*base, node.module] if node.module else base)
                found.add(target)
                if not node.module:  # from . import x: x may be a module
                    found.update(f"{target}.{alias.name}" for alias in node.names)
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
