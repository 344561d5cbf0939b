"""The package's layering: a module imports only from its own layer or the layers below, and
no modules import each other in a circle (every import counts, also those inside functions).

From the bottom up:

1. structure: the config, the topology and the parameters;
2. data: the dataset interface and the loaders;
3. science: the numpy reference, the exact solver, the model text, the slot schedule, the
   energy and firing statistics, plots of them;
4. model: the Brian2 builder and the devices it runs on;
5. trainers: the training driver, both backends, checkpoints;
6. interface: the command line and the figures.
"""
import ast
from pathlib import Path

import spide_brian

LAYERS = (
    ("structure", {"config", "topology", "parameters"}),
    ("data", {"dataset", "mnist", "cifar", "dvs", "data"}),
    ("science", {"reference", "exact", "equations", "schedule", "energy", "firing", "plotting"}),
    ("model", {"network", "replay", "devices", "cuda", "environment"}),
    ("trainers", {"tally", "training", "brian_backend", "checkpoint"}),
    ("interface", {"cli", "figures"}),
)
PACKAGE = Path(spide_brian.__file__).resolve().parent


def _imports():
    """``{module: {imported package module, ...}}`` of every module of the package."""
    modules = {path.stem for path in PACKAGE.glob("*.py")} - {"__init__"}
    graph = {}
    for module in modules:
        tree = ast.parse((PACKAGE / f"{module}.py").read_text(encoding="utf-8"))
        found = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                names = [node.module] if node.module else [a.name for a in node.names]
                found.update(name.split(".")[0] for name in names)
            elif isinstance(node, ast.ImportFrom) and node.module and \
                    node.module.startswith("spide_brian."):
                found.add(node.module.split(".")[1])
        graph[module] = found & modules           # the package face (__version__) is not a layer
    return graph


def _level(module):
    for level, (_, members) in enumerate(LAYERS):
        if module in members:
            return level
    raise AssertionError(f"module {module!r} has no layer: add it to LAYERS in this test")


def test_every_module_has_a_layer():
    for module in _imports():
        _level(module)


def test_no_module_imports_a_higher_layer():
    wrong = [f"{module} ({LAYERS[_level(module)][0]}) imports {target} "
             f"({LAYERS[_level(target)][0]})"
             for module, targets in _imports().items() for target in targets
             if _level(target) > _level(module)]
    assert not wrong, "; ".join(sorted(wrong))


def test_no_import_circle():
    graph = _imports()
    state = {}

    def visit(module, path):
        state[module] = "open"
        for target in sorted(graph[module]):
            if state.get(target) == "open":
                raise AssertionError("import circle: " + " -> ".join(path + [module, target]))
            if target not in state:
                visit(target, path + [module])
        state[module] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [])
