"""Every name a run directory (and a sweep folder) holds, planted as a link out of it, a pipe, a link to
``/dev/zero`` or a sparse 3 GB file, under every command that reads or writes it: success or one line (exit 1
when refused), never a traceback or a hang, and nothing outside the run changed (content and modification time).

In-process through the command line's own ``main`` (``cli``); the three cases the issue names, and the memory
of the sparse ones, in real processes.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.security.conftest import QUIET, TINY, Outcome, copy_run, count_cases
from tests.security.test_fuzz_checkpoints import interrupted_run
from tests.security.test_fuzz_files import digit_png

HAZARDS = ("link-out", "fifo", "dev-zero", "sparse-3g")
FILE, FOLDER = "file", "folder"
#: The names of a run directory and what they are (the checkpoint ``--resume auto`` takes, for a resume).
RUN_ENTRIES = {
    "config.json": FILE, "config.json.partial": FILE, "metrics.jsonl": FILE, "summary.json": FILE, ".lock": FILE,
    "checkpoints": FOLDER, "checkpoints/last_checkpoint_8.pt": FILE, "plots": FOLDER, "wandb": FOLDER,
    "mlflow.db": FILE, "mlartifacts": FOLDER, "events.out.tfevents.1700000000.host.1.0": FILE,
}
#: What a finished run is read for (evaluate, predict, export) besides its settings and logs.
BEST = "checkpoints/best_checkpoint_16_accuracy={score}.pt"
#: The names of a sweep folder.
SWEEP_ENTRIES = {"sweep.yaml": FILE, "sweep.json": FILE, "study.db": FILE, ".lock": FILE, "workers": FOLDER,
                 "trial-0000": FOLDER}
SPARSE = 3 * 2**30
#: Seconds one case may take before it counts as a hang (a blocking open of a pipe never returns).
HANG = 120


@contextlib.contextmanager
def deadline(seconds: int) -> Iterator[None]:
    """Fail a case that hangs (a pipe opened for reading blocks until someone writes: SIGALRM interrupts it)."""
    def hung(signum: int, frame: object) -> None:
        raise TimeoutError(f"no answer in {seconds} s")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def plant(path: Path, hazard: str, outside: Path, kind: str) -> None:
    """Put ``hazard`` where ``path`` is (whatever was there goes)."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif os.path.lexists(path):
        path.unlink()
    path.parent.mkdir(parents=True, exist_ok=True)
    if hazard == "link-out":  # a checkpoint: to a real one of another run
        target = "folder" if kind == FOLDER else "folder/last_checkpoint_99.pt" if path.suffix == ".pt" else "notes.txt"
        path.symlink_to(outside / target)
    elif hazard == "fifo":
        os.mkfifo(path)
    elif hazard == "dev-zero":
        path.symlink_to("/dev/zero")
    else:
        with open(path, "wb") as handle:
            handle.truncate(SPARSE)


def state(root: Path, skip: Callable[[Path], bool]) -> dict[str, tuple[str, int]]:
    """``{relative path: (what it holds, modification time)}`` of everything under ``root`` but what ``skip`` says."""
    found = {}
    for path in sorted(root.rglob("*")):
        if skip(path):
            continue
        info = os.lstat(path)
        if path.is_symlink():
            what = f"link to {os.readlink(path)}"
        elif path.is_dir():
            what = "folder"
        else:
            what = hashlib.sha256(path.read_bytes()).hexdigest()
        found[str(path.relative_to(root))] = (what, info.st_mtime_ns)
    return found


@pytest.fixture
def outside(tmp_path: Path, trained_run: Path) -> Path:
    """What a planted link points to: a file, and a folder holding real checkpoints of another run."""
    folder = tmp_path / "outside"
    (folder / "folder").mkdir(parents=True)
    (folder / "notes.txt").write_text("not yours")
    for source in (trained_run / "checkpoints").iterdir():
        shutil.copy(source, folder / "folder" / source.name.replace("_16", "_99"))
    return folder


def outside_of(run: Path, root: Path) -> Callable[[], dict[str, tuple[str, int]]]:
    """Everything under ``root`` but the run, its set-aside siblings (and the time of the folder they are made in)
    and W&B's home, read when called."""
    def skip(path: Path) -> bool:
        parts = path.relative_to(root).parts
        return path.is_relative_to(run) or path == run.parent or any(
            p.startswith((f"{run.name}.old-", "wandb-home")) for p in parts)
    return lambda: state(root, skip)


def check_case(result: Outcome, case: str, before: dict, after: dict) -> None:
    result.check(case)
    assert after == before, (case, {k: v for k, v in after.items() if before.get(k) != v})


def best_name(run: Path) -> str:
    return next((run / "checkpoints").glob("best_checkpoint_16_*.pt")).relative_to(run).as_posix()


def resume_refuses(entry: str, hazard: str) -> bool:
    """Whether ``--resume auto`` refuses the run (else it goes on, nothing written through what was planted)."""
    if entry in (".lock", "config.json.partial"):  # the run's own temporary names: replaced
        return False
    if entry == "checkpoints" and hazard != "link-out":  # no checkpoint there: started afresh, the old files set aside
        return False
    if hazard == "sparse-3g":  # a regular file: too big to read, or a file where a folder goes; else rewritten
        return entry in ("metrics.jsonl", "plots", "checkpoints/last_checkpoint_8.pt")
    return True  # a link, a pipe, /dev/zero: never read, written or followed


def test_resume_auto_with_every_run_entry_planted(cli, idx_root: Path, trained_run: Path, outside: Path,
                                                  tmp_path: Path, record_property) -> None:
    """``--resume auto`` reads the checkpoint and the metrics log and writes every name of the run."""
    cases = 0
    for entry, kind in RUN_ENTRIES.items():
        for hazard in HAZARDS:
            run = interrupted_run(trained_run, tmp_path / "runs" / "r")
            plant(run / entry, hazard, outside, kind)
            read = outside_of(run, tmp_path)
            before = read()
            with deadline(HANG):
                result = cli("--resume", "auto", "--output-dir", run.parent, "--run-name", run.name, "--epochs", "1",
                             "--data-dir", idx_root, *TINY, *QUIET)
            case = f"resume {entry} {hazard}"
            check_case(result, case, before, read())
            assert (result.code == 1) == resume_refuses(entry, hazard), (case, result.err)
            if entry == ".lock":  # the run's own lock: replaced by a plain file, the run goes on
                assert (run / ".lock").is_file() and not (run / ".lock").is_symlink(), case
            if entry == "metrics.jsonl" and hazard == "sparse-3g":
                assert result.code == 1 and "3 GiB, more than the 16 MiB" in result.err, result.err
            cases += 1
            for folder in [run, *run.parent.glob(f"{run.name}.old-*")]:
                shutil.rmtree(folder)
    count_cases(record_property, "run directories (--resume auto)", cases)


def test_a_new_run_in_a_folder_with_planted_names(cli, idx_root: Path, outside: Path, tmp_path: Path,
                                                  record_property) -> None:
    """A first run in a folder someone prepared: each name it would write, planted as a link out, is refused before
    anything is written; a planted ``.lock`` link is replaced and the run trains."""
    names = {entry: kind for entry, kind in RUN_ENTRIES.items() if "/" not in entry and entry not in (
        "config.json", "config.json.partial", "summary.json")}
    for entry, kind in names.items():
        run = tmp_path / "runs" / "new"
        run.mkdir(parents=True)
        plant(run / entry, "link-out", outside, kind)
        read = outside_of(run, tmp_path)
        before = read()
        with deadline(HANG):
            result = cli("--output-dir", run.parent, "--run-name", run.name, "--epochs", "1", "--data-dir", idx_root,
                         *TINY, *QUIET)
        check_case(result, f"new run {entry}", before, read())
        assert (result.code == 0) == (entry == ".lock"), (entry, result.err)
        assert result.code == 0 or sorted(p.name for p in run.iterdir()) == [".lock", entry], entry  # nothing else
        shutil.rmtree(run)
    count_cases(record_property, "run directories (a new run)", len(names))


def finished_commands(cli, idx_root: Path, image: Path, other: Path) -> dict[str, Callable[[Path], Outcome]]:
    return {
        "evaluate": lambda run: cli("evaluate", run, "--data-dir", idx_root, "--json"),
        "predict": lambda run: cli("predict", run, image),
        "export": lambda run: cli("export", run, "--format", "torchscript", "--data-dir", idx_root),
        "compare": lambda run: cli("compare", run, other),
    }


def entries_of(command: str, best: str) -> dict[str, str]:
    """What each command reads or writes of a finished run: every command its model's files; evaluate the plot it
    draws beside the run, export the file and sidecar it writes there; compare the settings and logs."""
    model = {"summary.json": FILE, "checkpoints": FOLDER, best: FILE}
    beside = best.removeprefix("checkpoints/").removesuffix(".pt")
    return {
        "evaluate": model | {"config.json": FILE, ".lock": FILE, f"{beside}.confusion_matrix.png": FILE},
        "predict": model | {"metrics.jsonl": FILE},
        "export": model | {f"{beside}.torchscript.pt": FILE, f"{beside}.torchscript.pt.json": FILE},
        "compare": {"config.json": FILE, "metrics.jsonl": FILE, "summary.json": FILE, "checkpoints": FOLDER,
                    "wandb": FOLDER},
    }[command]


def test_reading_commands_with_every_entry_planted(cli, idx_root: Path, trained_run: Path, outside: Path,
                                                   tmp_path: Path, record_property) -> None:
    """evaluate, predict, export and compare on a finished run whose files were replaced."""
    image = digit_png(tmp_path)
    other = copy_run(trained_run, tmp_path / "other")
    commands = finished_commands(cli, idx_root, image, other)
    cases = 0
    for command, run_command in commands.items():
        for entry, kind in entries_of(command, best_name(trained_run)).items():
            for hazard in HAZARDS:
                run = copy_run(trained_run, tmp_path / "runs" / "done")
                plant(run / entry, hazard, outside, kind)
                read = outside_of(run, tmp_path)
                before = read()
                with deadline(HANG):
                    result = run_command(run)
                case = f"{command} {entry} {hazard}"
                check_case(result, case, before, read())
                reads = ("config.json", "metrics.jsonl", "summary.json") if command == "compare" else (
                    "summary.json", "checkpoints", best_name(trained_run))
                # what it reads is refused whatever was planted there; what it writes, replaced
                assert (result.code == 1) == (entry in reads), (case, result.err)
                if entry.endswith((".png", ".torchscript.pt", ".pt.json")):  # what it writes beside the run: replaced
                    assert (run / entry).is_file() and not (run / entry).is_symlink(), case
                cases += 1
                shutil.rmtree(run)
    count_cases(record_property, "run directories (evaluate, predict, export, compare)", cases)


SWEEP = """\
name: fuzz
method: grid
metric: {{name: val/accuracy, goal: maximize}}
command: [{command}]
parameters:
  epochs: {{value: 1}}
  lr: {{values: [0.01]}}
"""


@pytest.fixture(scope="module")
def finished_sweep(idx_root: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A one-trial grid sweep on the generated IDX data, run to its end: its file and its folder."""
    pytest.importorskip("optuna")
    from ignite_mnist.cli import main

    work = tmp_path_factory.mktemp("sweep")
    command = ", ".join(f"'{arg}'" for arg in ("--data-dir", str(idx_root), *TINY, *QUIET))
    (work / "fuzz.yaml").write_text(SWEEP.format(command=command))
    assert main(["sweep", str(work / "fuzz.yaml"), "--output-dir", str(work / "runs")]) == 0
    return work / "fuzz.yaml", work / "runs" / "fuzz"


def sweep_refuses(command: str, entry: str, hazard: str) -> bool:
    """Whether ``sweep`` (reopening the folder) or ``compare`` (of it) refuses it."""
    if entry == ".lock":  # replaced
        return False
    if entry == "trial-0000":  # the budget is spent: sweep trains nothing; compare finds no trial to compare
        return command == "compare"
    if command == "compare" and entry == "sweep.yaml":  # not read by compare: only a link or a pipe is refused
        return hazard != "sparse-3g"
    return True


def test_sweep_folders_with_every_entry_planted(cli, finished_sweep: tuple[Path, Path], outside: Path,
                                                tmp_path: Path, record_property) -> None:
    """``sweep`` reopening a finished sweep's folder (its budget spent: it reports), and ``compare`` of it."""
    spec, finished = finished_sweep
    cases = 0
    for entry, kind in SWEEP_ENTRIES.items():
        for hazard in HAZARDS:
            for command in ("sweep", "compare"):
                folder = tmp_path / "sweeps" / "fuzz"
                shutil.copytree(finished, folder)
                plant(folder / entry, hazard, outside, kind)
                read = outside_of(folder, tmp_path)
                before = read()
                with deadline(HANG):
                    result = (cli("sweep", spec, "--output-dir", folder.parent) if command == "sweep"
                              else cli("compare", folder))
                case = f"{command} {entry} {hazard}"
                check_case(result, case, before, read())
                assert (result.code != 0) == sweep_refuses(command, entry, hazard), (case, result.out, result.err)
                cases += 1
                shutil.rmtree(folder)
    count_cases(record_property, "sweep folders (sweep, compare)", cases)


# --- the cases the issue names, in real processes ---------------------------------------------------------------

#: Runs a command in a child and prints its exit code, its peak memory (KiB) and its stderr, as JSON.
MEASURED = ("import json, resource, subprocess, sys\n"
            "done = subprocess.run(sys.argv[1:], capture_output=True, text=True, timeout=300)\n"
            "print(json.dumps({'code': done.returncode, 'err': done.stderr, "
            "'peak_kib': resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}))")


def measured(*args: str | Path) -> dict:
    """``python -m ignite_mnist ARGS`` in a real process, with its peak resident memory."""
    command = [sys.executable, "-c", MEASURED, sys.executable, "-m", "ignite_mnist", *map(str, args)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=400, check=True,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    return json.loads(done.stdout)


def one_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


@pytest.fixture(scope="module")
def lock_link_resume(idx_root: Path, trained_run: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """``--resume auto`` of a run in a shared folder whose ``.lock`` is a link to ``../victim.txt``, in a real process:
    what it said, its peak memory (the others' baseline: a whole resume), the run and the victim afterwards."""
    shared = tmp_path_factory.mktemp("shared")
    run = interrupted_run(trained_run, shared / "run")
    victim = shared / "victim.txt"
    victim.write_text("the victim's own words\n")
    os.utime(victim, ns=(1_000_000_000, 1_000_000_000))
    (run / ".lock").symlink_to("../victim.txt")
    done = measured("--resume", "auto", "--output-dir", run.parent, "--run-name", run.name, "--data-dir", idx_root,
                    *TINY, *QUIET)
    return done | {"run": run, "victim": victim}


def test_a_lock_link_under_resume_auto_leaves_its_target_alone(lock_link_resume: dict) -> None:
    run, victim = lock_link_resume["run"], lock_link_resume["victim"]
    assert lock_link_resume["code"] == 0, lock_link_resume  # the run's own lock: the link was replaced by a file
    assert "Traceback" not in lock_link_resume["err"]
    assert victim.read_text() == "the victim's own words\n" and victim.stat().st_mtime_ns == 1_000_000_000
    assert not (run / ".lock").is_symlink() and (run / "summary.json").is_file()


def test_a_metrics_log_linked_to_dev_zero_under_resume_auto_is_one_line(idx_root: Path, trained_run: Path,
                                                                         tmp_path: Path, lock_link_resume: dict
                                                                         ) -> None:
    run = interrupted_run(trained_run, tmp_path / "runs" / "run")
    (run / "metrics.jsonl").unlink()
    (run / "metrics.jsonl").symlink_to("/dev/zero")
    done = measured("--resume", "auto", "--output-dir", run.parent, "--run-name", run.name, "--data-dir", idx_root,
                    *TINY, *QUIET)
    assert done["code"] == 1, done
    assert one_line(done["err"]) == (f"ignite-mnist: error: {run / 'metrics.jsonl'}: refused: a link (to /dev/zero), "
                                     "not a file of its own; a run's own files and folders are never links, pipes "
                                     "or devices; remove it, or choose another folder")
    assert done["peak_kib"] < lock_link_resume["peak_kib"] + 200 * 1024


def test_a_sparse_metrics_log_under_resume_in_little_memory(idx_root: Path, trained_run: Path, tmp_path: Path,
                                                            lock_link_resume: dict) -> None:
    """The resume reads ``metrics.jsonl`` to rewind it: a 3 GB one is refused before a byte is read."""
    run = interrupted_run(trained_run, tmp_path / "runs" / "run")
    (run / "metrics.jsonl").unlink()
    plant(run / "metrics.jsonl", "sparse-3g", tmp_path, FILE)
    done = measured("--resume", "auto", "--output-dir", run.parent, "--run-name", run.name, "--data-dir", idx_root,
                    *TINY, *QUIET)
    assert done["code"] == 1 and "refused: 3 GiB, more than the 16 MiB" in one_line(done["err"]), done
    assert done["peak_kib"] < lock_link_resume["peak_kib"] + 200 * 1024


def test_compare_of_two_runs_of_3_gb_sparse_files_is_one_line_in_little_memory(trained_run: Path,
                                                                                tmp_path: Path) -> None:
    runs = [copy_run(trained_run, tmp_path / name) for name in ("a", "b")]
    baseline = measured("compare", *runs)  # the same command on the real files
    assert baseline["code"] == 0, baseline
    for run in runs:
        for name in ("config.json", "metrics.jsonl"):
            (run / name).unlink()
            plant(run / name, "sparse-3g", tmp_path, FILE)
    done = measured("compare", *runs)
    assert done["code"] == 1, done
    assert one_line(done["err"]) == (f"ignite-mnist: error: {runs[0] / 'config.json'}: refused: 3 GiB, more than the "
                                     "1 MiB such a file may have; it was not written by ignite-mnist; remove it, or "
                                     "use a copy of the run made by ignite-mnist")
    assert done["peak_kib"] < baseline["peak_kib"] + 200 * 1024  # the 3 GB were never read
    (runs[0] / "config.json").write_bytes((trained_run / "config.json").read_bytes())  # now the metrics log
    done = measured("compare", *runs)
    assert done["code"] == 1 and "metrics.jsonl: refused: 3 GiB, more than the 16 MiB" in one_line(done["err"])
    assert done["peak_kib"] < baseline["peak_kib"] + 200 * 1024
