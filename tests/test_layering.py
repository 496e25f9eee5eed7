"""The layering read from the imports (ARCHITECTURE.md): the device runtime imports nothing from
the workstation side, the library never imports the CLI or takes argparse namespaces, and no
module imports another module's private names. Checked on the source's syntax trees, so a new
violation anywhere fails here."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "edgecnn"
WORKSTATION = ("edgecnn.data", "edgecnn.training", "edgecnn.export", "edgecnn.optimize", "edgecnn.models",
               "edgecnn.layers", "edgecnn.evaluation", "edgecnn.quickstart", "edgecnn.api", "edgecnn.cli",
               "edgecnn._keras")


def _imports(path: Path) -> list[tuple[str, list[str], int]]:
    """(module, imported names, line) for every import in the file, top level or nested."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.extend((alias.name, [], node.lineno) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.module, [alias.name for alias in node.names], node.lineno))
    return found


def _modules(folder: Path):
    return sorted(p for p in folder.rglob("*.py") if "__pycache__" not in p.parts)


def test_runtime_imports_nothing_from_the_workstation_side():
    offending = [f"{path.relative_to(PACKAGE)}:{line} imports {module}"
                 for path in _modules(PACKAGE / "runtime") for module, _, line in _imports(path)
                 if module.startswith(WORKSTATION) or module.split(".")[0] in ("tensorflow", "tf_keras", "keras")]
    assert not offending, offending


def test_library_never_imports_the_cli_nor_takes_argparse_namespaces():
    offending = []
    for path in _modules(PACKAGE):
        if "cli" in path.relative_to(PACKAGE).parts:
            continue
        for module, _, line in _imports(path):
            if module.startswith("edgecnn.cli") or module == "argparse":
                offending.append(f"{path.relative_to(PACKAGE)}:{line} imports {module}")
        if "Namespace" in path.read_text():
            offending.append(f"{path.relative_to(PACKAGE)} mentions argparse.Namespace")
    assert not offending, offending


def test_no_private_names_are_imported_across_modules():
    # edgecnn._keras is the one Keras module by design (the brief names it)
    offending = [f"{path.relative_to(PACKAGE.parent)}:{line} imports {name} from {module}"
                 for path in [*_modules(PACKAGE), *_modules(PACKAGE.parent / "benchmarks")]
                 for module, names, line in _imports(path) if module.startswith("edgecnn")
                 for name in names if name.startswith("_") and not name.startswith("__")]
    private_modules = [f"{path.relative_to(PACKAGE.parent)}:{line} imports {module}"
                       for path in _modules(PACKAGE) for module, _, line in _imports(path)
                       if module.startswith("edgecnn") and module != "edgecnn._keras"
                       and any(part.startswith("_") and not part.startswith("__") for part in module.split("."))]
    assert not offending and not private_modules, offending + private_modules


def test_every_pipeline_kind_has_its_module_and_one_table_entry():
    import edgecnn.runtime as runtime

    for task, pipeline in runtime.PIPELINES.items():
        assert pipeline.__module__.startswith("edgecnn.runtime."), task
        assert getattr(runtime, pipeline.__name__) is pipeline  # importable from edgecnn.runtime
    modules = {pipeline.__module__ for pipeline in runtime.PIPELINES.values()}
    assert len(modules) == len(runtime.PIPELINES)  # one module per task kind
    for path in _modules(PACKAGE / "runtime"):
        assert len(path.read_text().splitlines()) <= 500, path.name


def test_importing_the_runtime_loads_nothing_else_of_edgecnn(tmp_path):
    """Checked on sys.modules in a fresh process, after opening and running a pipeline too: a
    device loads edgecnn.runtime and edgecnn.errors only (the package root is lazy), and never
    TensorFlow, Keras or mediapipe."""
    import subprocess
    import sys

    import edgecnn

    model = tmp_path / "m.tflite"
    edgecnn.convert(edgecnn.create_model("test_vgg", num_classes=3), "fp32", out=model, samples=1)
    code = f"""
import sys
import numpy as np
import edgecnn.runtime
edgecnn.runtime.open({str(model)!r}, accelerator="cpu")(np.zeros((40, 30, 3), np.uint8))
print("\\n".join(sorted(set(sys.modules))))
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    modules = result.stdout.split()
    ours = [m for m in modules if m.split(".")[0] == "edgecnn"]
    outside = [m for m in ours if m != "edgecnn" and not m.startswith(("edgecnn.runtime", "edgecnn.errors"))]
    assert "edgecnn.runtime.classifier" in ours and outside == [], outside
    assert not [m for m in modules if m.split(".")[0] in ("tensorflow", "tf_keras", "keras", "mediapipe")]


def test_imports_between_edgecnn_modules_form_no_cycle():
    """The import graph of edgecnn/ (every import, at the top or inside a function, resolved to the
    module it names) has no cycle: imports only point down."""
    modules = {}
    for path in _modules(PACKAGE):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path

    def resolve(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph = {}
    for name, path in modules.items():
        targets = set()
        for module, names, _ in _imports(path):
            for candidate in (module, *(f"{module}.{imported}" for imported in names)):
                found = resolve(candidate)
                if found and found != name and found != "edgecnn":
                    targets.add(found)
        graph[name] = targets
    cycles, state = [], {}

    def visit(node: str, trail: list[str]) -> None:
        state[node] = "open"
        for target in sorted(graph[node]):
            if state.get(target) == "open":
                cycles.append(" -> ".join([*trail[trail.index(target):], target]))
            elif target not in state:
                visit(target, [*trail, target])
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    assert len(graph) > 100 and cycles == [], cycles
