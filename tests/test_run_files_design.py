"""One reader and one writer: no module of the package opens, reads, writes, copies or moves a file but
:mod:`ignite_mnist.storage.reader` and :mod:`ignite_mnist.storage.files`, and the few named below, each for a reason.

The rule is read from the source (every call, by its syntax), so a new ``open(path)`` or ``Path.read_text()``
on a run directory's file fails here, not in a review.
"""

from __future__ import annotations

import ast

from tests.test_design import modules

#: The modules that own reading and writing such files.
OWNERS = ("ignite_mnist.storage.reader", "ignite_mnist.storage.files")
#: Methods that read or write a file, whatever they are called on.
FILE_METHODS = frozenset({"open", "read_text", "read_bytes", "write_text", "write_bytes", "rename"})
#: Functions that read, write, copy or move a file by its name.
FILE_FUNCTIONS = frozenset({
    "open", "os.open", "os.rename", "os.replace", "json.load", "json.dump", "pickle.load", "pickle.dump",
    "torch.load", "torch.save", "torch.jit.load", "onnx.load", "zipfile.ZipFile", "sqlite3.connect",
    "shutil.copy", "shutil.copy2", "shutil.copyfile", "shutil.copytree", "shutil.move", "shutil.copyfileobj",
    "np.fromfile", "np.load", "np.save", "numpy.fromfile", "numpy.load", "numpy.save",
})
#: (module, call) -> why it may read or write a file itself.
ALLOWED = {
    ("ignite_mnist.console", "os.open"): "/dev/null in place of a closed stream",
    ("ignite_mnist.console", "open"): "/dev/null in place of a closed stream",
    ("ignite_mnist.data.idx", "open"): "the dataset's IDX files in --data-dir (your command line), size-checked first",
    ("ignite_mnist.data.idx", "gzip.open"): "the dataset's downloaded archives in --data-dir",
    ("ignite_mnist.data.idx", "shutil.copyfileobj"): "unpacks an archive into a file files.replacing opened",
    ("ignite_mnist.data.idx", "np.fromfile"): "the dataset's IDX files, headers and sizes checked first, count bounded",
    ("ignite_mnist.data.preprocess", "Image.open"): "image files: decoded by Pillow behind the image checks",
    ("ignite_mnist.inference.demo", "resources.files('ignite_mnist.inference').joinpath('demo.html').read_bytes"):
        "the package's own page",
    ("ignite_mnist.inference.executorch", "open"): "/dev/null, to silence the runtime's stderr",
    ("ignite_mnist.inference.executorch", "path.write_bytes"): "the new .partial files.replacing_path hands export",
    ("ignite_mnist.inference.export", "torch.jit.load"): "an exported model you named, once reader.check_file passed",
    ("ignite_mnist.inference.export", "onnx.load"): "an exported model you named, once reader.check_file passed",
    ("ignite_mnist.inference.export", "zipfile.ZipFile"): "an exported model you named, once reader.check_file passed",
    ("ignite_mnist.runtime.distributed", "open"): "the launcher's own temporary folder, never a run directory",
    ("ignite_mnist.runtime.distributed", "pickle.dump"): "rank 0's result, in the launcher's temporary folder",
    ("ignite_mnist.runtime.distributed", "pickle.load"): "rank 0's result, in the launcher's temporary folder",
    ("ignite_mnist.runtime.distributed", "p.read_text"): "the ranks' reports, in the launcher's temporary folder",
    ("ignite_mnist.storage.checkpoints", "torch.load"): "reads the handle reader.open_file opened",
    ("ignite_mnist.storage.checkpoints", "zipfile.ZipFile"): "reads the handle reader.open_file opened",
    ("ignite_mnist.tracking.mlflow", "sqlite3.connect"):
        "the MLflow store: the run's mlflow.db (found a regular file by RunDir.check_entries) or --mlflow-uri's",
    ("ignite_mnist.tracking.mlflow", "self.logger.open"): "the tracker's logger, not a file",
    ("ignite_mnist.tracking.tensorboard", "self.logger.open"): "the tracker's logger, not a file",
}


def file_calls(name: str, tree: ast.Module) -> list[tuple[str, int, str]]:
    """``(module, line, call)`` of every call in ``tree`` that reads or writes a file by itself."""
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        call = ast.unparse(node.func)
        method = node.func.attr if isinstance(node.func, ast.Attribute) else None
        if call in FILE_FUNCTIONS or method in FILE_METHODS:
            found.append((name, node.lineno, call))
    return found


def violations(trees: dict[str, ast.Module]) -> list[str]:
    found = sorted(found for name, tree in trees.items() if name not in OWNERS for found in file_calls(name, tree))
    return [f"{name}:{line}: {call}" for name, line, call in found if (name, call) not in ALLOWED]


def test_only_the_reader_and_the_writer_touch_files() -> None:
    trees = modules()
    assert violations(trees) == []
    used = {(name, call) for name, tree in trees.items() for name, _, call in file_calls(name, tree)}
    assert sorted(set(ALLOWED) - used) == []  # no reason is kept for a call that is gone


def test_the_rule_finds_the_reads_and_writes_of_the_last_round() -> None:
    """What issue 29 found, planted in a module: each is reported; the same in the reader is its job."""
    planted = ast.parse(
        "import json, shutil, os\n"
        "def read(run_dir):\n"
        "    config = json.loads(run_dir.config_file.read_text(encoding='utf-8'))\n"
        "    rows = Path(run_dir.metrics_file).read_bytes().splitlines()\n"
        "def lock(path):\n"
        "    handle = open(path, 'a+', encoding='utf-8')\n"
        "def aside(entry, target, copy):\n"
        "    entry.rename(target)\n"
        "    shutil.copy2(copy, target)\n"
        "    os.replace(copy, target)\n"
        "    return torch.load(copy, weights_only=True), json.load(open(copy))\n"
    )
    assert violations({"ignite_mnist.experiments.compare": planted}) == [
        "ignite_mnist.experiments.compare:3: run_dir.config_file.read_text",
        "ignite_mnist.experiments.compare:4: Path(run_dir.metrics_file).read_bytes",
        "ignite_mnist.experiments.compare:6: open",
        "ignite_mnist.experiments.compare:8: entry.rename",
        "ignite_mnist.experiments.compare:9: shutil.copy2",
        "ignite_mnist.experiments.compare:10: os.replace",
        "ignite_mnist.experiments.compare:11: json.load",
        "ignite_mnist.experiments.compare:11: open",
        "ignite_mnist.experiments.compare:11: torch.load",
    ]
    assert violations({"ignite_mnist.storage.reader": planted}) == []
