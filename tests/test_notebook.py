"""``examples/tutorial.ipynb`` runs top to bottom in a real Jupyter kernel on real MNIST and shows what it says.

The kernel is this interpreter (a kernel spec written to a temporary folder on
``$JUPYTER_PATH``), so the test runs in any fresh virtualenv with the ``notebook``
extra, whatever kernels the machine has registered.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

NOTEBOOK = REPO / "examples" / "tutorial.ipynb"
KERNEL = "ignite-mnist-tests"
WIDGET = "application/vnd.jupyter.widget-view+json"

nbformat = pytest.importorskip("nbformat", reason="the notebook extra is not installed (pip install -e '.[notebook]')")
nbclient = pytest.importorskip("nbclient", reason="the notebook extra is not installed (pip install -e '.[notebook]')")
pytest.importorskip("ipykernel", reason="the notebook extra is not installed (pip install -e '.[notebook]')")


def test_the_notebook_is_committed_without_outputs() -> None:
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code and all(cell.outputs == [] and cell.execution_count is None for cell in code)


def _kernel_of_this_interpreter(folder: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    spec = folder / "kernels" / KERNEL
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "ignite-mnist tests", "language": "python",
    }))
    monkeypatch.setenv("JUPYTER_PATH", str(folder))
    monkeypatch.setenv("PYTHONPATH", str(REPO))  # the kernel imports this checkout
    return KERNEL


def _text(cell: dict) -> str:
    return "".join(output.get("text", "") for output in cell.outputs if output.output_type == "stream")


@pytest.mark.integration
def test_the_tutorial_runs_top_to_bottom_and_shows_its_results(mnist_root: Path, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    kernel = _kernel_of_this_interpreter(tmp_path / "jupyter", monkeypatch)
    # the pad the last cell started answers from the kernel (a person's browser would load it in the IFrame)
    notebook.cells.append(nbformat.v4.new_code_cell(
        "import urllib.request\nprint('pad page', urllib.request.urlopen(pad.url, timeout=60).status)"))
    client = nbclient.NotebookClient(notebook, kernel_name=kernel, timeout=600,
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()  # a cell that raises fails the test with its traceback
    printed = "\n".join(_text(cell) for cell in notebook.cells if cell.cell_type == "code")

    accuracies = {name: float(value) for name, value in
                  re.findall(r"^(plain loop|Ignite engine|run\(\)): test accuracy ([\d.]+)%", printed, re.MULTILINE)}
    assert accuracies.keys() == {"plain loop", "Ignite engine", "run()"}, printed
    # the plain loop and the Ignite engine: the same 55,000 images, one epoch, the same start; only the order differs
    assert accuracies["plain loop"] > 93 and accuracies["Ignite engine"] > 93 and accuracies["run()"] >= 98.5
    assert abs(accuracies["plain loop"] - accuracies["Ignite engine"]) < 1.5, printed
    assert re.search(r"^drawn digit: 7 \(probability", printed, re.MULTILINE), printed
    outputs = [output for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs]
    pictures = [output for output in outputs if "image/png" in output.get("data", {})]
    assert len(pictures) >= 8  # samples, curves, confusion matrix, misclassified, the run's three plots, the digit
    ignite_cell = next(cell for cell in notebook.cells if "attach_progress(" in cell.source)
    assert any(WIDGET in output.get("data", {}) for output in ignite_cell.outputs)  # Ignite's progress bars: widgets
    assert "pad page 200" in printed
    assert (tmp_path / "runs" / "my_digit.png").is_file()


def test_the_notebook_sets_its_threads_and_writes_under_a_git_ignored_folder() -> None:
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    setup = notebook.cells[1].source
    assert "torch.set_num_threads(1)" in setup and 'RUNS = Path("runs")' in setup
    ignored = (REPO / ".gitignore").read_text().splitlines()
    assert "/examples/runs/" in ignored and "/examples/data/" in ignored
