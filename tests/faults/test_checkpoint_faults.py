"""``--resume PATH``: every unusable checkpoint is refused in one line and the run's files stay as they were."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from ignite_mnist.storage.checkpoints import find_latest_checkpoint
from tests.faults.conftest import QUIET, TINY, assert_loadable, assert_one_line_error, snapshot


def resume_args(idx_root: Path, checkpoint: Path | str, *extra: str) -> tuple[str, ...]:
    return ("--data-dir", str(idx_root), "--resume", str(checkpoint), *QUIET, *extra)


def last_checkpoint(run_dir: Path) -> Path:
    path = find_latest_checkpoint(run_dir / "checkpoints")
    assert path is not None
    return path


class CodeInPickle:
    """Unpickling this runs ``exec``: what a booby-trapped checkpoint would carry."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return exec, (f"open({str(self.marker)!r}, 'w').close()",)


def test_missing_checkpoint_path(cli, idx_root: Path, tmp_path: Path) -> None:
    missing = tmp_path / "nope" / "last_checkpoint_5.pt"
    result = cli(*resume_args(idx_root, missing))
    assert_one_line_error(result, 1, f"{missing}: no such checkpoint file")
    assert not missing.parent.exists()


@pytest.mark.parametrize("damage", ["truncated", "garbage", "text", "empty"])
def test_corrupted_checkpoint_is_refused_and_nothing_changes(cli, idx_root: Path, run_copy: Path, damage: str) -> None:
    path = last_checkpoint(run_copy)
    data = path.read_bytes()
    path.write_bytes({"truncated": data[: len(data) // 2], "garbage": b"\x89PNG" + bytes(5000),
                      "text": b"hello, not a checkpoint", "empty": b""}[damage])
    before = snapshot(run_copy)
    result = cli(*resume_args(idx_root, path, "--epochs", "2"))
    assert_one_line_error(result, 1, f"{path}: corrupted or truncated checkpoint", "use another checkpoint")
    assert snapshot(run_copy) == before


@pytest.mark.parametrize(
    ("flag", "value", "saved"), [("--model", "cnn", "mlp"), ("--dataset", "fashion-mnist", "mnist")]
)
def test_checkpoint_of_another_model_or_dataset(
    cli, idx_root: Path, run_copy: Path, flag: str, value: str, saved: str
) -> None:
    before = snapshot(run_copy)
    result = cli(*resume_args(idx_root, last_checkpoint(run_copy), flag, value, "--epochs", "2"))
    assert_one_line_error(result, 1, f"is for {flag[2:]} '{saved}', not '{value}'", f"{flag} {saved}")
    assert snapshot(run_copy) == before


def test_pickle_carrying_code_is_refused_without_running_it(cli, idx_root: Path, run_copy: Path) -> None:
    trap = last_checkpoint(run_copy)
    marker = run_copy.parent / "code-ran"
    good = torch.load(trap, weights_only=True)
    torch.save({**good, "model": CodeInPickle(marker)}, trap)  # a checkpoint in every other respect
    control = run_copy.parent / "control.pt"
    control_marker = run_copy.parent / "control-ran"
    torch.save({**good, "model": CodeInPickle(control_marker)}, control)
    torch.load(control, weights_only=False)  # the payload is live: an unsafe load runs it...
    assert control_marker.exists()
    before = snapshot(run_copy)

    result = cli(*resume_args(idx_root, trap, "--epochs", "2"))

    assert_one_line_error(result, 1, f"{trap}: refused to load", "objects other than tensors and plain values")
    assert not marker.exists()  # ...the resume did not
    assert snapshot(run_copy) == before


def test_plain_pickle_file_is_refused_without_running_it(cli, idx_root: Path, tmp_path: Path) -> None:
    import pickle

    marker = tmp_path / "code-ran"
    trap = tmp_path / "model.pt"
    trap.write_bytes(pickle.dumps({"model": CodeInPickle(marker), "config": {}}, protocol=2))
    result = cli(*resume_args(idx_root, trap))
    assert_one_line_error(result, 1, f"{trap}: refused to load")
    assert not marker.exists()


def test_file_that_is_not_an_ignite_mnist_checkpoint(cli, idx_root: Path, tmp_path: Path) -> None:
    other = tmp_path / "weights.pt"
    torch.save({"fc.weight": torch.zeros(2, 2)}, other)
    result = cli(*resume_args(idx_root, other))
    assert_one_line_error(result, 1, f"{other}: not a training checkpoint")


@pytest.mark.parametrize(
    ("flag", "value", "saved"), [("--batch-size", "32", "64"), ("--seed", "7", "0"), ("--val-size", "300", "200")]
)
def test_config_change_that_breaks_exact_resume_is_a_usage_error(
    cli, idx_root: Path, run_copy: Path, flag: str, value: str, saved: str
) -> None:
    before = snapshot(run_copy)
    result = cli(*resume_args(idx_root, last_checkpoint(run_copy), flag, value, "--epochs", "2"))
    assert_one_line_error(result, 2, f"{flag}: differs from the checkpoint ({flag} {saved} -> {value})",
                          "--allow-config-change")
    assert snapshot(run_copy) == before


def test_allow_config_change_applies_the_new_settings(cli, idx_root: Path, run_copy: Path) -> None:
    """With the override the run goes on from the checkpoint, with the optimizer settings asked for."""
    start = last_checkpoint(run_copy)
    result = cli(*resume_args(idx_root, start, "--epochs", "2", "--batch-size", "32", "--lr", "0.0005",
                              "--allow-config-change"))
    assert result.code == 0, result.err
    final = assert_loadable(last_checkpoint(run_copy))
    assert final["trainer"]["max_epochs"] == 2 and final["config"]["batch_size"] == 32
    assert [group["lr"] for group in final["optimizer"]["param_groups"]] == [0.0005]
    assert_loadable(start)  # the checkpoint resumed from is left in place


def test_allow_config_change_to_another_optimizer_starts_it_afresh(cli, idx_root: Path, run_copy: Path) -> None:
    result = cli(*resume_args(idx_root, last_checkpoint(run_copy), "--epochs", "2", "--optimizer", "sgd",
                              "--lr", "0.01", "--momentum", "0.5", "--allow-config-change"))
    assert result.code == 0, result.err
    final = assert_loadable(last_checkpoint(run_copy))
    group = final["optimizer"]["param_groups"][0]
    assert (group["lr"], group["momentum"]) == (0.01, 0.5) and "betas" not in group


def test_resume_auto_of_a_run_that_does_not_exist_yet_starts_it_fresh(cli, idx_root: Path, tmp_path: Path) -> None:
    (tmp_path / "runs" / "empty").mkdir(parents=True)
    result = cli("--data-dir", idx_root, "--output-dir", tmp_path / "runs", "--run-name", "empty",
                 "--resume", "auto", *TINY, *QUIET)
    assert result.code == 0, result.err
    assert (f"--resume auto: nothing to resume in {tmp_path / 'runs' / 'empty'} (no checkpoint yet); "
            "starting it fresh") in result.out
    config = json.loads((tmp_path / "runs" / "empty" / "config.json").read_text())
    assert config["resume"] is None and config["val_size"] == 200  # a fresh run, with the flags given


def test_resume_auto_with_only_damaged_checkpoints_is_refused(cli, run_copy: Path) -> None:
    for path in run_copy.glob("checkpoints/last_checkpoint_*.pt"):
        path.write_bytes(b"damaged")
    before = snapshot(run_copy)
    result = cli("--resume", "auto", "--output-dir", run_copy.parent, "--run-name", run_copy.name, *QUIET)
    assert_one_line_error(result, 1, f"no intact checkpoint to resume in {run_copy}", "--overwrite")
    assert snapshot(run_copy) == before


def test_loose_checkpoint_resumes_into_a_new_run_dir(cli, idx_root: Path, run_copy: Path, tmp_path: Path) -> None:
    """A checkpoint copied out of its run continues in --output-dir/--run-name, never in the folder it sits in."""
    loose_dir = tmp_path / "downloads"
    loose_dir.mkdir()
    loose = loose_dir / "mnist-mlp.pt"
    shutil.copy(last_checkpoint(run_copy), loose)
    result = cli(*resume_args(idx_root, loose, "--epochs", "2", "--output-dir", tmp_path / "forks",
                              "--run-name", "fork"))
    assert result.code == 0, result.err
    assert sorted(p.name for p in loose_dir.iterdir()) == ["mnist-mlp.pt"]
    assert assert_loadable(last_checkpoint(tmp_path / "forks" / "fork"))["trainer"]["iteration"] == 32


def test_other_run_name_starts_a_new_run_from_the_checkpoint(cli, idx_root: Path, run_copy: Path) -> None:
    before = snapshot(run_copy)
    result = cli(*resume_args(idx_root, last_checkpoint(run_copy), "--run-name", "branch", "--epochs", "2"))
    assert result.code == 0, result.err
    assert snapshot(run_copy) == before
    assert assert_loadable(last_checkpoint(run_copy.parent / "branch"))["trainer"]["iteration"] == 32


def test_a_run_killed_before_its_first_checkpoint_starts_afresh_keeping_its_files(
    cli, idx_root: Path, tmp_path: Path
) -> None:
    run_dir = tmp_path / "runs" / "early"
    run_dir.mkdir(parents=True)
    (run_dir / "config.json").write_text("{}")  # what a run killed before its first checkpoint leaves
    (run_dir / "metrics.jsonl").write_text("")
    started = cli("--resume", "auto", "--data-dir", idx_root, "--output-dir", tmp_path / "runs", "--run-name",
                  "early", *TINY, *QUIET)  # the same line with or without --resume auto
    assert started.code == 0, started.err
    assert f"--resume auto: nothing to resume in {run_dir}" in started.out
    assert f"{run_dir}: it had saved no checkpoint, so it starts afresh" in started.out
    assert (tmp_path / "runs" / "early.old-1" / "config.json").read_text() == "{}"


def test_resume_into_a_run_dir_that_holds_another_run_is_refused(cli, idx_root: Path, run_copy: Path) -> None:
    other = run_copy.parent / "other"
    (other / "checkpoints").mkdir(parents=True)
    (other / "config.json").write_text("{}")
    shutil.copy(last_checkpoint(run_copy), other / "checkpoints" / "last_checkpoint_3.pt")
    before = snapshot(run_copy.parent)
    result = cli(*resume_args(idx_root, last_checkpoint(run_copy), "--run-name", "other", "--epochs", "2"))
    assert_one_line_error(result, 1, f"{other} already holds a run")
    assert snapshot(run_copy.parent) == before
