"""The shape of the code: functions a reader holds in view, imports that point down, one list per name."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from ignite_mnist import registry
from ignite_mnist.cli.train import build_train_parser
from ignite_mnist.config import TrainConfig, flag_name
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


def module_level_imports(name: str, tree: ast.Module) -> set[str]:
    """The package modules ``name`` imports when it is imported (not inside functions or TYPE_CHECKING)."""
    package = name if (PACKAGE / Path(*name.split(".")[1:]) / "__init__.py").exists() else name.rpartition(".")[0]
    found = set()
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.module:
            base = node.module if node.level == 0 else f"{package.rsplit('.', node.level - 1)[0]}.{node.module}"
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    # importing a.b.c from outside package a.b runs a/b/__init__ first (the top package's __init__ is lazy)
    found |= {parent for m in found for parent in _packages_of(m) if not name.startswith(parent + ".")}
    return {imported for imported in found if imported.startswith("ignite_mnist")}


def _packages_of(module: str) -> list[str]:
    parts = module.split(".")
    return [".".join(parts[:i]) for i in range(2, len(parts))]


def test_imports_have_no_cycles() -> None:
    trees = modules()
    graph = {name: module_level_imports(name, tree) & set(trees) - {name} for name, tree in trees.items()}
    state: dict[str, str] = {}

    def visit(name: str, path: list[str]) -> None:
        if state.get(name) == "done":
            return
        assert state.get(name) != "open", "import cycle: " + " -> ".join(path + [name])
        state[name] = "open"
        for imported in sorted(graph[name]):
            visit(imported, path + [name])
        state[name] = "done"

    for name in sorted(graph):
        visit(name, [])


def test_the_core_does_not_import_the_handlers() -> None:
    trees = modules()
    for core in ("ignite_mnist.checkpoints", "ignite_mnist.run_dir", "ignite_mnist.inference", "ignite_mnist.plots",
                 "ignite_mnist.distributed", "ignite_mnist.export", "ignite_mnist.config", "ignite_mnist.registry"):
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
    import dataclasses

    lists = [v for v in vars(registry).values() if isinstance(v, tuple)]
    lists += [r.names for r in vars(registry).values() if isinstance(r, registry.Registry)]
    for field in dataclasses.fields(TrainConfig):
        choices = field.metadata.get("choices")
        assert choices is None or any(choices is chosen or choices == chosen for chosen in lists), flag_name(field.name)


def test_help_and_usage_errors_do_not_import_torch() -> None:
    code = ("import sys\nfrom ignite_mnist.cli import main\n"
            "try:\n    main(['--epochs', '0'])\nexcept SystemExit:\n    pass\n"
            "print('torch' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert result.stdout.strip() == "False", result.stderr
