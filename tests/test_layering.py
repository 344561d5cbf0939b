"""The package's layering: a module imports only from its own layer or the layers below, and
no modules import each other in a circle (every import counts, also those inside functions).

From the bottom up:

1. structure: the config, the topology, the parameters, the named recipes and the study grids;
2. data: the dataset interface, the loaders, event frames and augmentation (the
   ``datasets`` subpackage);
3. science: the numpy reference, the exact solver, the neurons' transfer functions, the model
   text, the slot schedule, dropout, energy and firing statistics, plots of them;
4. model: the Brian2 builder and the devices it runs on;
5. trainers: the training driver, both backends, checkpoints;
6. interface: the command line, parameter sweeps on Dask, the figures and the benchmark.
"""
import ast
import re
from pathlib import Path

import spide_brian

LAYERS = (
    ("structure", {"config", "models", "topology", "parameters", "recipes", "study",
                   "biophysics"}),
    ("data", {"datasets"}),
    ("science", {"reference", "exact", "transfer", "equations", "schedule", "dropout", "energy",
                 "firing", "plotting"}),
    ("model", {"network", "routes", "sharing", "devices", "footprint"}),
    ("trainers", {"trainer", "tally", "training", "evaluation", "brian_backend", "checkpoint"}),
    ("interface", {"cli", "sweep", "sweep_report", "figures", "bench"}),
)
PACKAGE = Path(spide_brian.__file__).resolve().parent


def _imports():
    """``{module: {imported package module, ...}}`` of every module of the package."""
    files = {path.stem: path for path in PACKAGE.glob("*.py") if path.stem != "__init__"}
    # a subpackage is one module of its layer (its own modules import each other freely)
    files.update({path.parent.name: path for path in PACKAGE.glob("*/__init__.py")})
    modules = set(files)
    graph = {}
    for module, path in files.items():
        texts = [path.read_text(encoding="utf-8")]
        if path.name == "__init__.py":
            texts = [p.read_text(encoding="utf-8") for p in path.parent.glob("*.py")]
        found = set()
        for text in texts:
            found |= _imported(ast.parse(text), inside=path.name == "__init__.py")
        graph[module] = (found & modules) - {module}   # the package face is not a layer
    return graph


def _imported(tree, inside):
    """Names of the package's modules that ``tree`` imports (``inside`` a subpackage,
    ``from .x`` is its own module and ``from ..x`` the package's)."""
    found = set()
    own = 2 if inside else 1
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == own:
            names = [node.module] if node.module else [a.name for a in node.names]
            found.update(name.split(".")[0] for name in names)
        elif isinstance(node, ast.ImportFrom) and node.module and \
                node.module.startswith("spide_brian."):
            found.add(node.module.split(".")[1])
    return found


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


DEVICE_NAMES = ("numpy", "runtime", "cython", "cpp_standalone", "genn", "cuda_standalone")
_QUOTED = "[\"'](?:" + "|".join(DEVICE_NAMES) + ")[\"']"
_DEVICE_TEST = re.compile(rf"(?:==|!=)\s*{_QUOTED}|{_QUOTED}\s*(?:==|!=)"
                          rf"|\bin\s*[(\[{{][^)\]}}]*{_QUOTED}")


def test_no_device_name_is_tested_outside_devices():
    """Device differences are asked of the capability table and the adapters
    (spide_brian/devices/), never by comparing a device's name."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if PACKAGE / "devices" in path.parents:
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if _DEVICE_TEST.search(line.split("#")[0]):
                found.append(f"{path.relative_to(PACKAGE)}:{number}: {line.strip()}")
    assert not found, "\n".join(found)


def test_the_device_name_check_finds_a_comparison():
    assert _DEVICE_TEST.search('if self.device_name == "genn":')
    assert _DEVICE_TEST.search('if name in ("cython", "cpp_standalone"):')
    assert not _DEVICE_TEST.search('set_device("runtime")')
