"""Hostile exported model files and image folders: one line (or success), never a traceback or a signal; links
out of a class folder are refused; leftovers of killed saves go on resume; an unwritable MLflow store costs
no retries."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from PIL import Image

from ignite_mnist.inference.export import TORCHSCRIPT, export_metadata
from ignite_mnist.inference.trained import load_model
from tests.conftest import synthetic_digits
from tests.security.conftest import QUIET, TINY, copy_run, count_cases, run_subprocess, snapshot

PTE_HEADER = b"\x3c\x00\x00\x00ET12eh00"


@pytest.fixture(scope="module")
def exported(trained_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real TorchScript file of the trained run's best model, with its metadata inside."""
    loaded = load_model(trained_run)
    path = tmp_path_factory.mktemp("exported") / "best.torchscript.pt"
    TORCHSCRIPT.save(loaded.model, path, json.dumps(export_metadata(loaded, TORCHSCRIPT, None, 1.0, 300)))
    return path


def digit_png(folder: Path, name: str = "digit.png", label: int = 3) -> Path:
    images, labels = synthetic_digits(50, seed=5)
    image = images[(labels == label).nonzero()[0, 0]]
    path = folder / name
    Image.fromarray(image.numpy()).save(path)
    return path


def hostile_exports(folder: Path, real: Path) -> list[Path]:
    """Files named as exported models that are not what their name says."""
    data = real.read_bytes()
    made = {
        "random.pte": os.urandom(5000), "empty.pte": b"", "header.pte": PTE_HEADER + os.urandom(4000),
        "random.onnx": os.urandom(5000), "empty.onnx": b"", "text.onnx": b"ir_version: 7",
        "random.torchscript.pt": os.urandom(5000), "truncated.torchscript.pt": data[: len(data) // 2],
        "empty.torchscript.pt": b"", "zip-header.torchscript.pt": b"PK\x03\x04",
    }
    paths = []
    for name, content in made.items():
        (folder / name).write_bytes(content)
        paths.append(folder / name)
    (folder / "zero.pte").symlink_to("/dev/zero")
    os.mkfifo(folder / "fifo.onnx")
    (folder / "folder.pte").mkdir()
    with open(folder / "huge.onnx", "wb") as handle:  # sparse: 300 MB claimed, nothing written
        handle.truncate(300 << 20)
    sidecars = {"bad-sidecar.torchscript.pt": b"{not json", "deep-sidecar.torchscript.pt": b"[" * 100_000,
                "nameless.torchscript.pt": b'{"format": "torchscript", "dataset": {"classes": ["0", "1"]}}'}
    for name, sidecar in sidecars.items():
        shutil.copy(real, folder / name)
        (folder / f"{name}.json").write_bytes(sidecar)
    return [*paths, *(folder / n for n in ("zero.pte", "fifo.onnx", "folder.pte", "huge.onnx")),
            *(folder / name for name in sidecars)]


@pytest.mark.slow  # fuzzing: every hostile exported file through its runtime
def test_hostile_exported_files(cli, exported: Path, sentinel: Path, tmp_path: Path, record_property) -> None:
    folder = tmp_path / "files"
    folder.mkdir()
    image = digit_png(tmp_path)
    files = hostile_exports(folder, exported)
    assert cli("predict", exported, image).code == 0  # the control: the real file predicts
    for path in files:
        before = snapshot(sentinel)
        started = time.monotonic()
        result = cli("predict", path, image)
        result.check(path.name)
        assert result.code != 0 or path.name == "nameless.torchscript.pt", path.name  # the metadata inside wins
        assert time.monotonic() - started < 60 and snapshot(sentinel) == before, path.name
    real = run_subprocess("predict", folder / "random.pte", image)  # ExecuTorch's runtime aborted on these
    real.check("random.pte")
    assert real.code == 1 and "not an ExecuTorch program" in real.err
    count_cases(record_property, "exported files", len(files) + 1)


def image_folder(root: Path) -> Path:
    """Two classes, four images each, in train/ and test/."""
    for split in ("train", "test"):
        for label in (0, 1):
            (root / split / str(label)).mkdir(parents=True)
            for index in range(4):
                digit_png(root / split / str(label), f"{index}.png", label)
    return root


def hostile_folders(base: Path, outside: Path) -> dict[str, Path]:
    """Image folders with links and files a listing must not follow or read."""
    def variant(name: str) -> Path:
        return image_folder(base / name)

    made = {}
    made["link-to-train"] = variant("a")
    (made["link-to-train"] / "train" / "0" / "all").symlink_to(made["link-to-train"] / "train")
    made["link-outside"] = variant("b")
    (made["link-outside"] / "train" / "0" / "x.png").symlink_to(outside / "VICTIM.pt")
    made["link-other-class"] = variant("c")
    (made["link-other-class"] / "train" / "0" / "y.png").symlink_to(made["link-other-class"] / "train" / "1" / "0.png")
    made["class-is-link"] = variant("d")
    shutil.rmtree(made["class-is-link"] / "test" / "1")
    (made["class-is-link"] / "test" / "1").symlink_to(made["class-is-link"] / "train" / "1")
    made["loop"] = variant("e")
    (made["loop"] / "train" / "1" / "loop").symlink_to(made["loop"] / "train" / "1")
    made["dangling"] = variant("f")
    (made["dangling"] / "train" / "1" / "gone.png").symlink_to(base / "nowhere.png")
    made["fifo"] = variant("g")
    os.mkfifo(made["fifo"] / "train" / "0" / "pipe.png")
    made["device"] = variant("h")
    (made["device"] / "train" / "0" / "zero.png").symlink_to("/dev/zero")
    made["corrupt"] = variant("i")
    (made["corrupt"] / "train" / "0" / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n" + os.urandom(300))
    made["bomb"] = variant("j")
    Image.new("1", (30_000, 30_000)).save(made["bomb"] / "train" / "1" / "huge.png")
    made["one-class"] = variant("k")
    shutil.rmtree(made["one-class"] / "train" / "1")
    shutil.rmtree(made["one-class"] / "test" / "1")
    made["link-inside-class"] = variant("l")  # allowed: a second name for an image of the same class
    (made["link-inside-class"] / "train" / "0" / "again.png").symlink_to(made["link-inside-class"] / "train" / "0" /
                                                                          "0.png")
    made["dot-dot-class"] = variant("m")
    (made["dot-dot-class"] / "train" / "..png").write_bytes(b"")
    return made


def test_hostile_image_folders(cli, sentinel: Path, tmp_path: Path, record_property) -> None:
    folders = hostile_folders(tmp_path / "folders", sentinel)
    for name, root in folders.items():
        before = snapshot(sentinel)
        result = cli("--dataset", f"folder:{root}", "--epochs", "1", "--output-dir", tmp_path / "runs", "--val-size",
                     "2", "--batch-size", "4", *QUIET)
        result.check(name)
        assert snapshot(sentinel) == before, name
        if name.startswith(("link-to", "link-outside", "link-other", "class-is", "loop")):
            assert result.code == 1 and "symbolic link" in result.err and "not followed" in result.err, result.err
        if name in ("link-inside-class", "dot-dot-class"):
            assert result.code == 0, result.err
    count_cases(record_property, "image folders", len(folders))


def test_a_resume_removes_what_killed_saves_left(cli, idx_root: Path, trained_run: Path, tmp_path: Path) -> None:
    run = copy_run(trained_run, tmp_path / "runs" / "done")
    stray = run / "checkpoints" / "tmpab12cd34"
    stray.write_bytes(b"half a checkpoint")
    kept = run / "checkpoints" / "tmp-notes.txt"  # not a name a save gives: left alone
    kept.write_text("mine")
    result = cli("--resume", "auto", "--output-dir", run.parent, "--run-name", run.name, "--epochs", "2",
                 "--data-dir", idx_root, *TINY, *QUIET)
    assert result.code == 0, result.err
    assert not stray.exists() and kept.exists()
    assert f"removed {stray}, a checkpoint save that was cut short" in result.out


def test_an_unwritable_mlflow_store_costs_no_retries(cli, idx_root: Path, tmp_path: Path, tmpfs) -> None:
    store = tmpfs("store", "size=16m")
    (store / "mlflow.db").write_bytes(b"")
    subprocess.run(["mount", "-o", "remount,ro", str(store)], check=True)  # the read-only store the issue names
    started = time.monotonic()
    result = cli("--data-dir", idx_root, "--output-dir", tmp_path / "runs", "--epochs", "1", "--tracker", "mlflow",
                 "--mlflow-uri", f"sqlite:///{store / 'mlflow.db'}", *TINY, *QUIET)
    assert result.code == 0, result.err
    assert "MLflow could not start (RuntimeError: cannot write its store" in result.err
    assert "training goes on without MLflow" in result.err and result.err.count("\n") == 1
    assert time.monotonic() - started < 60  # MLflow's own retries took ~76 s before the training


def test_summary_json_names_no_checkpoint_outside_its_run(cli, idx_root: Path, trained_run: Path, sentinel: Path,
                                                           tmp_path: Path, record_property) -> None:
    """``evaluate RUN`` takes the checkpoint ``summary.json`` names only inside the run's ``checkpoints/``."""
    run = copy_run(trained_run, tmp_path / "runs" / "done")
    summary = json.loads((run / "summary.json").read_text())
    (sentinel / "best_checkpoint_99_accuracy=1.0.pt").write_bytes(b"not a checkpoint")
    values = ["../../../VICTIM.pt", str(sentinel / "best_checkpoint_99_accuracy=1.0.pt"),
              "checkpoints/../../../sentinel/best_checkpoint_99_accuracy=1.0.pt", "a\0b", "x" * 5000, None, 5,
              {"a": 1}, ["checkpoints"], "checkpoints", "."]
    for value in values:
        (run / "summary.json").write_text(json.dumps(summary | {"best_checkpoint": value}))
        before = snapshot(sentinel)
        result = cli("evaluate", run, "--data-dir", idx_root, "--json", "--plot", tmp_path / "cm.png")
        result.check(repr(value)[:40])
        assert result.code == 0 and json.loads(result.out)["checkpoint"].startswith(str(run / "checkpoints")), value
        assert snapshot(sentinel) == before
    count_cases(record_property, "summary.json", len(values))
