"""The record of a run under faults: resume never rewrites a finished run, runs move and copy, crafted
checkpoints and closed pipes are one line (or nothing), read-only runs can still be used."""

from __future__ import annotations

import gzip
import json
import pickle
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest
import torch

from ignite_mnist.models import build_model
from ignite_mnist.storage.checkpoints import find_latest_checkpoint
from tests.faults.conftest import QUIET, SUBPROCESS_ENV, TINY, assert_one_line_error, snapshot


def train(idx_root: Path, output: Path, name: str, *extra: str) -> tuple[str, ...]:
    return ("--data-dir", str(idx_root), "--output-dir", str(output), "--run-name", name, *TINY, *QUIET, *extra)


def test_resume_auto_of_a_finished_run_rewrites_nothing(cli: Any, run_copy: Path) -> None:
    before = snapshot(run_copy)
    again = cli("--resume", "auto", "--output-dir", run_copy.parent, "--run-name", run_copy.name)
    assert again.code == 0, again.err
    assert "already finished at epoch 1; nothing to train; its summary stands" in again.out
    assert snapshot(run_copy) == before


def test_resume_auto_without_a_run_name_picks_the_unfinished_run_and_says_so(
    cli: Any, idx_root: Path, run_copy: Path
) -> None:
    output = run_copy.parent
    interrupted = output / "interrupted"
    shutil.copytree(run_copy, interrupted)
    (interrupted / "summary.json").unlink()  # as if stopped during the final test
    (run_copy / "a_plot_evaluate_drew.png").write_bytes(b"")  # the finished run is the newest folder now
    before = snapshot(run_copy)
    resumed = cli("--resume", "auto", "--output-dir", output)
    assert resumed.code == 0, resumed.err
    assert f"--resume auto: continuing {interrupted}, the most recently checkpointed unfinished run" in resumed.out
    assert (interrupted / "summary.json").is_file() and snapshot(run_copy) == before


def test_a_moved_run_and_a_copied_run_each_evaluate_their_own_best_checkpoint(cli: Any, run_copy: Path,
                                                                             tmp_path: Path) -> None:
    moved = tmp_path / "elsewhere" / "moved"
    moved.parent.mkdir()
    copied = tmp_path / "copied"
    shutil.copytree(run_copy, copied)
    run_copy.rename(moved)
    best = json.loads((moved / "summary.json").read_text())["best_checkpoint"]
    for run_dir in (moved, copied):
        result = cli("evaluate", run_dir, "--json")
        assert result.code == 0, result.err
        report = json.loads(result.out)
        assert report["checkpoint"] == str(run_dir / best) and Path(report["plot"]).parent == run_dir


def test_resuming_from_an_older_checkpoint_sets_the_later_work_aside(cli: Any, idx_root: Path, tmp_path: Path) -> None:
    """Resumed in place from iteration 8 of 16 and interrupted again, `--resume auto` must continue the new
    history, not the finished old one."""
    output = tmp_path / "runs"
    assert cli(*train(idx_root, output, "r", "--checkpoint-every", "4")).code == 0
    run_dir = output / "r"
    older = run_dir / "checkpoints" / "last_checkpoint_12.pt"  # the run went on to 16 and finished
    resumed = cli("--resume", older, "--output-dir", output, "--run-name", "r")
    assert resumed.code == 0, resumed.err
    assert f"resuming {run_dir} from iteration 12: what it had written after that" in resumed.out
    aside = output / "r.old-1"
    assert (aside / "summary.json").is_file() and (aside / "checkpoints" / "last_checkpoint_16.pt").is_file()
    assert json.loads((run_dir / "summary.json").read_text())["resumed_at"] == [12]


@pytest.mark.parametrize("crafted", ["cnn weights", "model is a tensor", "bogus rng", "bogus trainer",
                                     "config is a string"])
def test_crafted_checkpoints_through_resume_are_one_line(cli: Any, run_copy: Path, crafted: str) -> None:
    path = find_latest_checkpoint(run_copy / "checkpoints")
    checkpoint = torch.load(path, weights_only=True)
    if crafted == "cnn weights":
        checkpoint["model"] = build_model("cnn").state_dict()
    elif crafted == "model is a tensor":
        checkpoint["model"] = {"weight": torch.zeros(3)} | {"nested": torch.zeros(2)}
    elif crafted == "bogus rng":
        checkpoint["rng"] = {"torch": torch.zeros(3, dtype=torch.uint8)}
    elif crafted == "bogus trainer":
        checkpoint["trainer"] = {"iteration": "many"}
    else:
        checkpoint["config"] = "mlp please"
    torch.save(checkpoint, path)
    before = snapshot(run_copy)
    result = cli("--resume", path, "--epochs", "2", *QUIET)
    entry = {"cnn weights": "its model does not fit this run", "model is a tensor": "its model does not fit this run",
             "bogus rng": "its rng does not fit this run",
             "bogus trainer": "its trainer.iteration is not of the kind this run saves"}
    expected = entry.get(crafted, "holds no ignite-mnist settings")
    assert_one_line_error(result, 1, str(path), expected)
    assert snapshot(run_copy) == before


def test_a_damaged_newest_checkpoint_is_skipped_by_resume_auto_and_named_otherwise(
    cli: Any, idx_root: Path, tmp_path: Path
) -> None:
    assert cli(*train(idx_root, tmp_path, "r", "--checkpoint-every", "4")).code == 0
    checkpoints = tmp_path / "r" / "checkpoints"
    newest, older = checkpoints / "last_checkpoint_16.pt", checkpoints / "last_checkpoint_12.pt"
    newest.write_bytes(newest.read_bytes()[:1000])
    named = cli("--resume", newest, *QUIET)
    assert_one_line_error(named, 1, "corrupted or truncated", f"the newest intact checkpoint of its run is {older}")
    (tmp_path / "r" / "summary.json").unlink()
    resumed = cli("--resume", "auto", "--output-dir", tmp_path, "--run-name", "r", *QUIET)
    assert resumed.code == 0, resumed.err
    assert f"--resume auto: skipped {newest} (corrupted or truncated checkpoint" in resumed.out
    assert f"using {older}" in resumed.out


def test_code_in_a_plain_protocol_4_pickle_is_named_without_a_warning(cli: Any, tmp_path: Path) -> None:
    trap = tmp_path / "model.pt"
    trap.write_bytes(pickle.dumps({"model": print}, protocol=4))
    result = cli("--resume", trap, *QUIET)
    assert_one_line_error(result, 1, f"{trap}: refused to load", "(builtins.print)")


def test_a_checkpoint_that_would_unpack_to_gigabytes_is_refused_before_reading(cli: Any, tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.pt"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("archive/data.pkl", b"\0" * (1 << 30))  # 1 GB of zeros: about 1 MB packed
    assert bomb.stat().st_size < 2 << 20
    result = cli("--resume", bomb, *QUIET)
    assert_one_line_error(result, 1, f"{bomb}: refused to load: it would unpack to 1074 MB")


def test_a_closed_stdout_does_not_stop_training(idx_root: Path, tmp_path: Path) -> None:
    command = [sys.executable, "-m", "ignite_mnist", "--data-dir", str(idx_root), "--output-dir", str(tmp_path),
               "--run-name", "piped", "--val-size", "200", "--batch-size", "64", "--epochs", "3",
               "--progress", "log", "--progress-interval", "0", "--wandb-mode", "disabled", "--no-plots"]
    piped = subprocess.Popen(command, env=SUBPROCESS_ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert piped.stdout is not None
    first_lines = [piped.stdout.readline() for _ in range(2)]
    piped.stdout.close()  # what `| head -n 2` does
    _, err = piped.communicate(timeout=300)
    assert all(first_lines) and piped.returncode == 0, err
    assert err == "" and json.loads((tmp_path / "piped" / "summary.json").read_text())["epochs_completed"] == 3


def test_sigterm_during_the_final_test_says_how_to_finish_the_report(idx_root: Path, tmp_path: Path) -> None:
    code = ("import os, signal, sys\nimport ignite_mnist.evaluation as evaluation\n"
            "from ignite_mnist.cli import main\n"
            "evaluate_model = evaluation.evaluate_model\n"
            "def testing(*args, **kwargs):\n    os.kill(os.getpid(), signal.SIGTERM)\n"
            "    return evaluate_model(*args, **kwargs)\n"
            "evaluation.evaluate_model = testing\n"  # the test set's evaluation starts: SIGTERM arrives
            "sys.exit(main(sys.argv[1:]))\n")
    result = subprocess.run([sys.executable, "-c", code, *train(idx_root, tmp_path, "t")], env=SUBPROCESS_ENV,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 143, result.stderr
    (line,) = result.stderr.splitlines()
    assert line.startswith("ignite-mnist: interrupted by SIGTERM while testing and reporting; training had "
                           "finished and its checkpoints are intact; write the report with: ignite-mnist --resume")
    assert not (tmp_path / "t" / "summary.json").exists()


def test_sigterm_while_starting_says_nothing_was_trained(idx_root: Path, tmp_path: Path) -> None:
    code = ("import os, signal, sys\nimport ignite_mnist.training.parts as parts\nfrom ignite_mnist.cli import main\n"
            "load = parts.load_splits\n"
            "def loading(*args, **kwargs):\n    os.kill(os.getpid(), signal.SIGTERM)\n"
            "    return load(*args, **kwargs)\n"
            "parts.load_splits = loading\nsys.exit(main(sys.argv[1:]))\n")
    result = subprocess.run([sys.executable, "-c", code, *train(idx_root, tmp_path, "s")], env=SUBPROCESS_ENV,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 143, result.stderr
    assert result.stderr == ("ignite-mnist: interrupted by SIGTERM while starting; nothing was trained or "
                             "written\n")


def test_a_read_only_run_can_be_evaluated_and_exported_elsewhere(cli: Any, tiny_run: Path, tmp_path: Path,
                                                                 tmpfs: Any) -> None:
    disk = tmpfs("ro", "size=64m")
    shutil.copytree(tiny_run, disk / "run")
    subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
    evaluated = cli("evaluate", disk / "run")
    assert evaluated.code == 0, evaluated.err
    assert "confusion matrix not drawn: cannot write" in evaluated.out and "Read-only file system" in evaluated.out
    refused = cli("export", disk / "run")
    assert_one_line_error(refused, 1, "cannot write", "(Read-only file system); pass --output PATH")
    exported = cli("export", disk / "run", "--output", tmp_path / "model.pt")
    assert exported.code == 0, exported.err


def test_a_read_only_data_folder_of_gz_files_says_unpack_elsewhere(cli: Any, fresh_idx_root: Path, tmp_path: Path,
                                                                   tmpfs: Any) -> None:
    disk = tmpfs("gz-data", "size=16m")
    raw = disk / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for path in (fresh_idx_root / "MNIST" / "raw").iterdir():
        with gzip.open(raw / f"{path.name}.gz", "wb") as packed:
            packed.write(path.read_bytes())
    subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
    result = cli("--data-dir", disk, "--output-dir", tmp_path, *TINY, *QUIET)
    assert_one_line_error(result, 1, "(Read-only file system)", "into a writable folder yourself")
    assert not list(disk.rglob("*.partial"))


def test_predict_refuses_huge_images_and_reads_float_images(cli: Any, tiny_run: Path, tmp_path: Path) -> None:
    from PIL import Image

    huge = tmp_path / "huge.png"
    Image.new("L", (12000, 12000), 255).save(huge, optimize=False, compress_level=1)
    float_image = Image.new("F", (40, 40), 0.0)
    for y in range(8, 32):
        float_image.putpixel((20, y), 0.8)  # a vertical stroke in a 0-1 float image
    float_image.save(tmp_path / "stroke.tiff")
    result = cli("predict", tiny_run, huge, tmp_path / "stroke.tiff", "--json")
    assert result.code == 1
    assert result.err.strip() == (f"ignite-mnist: error: {huge}: 12000x12000 pixels: a side longer than 10000 "
                                  "pixels; scale the image down (a digit needs a few hundred pixels a side)")
    (_, stroke) = json.loads(result.out)
    assert "label" in stroke  # read, not "blank"


def test_predict_with_nan_weights_is_an_error_not_invalid_json(cli: Any, run_copy: Path, tmp_path: Path) -> None:
    from PIL import Image

    best = run_copy / json.loads((run_copy / "summary.json").read_text())["best_checkpoint"]
    checkpoint = torch.load(best, weights_only=True)
    checkpoint["model"] = {k: torch.full_like(v, float("nan")) for k, v in checkpoint["model"].items()}
    torch.save(checkpoint, best)
    image = Image.new("L", (28, 28), 0)
    for y in range(6, 22):
        image.putpixel((14, y), 255)
    image.save(tmp_path / "digit.png")
    result = cli("predict", best, tmp_path / "digit.png", "--json")
    assert result.code == 1 and "the model's output is not a number (are its weights NaN?)" in result.err
    json.loads(result.out)  # valid JSON


def test_an_invalid_wandb_mode_variable_is_named(cli: Any, idx_root: Path, tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.setenv("WANDB_MODE", "cloud")
    result = cli("--data-dir", idx_root, "--output-dir", tmp_path, *TINY, "--progress", "none")
    assert_one_line_error(result, 2, "$WANDB_MODE: invalid value 'cloud'", "--wandb-mode disabled")
    assert not tmp_path.joinpath("run").exists()


def test_an_empty_resume_is_a_usage_error(cli: Any) -> None:
    assert_one_line_error(cli("--resume", ""), 2, "--resume: needs a checkpoint path or 'auto'")

