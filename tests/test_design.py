"""The shape of the code: functions a reader holds in view, imports that point down, one list per name."""

from __future__ import annotations

import ast
import dataclasses
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from ignite_mnist import registry
from ignite_mnist.settings.config import TrainConfig, flag_name, setting_fields
from ignite_mnist.settings.config_args import build_train_parser
from tests.conftest import REPO

PACKAGE = REPO / "ignite_mnist"
MAX_FUNCTION_LINES = 60


def modules() -> dict[str, ast.Module]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(REPO).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = ast.parse(path.read_text(), str(path))
    return found


def test_no_function_is_longer_than_60_lines() -> None:
    long = [
        f"{name}.{node.name}: {node.end_lineno - node.lineno + 1} lines"
        for name, tree in modules().items() for node in ast.walk(tree)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
        and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES
    ]
    assert long == []


def _is_type_checking(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def _import_nodes(body: list[ast.stmt], *, lazy: bool, typing: bool) -> Iterator[ast.Import | ast.ImportFrom]:
    """The import statements in ``body``: inside functions too with ``lazy``, under ``if TYPE_CHECKING`` with
    ``typing``."""
    for node in body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        elif _is_type_checking(node):
            if typing:
                yield from _import_nodes(node.body, lazy=lazy, typing=typing)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)) and not lazy:
            continue
        else:
            for field in ("body", "orelse", "finalbody", "handlers"):
                inner = getattr(node, field, None)
                if isinstance(inner, list):
                    yield from _import_nodes(inner, lazy=lazy, typing=typing)


def imports(name: str, tree: ast.Module, root: Path = REPO, *, lazy: bool = True, typing: bool = False) -> set[str]:
    """The modules of ``name``'s top package that ``name`` imports: at module level, inside functions too with
    ``lazy`` (imported when the function runs), under ``if TYPE_CHECKING`` too with ``typing``."""
    top = name.split(".")[0]
    package = name if (root / Path(*name.split(".")) / "__init__.py").exists() else name.rpartition(".")[0]
    found = set()
    for node in _import_nodes(tree.body, lazy=lazy, typing=typing):
        if isinstance(node, ast.ImportFrom):
            parent = package.rsplit(".", node.level - 1)[0] if node.level else ""
            base = ".".join(part for part in (parent, node.module or "") if part)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
        else:
            found.update(alias.name for alias in node.names)
    # importing a.b.c from outside package a.b runs a/b/__init__ first (the top package's __init__ is lazy)
    found |= {parent for m in found for parent in _packages_of(m) if not name.startswith(parent + ".")}
    return {imported for imported in found if imported == top or imported.startswith(top + ".")}


def module_level_imports(name: str, tree: ast.Module) -> set[str]:
    """The package modules ``name`` imports when it is imported (not inside functions or TYPE_CHECKING)."""
    return imports(name, tree, lazy=False)


def _packages_of(module: str) -> list[str]:
    parts = module.split(".")
    return [".".join(parts[:i]) for i in range(2, len(parts))]


def registry_targets(tree: ast.Module) -> dict[str, set[str]]:
    """Each ``Registry`` a registry module defines (its variable name) -> the modules its string targets name
    (``"ignite_mnist.models:TutorialMLP"`` -> ``ignite_mnist.models``)."""
    found = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call) and \
                getattr(node.value.func, "id", None) == "Registry" and isinstance(node.targets[0], ast.Name):
            entries = next((arg for arg in node.value.args if isinstance(arg, ast.Dict)), None)
            found[node.targets[0].id] = {value.value.partition(":")[0] for value in (entries.values if entries else [])
                                         if isinstance(value, ast.Constant) and isinstance(value.value, str)}
    return found


def registry_loads(tree: ast.Module, targets: dict[str, set[str]]) -> set[str]:
    """The modules a module imports by loading a registry's names: ``TRACKERS.load(name)`` imports every module
    ``TRACKERS`` names (the import happens when the function runs, as a lazy import does)."""
    loaded = {node.func.value.id if isinstance(node.func.value, ast.Name) else node.func.value.attr
              for node in ast.walk(tree) if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
              and node.func.attr == "load" and isinstance(node.func.value, (ast.Name, ast.Attribute))}
    return {module for name in loaded & set(targets) for module in targets[name]}


def import_graph(trees: dict[str, ast.Module], root: Path = REPO) -> dict[str, set[str]]:
    """Module -> the modules of ``trees`` it imports: lazily too, and through the registries' string targets."""
    registry = next((tree for name, tree in trees.items() if name.endswith(".registry")), None)
    targets = registry_targets(registry) if registry is not None else {}
    return {name: (imports(name, tree, root) | registry_loads(tree, targets)) & set(trees) - {name}
            for name, tree in trees.items()}


def import_cycle(trees: dict[str, ast.Module], root: Path = REPO) -> list[str] | None:
    """The first import cycle among ``trees`` (module name -> its syntax tree), lazy imports and registry loads
    included, or None."""
    graph = import_graph(trees, root)
    state: dict[str, str] = {}

    def visit(name: str, path: list[str]) -> list[str] | None:
        if state.get(name) == "open":
            return [*path[path.index(name):], name]
        if state.get(name) == "done":
            return None
        state[name] = "open"
        for imported in sorted(graph[name]):
            cycle = visit(imported, [*path, name])
            if cycle:
                return cycle
        state[name] = "done"
        return None

    return next((cycle for cycle in (visit(name, []) for name in sorted(graph)) if cycle), None)


def _inside(module: str, layer: str) -> bool:
    return module == layer or module.startswith(layer + ".")


def imports_of_layer(trees: dict[str, ast.Module], importer: str, imported: str, root: Path = REPO) -> list[str]:
    """``module -> module`` for each import (lazy and TYPE_CHECKING ones included) from a module of package or
    module ``importer`` (outside ``imported``) of a module of ``imported``."""
    return sorted(
        f"{name} -> {module}" for name, tree in trees.items() if _inside(name, importer) and not _inside(name, imported)
        for module in imports(name, tree, root, typing=True) if _inside(module, imported)
    )


def test_imports_have_no_cycles_lazy_imports_included() -> None:
    cycle = import_cycle(modules())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_the_checks_follow_registry_strings_into_cycles(tmp_path: Path) -> None:
    """A setting's default loaded through a registry string, whose module imports the setting's module again (the
    cycle TrainConfig's tracker settings had before settings.fields): found, and gone once the string is gone."""
    files = {
        "__init__.py": "",
        "registry.py": "SETTINGS = Registry('s', {'w': 'pkg.wandb_settings:WandbSettings'})\n",
        "config.py": "from pkg.registry import SETTINGS\ndef defaults():\n    return SETTINGS.load('w')()\n",
        "wandb_settings.py": "from pkg.config import setting\n",
    }
    trees = _package(tmp_path, files)
    assert import_cycle(trees, tmp_path) == ["pkg.config", "pkg.wandb_settings", "pkg.config"]
    trees = _package(tmp_path / "fixed", files | {"wandb_settings.py": "from pkg.fields import setting\n",
                                                  "fields.py": ""})
    assert import_cycle(trees, tmp_path / "fixed") is None


def test_the_kit_never_imports_the_managed_run() -> None:
    """The managed run is built from the public kit (``handlers``), never the other way round: lazily, under
    TYPE_CHECKING or through a registry either."""
    trees = modules()
    graph = import_graph(trees)
    kit = [name for name in trees if _inside(name, "ignite_mnist.handlers")]
    reached = {module for name in kit for module in graph[name]}
    assert not {m for m in reached if _inside(m, "ignite_mnist.training") or _inside(m, "ignite_mnist.cli")}
    assert imports_of_layer(trees, "ignite_mnist.handlers", "ignite_mnist.training") == []


def test_the_root_holds_few_modules_and_the_layers_are_packages() -> None:
    root = sorted(path.name for path in PACKAGE.glob("*.py"))
    assert len(root) <= 15, root
    for layer in ("settings", "storage", "data", "runtime", "handlers", "tracking", "training", "inference",
                  "experiments", "cli"):
        assert (PACKAGE / layer / "__init__.py").is_file(), layer


def test_the_library_never_imports_its_command_line() -> None:
    trees = modules()
    library = {name: tree for name, tree in trees.items()
               if name != "ignite_mnist.__main__" and not name.startswith("ignite_mnist.cli")}
    assert imports_of_layer(library, "ignite_mnist", "ignite_mnist.cli") == []


def test_tracking_does_not_import_the_handlers() -> None:
    """Handlers attach trackers (``handlers -> tracking``); a tracker knows nothing of the handlers."""
    assert imports_of_layer(modules(), "ignite_mnist.tracking", "ignite_mnist.handlers") == []


def _package(root: Path, files: dict[str, str]) -> dict[str, ast.Module]:
    """A package ``pkg`` of ``files`` (path in the package -> source) under ``root``, read as :func:`modules` does."""
    trees = {}
    for path, source in files.items():
        (root / "pkg" / path).parent.mkdir(parents=True, exist_ok=True)
        (root / "pkg" / path).write_text(source)
        parts = ("pkg", *Path(path).with_suffix("").parts)
        trees[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = ast.parse(source)
    return trees


def test_the_checks_see_lazy_imports_cycles_and_library_to_cli_imports(tmp_path: Path) -> None:
    """The checks above, on a small package that breaks each rule the way the old code did."""
    trees = _package(tmp_path, {
        "__init__.py": "", "cli/__init__.py": "", "cli/parsing.py": "PROG = 'x'\n",
        "cli/commands.py": "from pkg.cli.train import train\n",
        "cli/train.py": "def train():\n    from pkg.cli.commands import main\n",
        "sweep.py": "from .cli.parsing import PROG\n",
        "tracking.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.handlers import Record\n",
        "handlers.py": "def attach():\n    import pkg.tracking\n",
    })
    assert import_cycle(trees, tmp_path) == ["pkg.cli.commands", "pkg.cli.train", "pkg.cli.commands"]
    assert imports("pkg.cli.train", trees["pkg.cli.train"], tmp_path, lazy=False) == set()
    library = {name: tree for name, tree in trees.items() if not name.startswith("pkg.cli")}
    assert imports_of_layer(library, "pkg", "pkg.cli", tmp_path) == [
        "pkg.sweep -> pkg.cli", "pkg.sweep -> pkg.cli.parsing", "pkg.sweep -> pkg.cli.parsing.PROG"]
    assert imports_of_layer(trees, "pkg.tracking", "pkg.handlers", tmp_path) == [
        "pkg.tracking -> pkg.handlers", "pkg.tracking -> pkg.handlers.Record"]
    assert imports_of_layer(trees, "pkg.handlers", "pkg.tracking", tmp_path) == ["pkg.handlers -> pkg.tracking"]
    del trees["pkg.cli.train"]
    assert import_cycle(trees, tmp_path) is None


def test_the_core_does_not_import_the_handlers() -> None:
    trees = modules()
    for core in ("ignite_mnist.storage.checkpoints", "ignite_mnist.storage.run_dir", "ignite_mnist.inference.trained",
                 "ignite_mnist.training.plots", "ignite_mnist.runtime.distributed", "ignite_mnist.inference.export",
                 "ignite_mnist.settings.config", "ignite_mnist.registry"):
        assert not {m for m in module_level_imports(core, trees[core]) if m.startswith("ignite_mnist.handlers")}, core


CHOICE_REGISTRIES = {
    "model": registry.MODELS, "dataset": registry.DATASETS, "optimizer": registry.OPTIMIZERS,
    "lr_schedule": registry.LR_SCHEDULES, "loader": registry.LOADERS,
}


@pytest.mark.parametrize("setting", sorted(CHOICE_REGISTRIES))
def test_cli_choices_are_the_registry_and_every_name_resolves(setting: str) -> None:
    names = CHOICE_REGISTRIES[setting].names
    (action,) = [a for a in build_train_parser()._actions if a.dest == setting]
    if action.choices is None:  # open choices: the registry's names, then the other accepted form
        assert action.metavar.strip("{}").split(",")[: len(names)] == list(names)
    else:
        assert tuple(action.choices) == names
    for name in names:
        assert CHOICE_REGISTRIES[setting].load(name) is not None


def test_export_formats_and_trackers_resolve() -> None:
    from ignite_mnist.cli.inference import build_export_parser

    (action,) = [a for a in build_export_parser()._actions if a.dest == "format"]
    assert tuple(action.choices) == registry.EXPORT_FORMATS.names
    for name in registry.EXPORT_FORMATS.names:
        assert registry.EXPORT_FORMATS.load(name).name == name
    for name in registry.TRACKERS.names:
        assert registry.TRACKERS.load(name).name == name


def test_every_choice_of_the_config_comes_from_the_registry_module() -> None:
    lists = [v for v in vars(registry).values() if isinstance(v, tuple)]
    lists += [r.names for r in vars(registry).values() if isinstance(r, registry.Registry)]
    for name, field in setting_fields().items():
        choices = field.metadata.get("choices")
        assert choices is None or any(choices is chosen or choices == chosen for chosen in lists), flag_name(name)


def test_the_core_names_no_tracker_each_tracker_declares_its_settings_and_files() -> None:
    """A new tracker is a module and registry lines: TrainConfig and RunDir know none by name."""
    from ignite_mnist.storage.run_dir import RunDir

    assert registry.TRACKER_SETTINGS.names == registry.TRACKERS.names
    core = [f.name for f in dataclasses.fields(TrainConfig)] + [name.lower() for name in vars(RunDir)]
    for tracker in registry.TRACKERS.names:
        settings = registry.TRACKER_SETTINGS.load(tracker)
        assert settings.FILES, tracker
        assert [name for name in core if tracker in name] == [], tracker
        assert all(f.name.startswith(tracker + "_") for f in dataclasses.fields(settings)), tracker
    source = (PACKAGE / "settings" / "config.py").read_text() + (PACKAGE / "storage" / "run_dir.py").read_text()
    assert "WANDB_MODE" not in source and "MLFLOW_" not in source


def test_help_and_usage_errors_do_not_import_torch() -> None:
    code = ("import sys\nfrom ignite_mnist.cli import main\n"
            "try:\n    main(['--epochs', '0'])\nexcept SystemExit:\n    pass\n"
            "print('torch' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert result.stdout.strip() == "False", result.stderr


def ignite_private_names() -> set[str]:
    """Every ``_name`` (one leading underscore) Ignite defines: its modules' functions, classes and globals, its
    classes' methods and attributes, and what its code assigns to ``self._name``: read from Ignite's source."""
    import ignite

    names = set()
    for path in Path(ignite.__file__).parent.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.add(node.name)
            elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
                names.add(node.attr)
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                names.add(node.id)
    return {name for name in names if name.startswith("_") and not name.startswith("__")}


def ignite_derived_classes(trees: dict[str, ast.Module]) -> set[str]:
    """Names of this package's classes that derive from an Ignite class (directly, or through one of ours)."""
    imported = {alias.asname or alias.name for tree in trees.values() for node in ast.walk(tree)
                if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("ignite.")
                for alias in node.names}
    classes = {node.name: {getattr(base, "id", getattr(base, "attr", "")) for base in node.bases}
               for tree in trees.values() for node in ast.walk(tree) if isinstance(node, ast.ClassDef)}
    derived: set[str] = set()
    while True:
        grown = {name for name, bases in classes.items() if bases & (imported | derived)}
        if grown == derived:
            return derived
        derived = grown


def private_ignite_uses(trees: dict[str, ast.Module], private: set[str]) -> list[str]:
    """``x._name`` with a name Ignite keeps private, and ``from ignite... import _name``, in the package.

    ``self._name`` in a class of ours that does not derive from Ignite is its own attribute, not Ignite's."""
    derived = ignite_derived_classes(trees)
    found = []
    for module, tree in trees.items():
        for cls in [None, *[n for n in ast.walk(tree) if isinstance(n, ast.ClassDef)]]:
            own_self = cls is not None and cls.name not in derived
            body = cls.body if cls is not None else [n for n in tree.body if not isinstance(n, ast.ClassDef)]
            for node in (child for part in body for child in ast.walk(part)):
                if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("ignite"):
                    found += [f"{module}: imports {alias.name}" for alias in node.names if alias.name in private]
                elif isinstance(node, ast.Attribute) and node.attr in private:
                    on_self = isinstance(node.value, ast.Name) and node.value.id == "self"
                    if not (on_self and own_self):
                        found.append(f"{module}:{node.lineno}: .{node.attr}")
    return sorted(set(found))


def test_no_private_ignite_attribute_is_used() -> None:
    private = ignite_private_names()
    assert {"_saved", "_event_handlers", "_process_function", "_dataloader_iter"} <= private  # the rule sees them
    planted = ast.parse("def best(checkpoint):\n    return checkpoint._saved[-1]\n")
    assert private_ignite_uses({"planted": planted}, private) == ["planted:2: ._saved"]  # and would catch one
    assert private_ignite_uses(modules(), private) == []


def test_the_supported_ignite_range_is_the_installed_one() -> None:
    """setup.cfg pins the Ignite minor version CI installs and tests (0.5.x from 0.5.5)."""
    import ignite
    from packaging.requirements import Requirement

    (line,) = [line.strip() for line in (REPO / "setup.cfg").read_text().splitlines()
               if line.strip().startswith("pytorch-ignite")]
    requirement = Requirement(line)
    assert requirement.specifier.contains(ignite.__version__) and "<0.6" in str(requirement.specifier)
