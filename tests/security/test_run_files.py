"""The one reader (:mod:`ignite_mnist.storage.reader`) and the one writer (:mod:`ignite_mnist.storage.files`) on
real files: pipes, devices, links out of the folder, sparse 3 GB files; nothing outside the folder changes."""

from __future__ import annotations

import json
import os
import resource
import time
from pathlib import Path

import pytest
import torch

from ignite_mnist.errors import CheckpointError, RunDirError, UnsafeFileError, WriteError
from ignite_mnist.limits import MAX_METRICS_LINE_BYTES, MAX_SETTINGS_FILE_BYTES
from ignite_mnist.storage.checkpoints import load_checkpoint
from ignite_mnist.storage.files import (
    FILE,
    FOLDER,
    append_line,
    check_entries,
    lock_held,
    own_folder,
    replacing_path,
    write_json,
)
from ignite_mnist.storage.reader import read_file, read_json, read_lines
from ignite_mnist.storage.run_dir import RunDir, read_metrics_log, truncate_metrics_log

SPARSE = 3 * 2**30


def sparse(path: Path, size: int = SPARSE) -> Path:
    with open(path, "wb") as handle:  # nothing written: the file system stores no block of it
        handle.truncate(size)
    return path


@pytest.fixture
def folders(tmp_path: Path) -> tuple[Path, Path]:
    """A run folder and a victim file beside it (``../victim.txt`` from the run)."""
    run = tmp_path / "run"
    run.mkdir()
    (tmp_path / "victim.txt").write_text("victim")
    return run, tmp_path / "victim.txt"


def unchanged(victim: Path, stamp: tuple[str, int]) -> bool:
    return (victim.read_text(), victim.stat().st_mtime_ns) == stamp


def stamp_of(victim: Path) -> tuple[str, int]:
    return victim.read_text(), victim.stat().st_mtime_ns


def test_the_reader_refuses_pipes_devices_links_out_and_big_files_without_reading_them(folders) -> None:
    run, victim = folders
    os.mkfifo(run / "fifo.json")
    (run / "zero.json").symlink_to("/dev/zero")
    (run / "out.json").symlink_to(victim)
    (run / "folder.json").mkdir()
    sparse(run / "big.json")
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    reasons = {}
    for name in ("fifo.json", "zero.json", "out.json", "folder.json", "big.json"):
        with pytest.raises(UnsafeFileError) as raised:  # a pipe nobody writes to would block a plain open forever
            read_file(run / name, MAX_SETTINGS_FILE_BYTES, inside=run)
        reasons[name] = raised.value.reason
        assert "\n" not in str(raised.value)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 100_000  # KiB: the 3 GB were not read
    assert reasons["fifo.json"] == "a pipe (FIFO), not a regular file"
    assert reasons["zero.json"].startswith("a link to /dev/zero, outside")
    assert reasons["out.json"] == f"a link to {victim}, outside {run}"
    assert reasons["folder.json"] == "a folder, not a regular file"
    assert reasons["big.json"] == "3 GiB, more than the 1 MiB such a file may have"
    with pytest.raises(UnsafeFileError, match="a device, not a regular file"):  # named on the command line
        read_file("/dev/zero", MAX_SETTINGS_FILE_BYTES)
    assert read_file(run / "out.json", MAX_SETTINGS_FILE_BYTES) == b"victim"  # a file you name follows its link


def test_a_link_inside_the_folder_is_read(folders) -> None:
    run, _ = folders
    (run / "config.json").write_text('{"epochs": 2}')
    (run / "copy.json").symlink_to("config.json")
    assert read_json(run / "copy.json", MAX_SETTINGS_FILE_BYTES, inside=run) == {"epochs": 2}
    with pytest.raises(FileNotFoundError):
        read_file(run / "missing.json", MAX_SETTINGS_FILE_BYTES, inside=run)


def test_json_nested_too_deeply_is_a_value_error(folders) -> None:
    run, _ = folders
    (run / "deep.json").write_text("[" * 100_000)
    with pytest.raises(ValueError, match="nested too deeply"):
        read_json(run / "deep.json", MAX_SETTINGS_FILE_BYTES, inside=run)


def test_metrics_lines_are_bounded_one_by_one(folders) -> None:
    run, _ = folders
    path = run / "metrics.jsonl"
    long_row = json.dumps({"iteration": 1, "pad": "x" * MAX_METRICS_LINE_BYTES})
    path.write_text(f'{{"iteration": 1}}\n{long_row}\n{"[" * 60_000}\n\n{{"iteration": 2}}')
    assert list(read_lines(path, 1 << 20, MAX_METRICS_LINE_BYTES)) == [
        b'{"iteration": 1}', None, b"[" * 60_000, b"", b'{"iteration": 2}']
    assert read_metrics_log(path) == [{"iteration": 1}, {"iteration": 2}]  # nested 60,000 deep: not a row
    assert truncate_metrics_log(path, 1) == 2  # the long line and the deep one dropped, with the later row
    assert read_metrics_log(path) == [{"iteration": 1}]


def test_a_metrics_log_that_is_a_device_or_too_big_is_refused(folders) -> None:
    run, _ = folders
    (run / "metrics.jsonl").symlink_to("/dev/zero")
    with pytest.raises(UnsafeFileError, match="a link to /dev/zero"):
        RunDir(run).read_metrics()
    (run / "metrics.jsonl").unlink()
    sparse(run / "metrics.jsonl")
    with pytest.raises(UnsafeFileError, match="3 GiB, more than the 16 MiB"):
        truncate_metrics_log(run / "metrics.jsonl", 5)


def test_a_planted_lock_link_is_replaced_and_its_target_unchanged(folders) -> None:
    run, victim = folders
    stamp = stamp_of(victim)
    (run / ".lock").symlink_to("../victim.txt")
    with RunDir(run).lock():
        assert lock_held(run / ".lock")
        assert not (run / ".lock").is_symlink() and (run / ".lock").read_text() == f"{os.getpid()}\n"
    assert unchanged(victim, stamp)
    (run / ".lock").unlink()
    os.mkfifo(run / ".lock")  # a pipe: replaced too (never blocks)
    with RunDir(run).lock():
        assert (run / ".lock").is_file()


def test_a_second_holder_is_told_who_holds_the_lock(folders) -> None:
    run, _ = folders
    with RunDir(run).lock(), pytest.raises(RunDirError, match=f"in use by another ignite-mnist process "
                                                              f"\\(pid {os.getpid()}\\)"), \
            RunDir(run).lock():  # flock: a second open of the file is another holder, even in this process
        raise AssertionError("the lock was taken twice")


def test_a_lock_that_is_a_folder_is_refused(folders) -> None:
    run, _ = folders
    (run / ".lock").mkdir()
    with pytest.raises(UnsafeFileError, match="a folder"), RunDir(run).lock():
        pass


def test_replaced_files_never_write_through_a_link(folders) -> None:
    run, victim = folders
    stamp = stamp_of(victim)
    (run / "summary.json").symlink_to(victim)
    (run / "config.json.partial").symlink_to(victim)  # a planted temporary name: removed, not followed
    os.mkfifo(run / "config.json")
    write_json(run / "summary.json", {"a": 1})
    write_json(run / "config.json", {"b": 2})
    assert json.loads((run / "summary.json").read_text()) == {"a": 1} and not (run / "summary.json").is_symlink()
    assert json.loads((run / "config.json").read_text()) == {"b": 2}
    assert sorted(p.name for p in run.iterdir()) == ["config.json", "summary.json"]
    assert unchanged(victim, stamp)
    (run / "model.onnx").symlink_to(victim)
    with replacing_path(run / "model.onnx") as partial:  # a library that writes by name writes the new partial
        partial.write_bytes(b"model")
    assert (run / "model.onnx").read_bytes() == b"model" and unchanged(victim, stamp)
    (run / "plot.png").mkdir()
    with pytest.raises(UnsafeFileError, match="a folder where ignite-mnist writes a file"):
        write_json(run / "plot.png", {})


def test_rows_are_appended_only_to_a_regular_file(folders) -> None:
    run, victim = folders
    stamp = stamp_of(victim)
    (run / "metrics.jsonl").symlink_to(victim)
    with pytest.raises(UnsafeFileError, match=r"metrics.jsonl: refused: a link \(to .*victim.txt\), not a regular"):
        append_line(run / "metrics.jsonl", "{}")
    (run / "metrics.jsonl").unlink()
    os.mkfifo(run / "metrics.jsonl")  # nobody reading it: a plain open for writing would block
    with pytest.raises(UnsafeFileError, match="a pipe"):
        append_line(run / "metrics.jsonl", "{}")
    reader = os.open(run / "metrics.jsonl", os.O_RDONLY | os.O_NONBLOCK)  # someone reading it: still refused
    try:
        with pytest.raises(UnsafeFileError, match="a pipe"):
            append_line(run / "metrics.jsonl", "{}")
    finally:
        os.close(reader)
    assert unchanged(victim, stamp)


def test_own_folders_and_entries_are_real(folders, tmp_path: Path) -> None:
    run, victim = folders
    (tmp_path / "elsewhere").mkdir()
    (run / "checkpoints").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(UnsafeFileError, match=r"checkpoints: refused: a link .* not a folder inside"):
        own_folder(run / "checkpoints", run)
    with pytest.raises(UnsafeFileError, match="checkpoints: refused: a link"):
        check_entries(run, {"checkpoints": FOLDER})
    assert own_folder(run / "plots", run).is_dir()
    (run / "checkpoints").unlink()
    os.mkfifo(run / "mlflow.db")
    with pytest.raises(UnsafeFileError, match=r"mlflow.db: refused: a pipe \(FIFO\), not a file or folder"):
        RunDir(run).check_entries({"mlflow.db": "file or folder"})
    os.unlink(run / "mlflow.db")
    (run / "events.out.tfevents.1.host").symlink_to(victim)
    with pytest.raises(UnsafeFileError, match=r"events\.out\.tfevents\.1\.host: refused: a link"):
        check_entries(run, {"events.out.tfevents.*": FILE})
    with pytest.raises(WriteError):
        own_folder(tmp_path / "missing" / "plots", tmp_path)


def test_checkpoints_are_read_once_through_the_reader(folders, tmp_path: Path) -> None:
    run, _victim = folders
    folder = run / "checkpoints"
    folder.mkdir()
    torch.save({"model": {"w": torch.ones(2)}}, tmp_path / "outside.pt")
    (folder / "last_checkpoint_1.pt").symlink_to(tmp_path / "outside.pt")
    os.mkfifo(folder / "last_checkpoint_2.pt")
    (folder / "last_checkpoint_3.pt").symlink_to("/dev/zero")
    sparse(folder / "last_checkpoint_4.pt")
    started = time.monotonic()
    errors = {}
    for number in (1, 2, 3, 4):
        with pytest.raises(CheckpointError) as raised:
            load_checkpoint(folder / f"last_checkpoint_{number}.pt", inside=run)
        errors[number] = str(raised.value)
    assert time.monotonic() - started < 60  # a hang guard: nothing read the 3 GB, nothing waited on the pipe
    assert "a link to" in errors[1] and "outside" in errors[1]
    assert "a pipe (FIFO)" in errors[2] and "a link to /dev/zero" in errors[3]
    assert "3 GiB, more than the 1 GiB" in errors[4]
    assert load_checkpoint(folder / "last_checkpoint_1.pt")["model"]["w"].sum() == 2  # named by you: read


def test_a_sweep_folder_names_no_database_outside_it(tmp_path: Path) -> None:
    pytest.importorskip("optuna")
    from ignite_mnist.errors import ConfigError
    from ignite_mnist.experiments.sweep import SweepDir

    folder = tmp_path / "sweep"
    folder.mkdir()
    sweep = SweepDir(folder)
    assert sweep.storage() == f"sqlite:///{(folder / 'study.db').resolve()}"
    for recorded in (f"sqlite:///{tmp_path / 'victim.db'}", 5, ["x"]):
        write_json(folder / "sweep.json", {"study": "s", "storage": recorded})
        with pytest.raises(ConfigError, match="outside the sweep's folder; pass --storage"):
            sweep.storage()
    write_json(folder / "sweep.json", {"study": "s", "storage": "postgresql://host/db"})  # a server: not a path
    assert sweep.storage() == "postgresql://host/db"
    (folder / "sweep.json").unlink()
    (folder / "sweep.json").symlink_to("/dev/zero")
    with pytest.raises(UnsafeFileError):
        sweep.read_info()
