import io
import os
import shlex
import shutil
import subprocess
import sys
import time

import pytest
from ignite.engine import Engine, Events

from ignite_mnist.handlers.progress import LogProgress, attach_progress, resolve_progress_mode
from ignite_mnist.storage.run_dir import read_metrics_log
from tests.conftest import REPO


def test_auto_mode_is_log_when_not_a_terminal():
    assert resolve_progress_mode("auto", io.StringIO()) == "log"
    assert resolve_progress_mode("bar", io.StringIO()) == "bar"


def test_log_mode_writes_plain_lines_at_a_bounded_rate():
    stream = io.StringIO()
    trainer = Engine(lambda e, b: None)
    log = LogProgress(interval=3600, stream=stream)
    trainer.add_event_handler(Events.STARTED, log.started)
    trainer.add_event_handler(Events.ITERATION_COMPLETED, log.iteration_completed)
    trainer.add_event_handler(Events.EPOCH_COMPLETED, log.epoch_completed)
    trainer.run(range(500), max_epochs=2)
    lines = stream.getvalue().splitlines()
    assert lines == ["epoch 1/2 done", "epoch 2/2 done"]  # no iteration line within the hour

    stream = io.StringIO()
    log = LogProgress(interval=0, stream=stream)
    trainer = Engine(lambda e, b: None)
    trainer.add_event_handler(Events.STARTED, log.started)
    trainer.add_event_handler(Events.ITERATION_COMPLETED, log.iteration_completed)
    trainer.run(range(3), max_epochs=1)
    assert stream.getvalue().count("\n") == 3 and "\r" not in stream.getvalue()
    assert stream.getvalue().splitlines()[0].startswith("epoch 1/1  iteration 1/3")


def test_none_attaches_nothing():
    trainer = Engine(lambda e, b: None)
    progress = attach_progress(trainer, mode="none")
    assert (progress.mode, progress.bars, progress.log) == ("none", [], None)


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed (apt-get install tmux)")
def test_on_a_terminal_each_epoch_leaves_one_line_above_the_bar(idx_root, tmp_path):
    # A real terminal: tmux runs the CLI in a pane; what stays on screen is read back with capture-pane.
    tmux = ["tmux", "-L", f"ignite-mnist-test-{os.getpid()}"]  # our own tmux server, ended below
    command = shlex.join([sys.executable, "-m", "ignite_mnist", "--data-dir", str(idx_root), "--val-size", "200",
                          "--epochs", "2", "--output-dir", str(tmp_path), "--run-name", "r", "--tracker", "none",
                          "--no-plots", "--val-every-iterations", "10"])
    env = {"PYTHONPATH": os.pathsep.join(sys.path), "OMP_NUM_THREADS": "1"}
    exports = " ".join(f"{name}={shlex.quote(value)}" for name, value in env.items())
    shell_line = f"{exports} {command}; echo EXIT=$?; sleep 600"
    subprocess.run([*tmux, "new-session", "-d", "-x", "400", "-y", "30", shell_line],
                   check=True, cwd=REPO)
    try:
        deadline, screen = time.monotonic() + 300, ""
        while "EXIT=" not in screen and time.monotonic() < deadline:
            time.sleep(0.5)
            screen = subprocess.run([*tmux, "capture-pane", "-p", "-S", "-100"], capture_output=True, text=True).stdout
    finally:
        subprocess.run([*tmux, "kill-server"], capture_output=True)
    lines = [line for line in screen.splitlines() if line.strip()]
    assert lines[-1] == "EXIT=0", screen
    epochs, final = lines[:-2], lines[-2]
    assert [line.split("  ")[0] for line in epochs] == ["epoch 1/2 done", "epoch 2/2 done"], screen
    assert all("val_accuracy" in line and "train_loss" in line for line in epochs)
    assert final.startswith("test accuracy ")  # and no bar left over: the pane holds nothing else


def test_off_a_terminal_each_validation_is_printed_once(idx_root, tmp_path):
    # a real run, its output a pipe: the end-of-epoch validation is in the epoch's line only;
    # one within an epoch (--val-every-iterations) has a line of its own
    result = subprocess.run(
        [sys.executable, "-m", "ignite_mnist", "--data-dir", str(idx_root), "--val-size", "200", "--epochs", "2",
         "--output-dir", str(tmp_path), "--run-name", "r", "--tracker", "none", "--no-plots", "--threads", "1",
         "--val-every-iterations", "20", "--progress", "auto"],
        capture_output=True, text=True, cwd=REPO, timeout=300)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    epochs = [line for line in lines if line.startswith("epoch ") and " done" in line]
    assert len(epochs) == 2 and all("val_accuracy" in line for line in epochs), lines
    within = [line for line in lines if line.startswith("validation: ")]
    validations = [row for row in read_metrics_log(tmp_path / "r" / "metrics.jsonl") if "val_accuracy" in row]
    assert len(within) == len(validations) - 2 > 0, lines  # every validation but the two that ended an epoch


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed (apt-get install tmux)")
@pytest.mark.parametrize(("progress", "drawn"), [([], "%|"), (["--progress", "log"], "epoch 1/1000 done")],
                         ids=["bars", "no-bars"])
def test_ctrl_c_on_a_terminal_is_said_on_a_line_of_its_own_and_not_as_an_error(idx_root, tmp_path, progress, drawn):
    # A real terminal (tmux) and a real Ctrl-C (send-keys) once ``drawn`` is on screen. The terminal echoes "^C"
    # where its cursor is: on a bar's line (bars: the bar may also be between epochs, off screen) or, with no
    # bars, at the start of the line after the last one printed, where the message must not be glued to it
    # (it was, once in nine CI runs, when the Ctrl-C came between two epochs' bars).
    tmux = ["tmux", "-L", f"ignite-mnist-test-c-{os.getpid()}"]
    command = shlex.join([sys.executable, "-m", "ignite_mnist", "--data-dir", str(idx_root), "--val-size", "200",
                          "--epochs", "1000", "--output-dir", str(tmp_path), "--run-name", "r", "--tracker", "none",
                          "--no-plots", "--threads", "1", *progress])
    exports = f"PYTHONPATH={shlex.quote(os.pathsep.join(sys.path))} OMP_NUM_THREADS=1"
    shell_line = f"{exports} {command}; echo EXIT=$?; sleep 600"
    subprocess.run([*tmux, "new-session", "-d", "-x", "400", "-y", "30", shell_line],
                   check=True, cwd=REPO)

    def screen() -> str:
        return subprocess.run([*tmux, "capture-pane", "-p", "-S", "-100"], capture_output=True, text=True).stdout

    try:
        deadline = time.monotonic() + 300
        while drawn not in screen():
            assert time.monotonic() < deadline, f"{drawn!r} never shown: {screen()}"
            time.sleep(0.2)
        subprocess.run([*tmux, "send-keys", "C-c"], check=True)
        while "EXIT=" not in screen() and time.monotonic() < deadline:
            time.sleep(0.2)
        shown = screen()
    finally:
        subprocess.run([*tmux, "kill-server"], capture_output=True)
    lines = [line for line in shown.splitlines() if line.strip()]
    assert lines[-1] == "EXIT=130", shown
    said = [line for line in lines if "ignite-mnist:" in line]
    # at the start of a line (the terminal's own "^C" echo and the bar are cleared or left above it)
    assert len(said) == 1 and said[0].startswith("ignite-mnist: interrupted by SIGINT at iteration "), shown
    assert "error" not in said[0]
