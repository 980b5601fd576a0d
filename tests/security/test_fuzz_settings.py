"""Hostile ``--config`` files and sweep files: each is one line (exit 1 or 2) or works, at once, never a traceback,
and nothing outside the output folder is touched. Devices, pipes, huge files and YAML alias bombs are refused
before a parser reads them; a sweep grid's size is computed before Optuna lists it."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from tests.security.conftest import QUIET, TINY, count_cases, snapshot

BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{c}: &{c} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n"
    for p, c in zip("abcdefgh", "bcdefghi", strict=True))
#: ``--config`` files: (file name, content); content None: made by :func:`special`.
CONFIGS: list[tuple[str, str | bytes | None]] = [
    ("zero.yaml", None), ("fifo.yaml", None), ("folder.yaml", None), ("huge.yaml", None),
    ("bomb.yaml", BOMB + "epochs: 1\n"), ("deep.yaml", "[" * 50_000), ("deep.json", "[" * 50_000),
    ("deep.toml", "a = " + "[" * 50_000), ("binary.yaml", os.urandom(2000)),
    ("latin1.yaml", "epochs: 3 \xe9".encode("latin-1")),
    ("list.yaml", "- 1\n- 2\n"), ("scalar.json", "3"), ("null.json", "null"), ("intkey.yaml", "1: 2\n"),
    ("unknown.yaml", "epoch: 3\n"), ("text-epochs.yaml", "epochs: ten\n"), ("list-lr.yaml", "lr: [1, 2]\n"),
    ("tracker-dict.yaml", "tracker: {a: 1}\n"), ("tracker-twice.yaml", "tracker: [none, none]\n"),
    ("import-model.yaml", "model: os:abort\n"), ("run-name.yaml", "run_name: ../../escape\n"),
    ("nan-lr.yaml", "lr: .nan\n"), ("inf-lr.yaml", "lr: .inf\n"), ("huge-epochs.yaml", f"epochs: {10**40}\n"),
    ("negative.yaml", "batch_size: -5\n"), ("processes.yaml", "nproc_per_node: 1000000\n"),
    ("workers.yaml", "loader: torch\nnum_workers: 1000000\n"), ("threads.yaml", "threads: '100000'\n"),
    ("python-tag.yaml", "epochs: !!python/object/apply:os.system ['touch VICTIM']\n"),
    ("empty.yaml", ""), ("bom.json", b"\xef\xbb\xbf{\"epochs\": 2}"), ("crlf.yaml", "epochs: 2\r\nlr: 0.01\r\n"),
    ("null-value.yaml", "data_dir: null\n"), ("seed.yaml", f"seed: {2**40}\n"), ("bad.toml", "epochs = \n"),
    ("bad.json", "{\"epochs\": }"), ("type.txt", "epochs: 2\n"), ("nul.yaml", "run_name: \"a\\0b\"\n"),
]
#: The ``--config`` files above that are fine: everything else must be refused.
ACCEPTED = ("crlf.yaml", "bom.json", "empty.yaml", "null.json", "huge-epochs.yaml")  # a long run is a setting
SWEEP_HEAD = "method: grid\nmetric: {name: val/accuracy, goal: maximize}\n"
RANDOM_HEAD = "method: random\nmetric: {name: val/accuracy}\nrun_cap: 1\n"
LR = "parameters: {lr: {value: 0.1}}\n"
#: Sweep files: (file name, content); content None: made by :func:`special`.
SWEEPS: list[tuple[str, str | bytes | None]] = [
    ("zero.yaml", None), ("fifo.yaml", None), ("folder.yaml", None), ("huge.yaml", None),
    ("bomb.yaml", SWEEP_HEAD + "description: *i\nparameters: {lr: {value: 0.1}}\n" + BOMB),
    ("deep.yaml", "[" * 50_000), ("binary.yaml", os.urandom(2000)), ("list.yaml", "- 1\n"),
    ("no-method.yaml", "parameters: {lr: {value: 0.1}}\n"), ("method.yaml", "method: magic\n"),
    ("no-metric.yaml", "method: grid\nparameters: {lr: {value: 0.1}}\n"),
    ("metric.yaml", "method: grid\nmetric: {name: ../../x}\nparameters: {lr: {value: 0.1}}\n"),
    ("no-params.yaml", SWEEP_HEAD), ("params-list.yaml", SWEEP_HEAD + "parameters: [1, 2]\n"),
    ("grid-1e12.yaml", SWEEP_HEAD + "parameters:\n" + "".join(
        f"  {name}: {{values: [{', '.join(str(v) for v in range(1, 101))}]}}\n"
        for name in ("epochs", "batch_size", "val_size", "seed", "log_every", "keep_best"))),
    ("many-values.yaml", SWEEP_HEAD + "parameters: {seed: {values: [" + ", ".join(map(str, range(5000))) + "]}}\n"),
    ("name-parent.yaml", SWEEP_HEAD + "name: ..\nparameters: {lr: {value: 0.1}}\n"),
    ("name-slash.yaml", SWEEP_HEAD + "name: ../../escape\nparameters: {lr: {value: 0.1}}\n"),
    ("name-nul.yaml", SWEEP_HEAD + "name: \"a\\0b\"\nparameters: {lr: {value: 0.1}}\n"),
    ("run-cap.yaml", "method: random\nmetric: {name: val/accuracy}\nrun_cap: -1\nparameters: {lr: {value: 0.1}}\n"),
    ("run-cap-text.yaml", "method: random\nmetric: {name: val/accuracy}\nrun_cap: x\nparameters: {lr: {value: 0.1}}\n"),
    ("terminate.yaml", SWEEP_HEAD + "early_terminate: {type: hyperband, min_iter: -3}\n" + LR),
    ("command.yaml", SWEEP_HEAD + "command: 5\nparameters: {lr: {value: 0.1}}\n"),
    ("own-model.yaml", SWEEP_HEAD + "parameters: {model: {values: [mlp, os:abort]}}\n"),
    ("own-model-command.yaml", SWEEP_HEAD + "command: [--model, 'os:abort']\nparameters: {lr: {value: 0.1}}\n"),
    ("q.yaml", RANDOM_HEAD + "parameters: {lr: {min: 0.1, max: 1, q: -1}}\n"),
    ("min-max.yaml", RANDOM_HEAD + "parameters: {lr: {min: 1, max: 0.1}}\n"),
    ("nan.yaml", RANDOM_HEAD + "parameters: {lr: {min: .nan, max: 1}}\n"),
    ("log.yaml", ("method: random\nmetric: {name: val/accuracy}\nrun_cap: 1\n"
                  "parameters: {lr: {min: 0, max: 1, distribution: log_uniform_values}}\n")),
    ("dict-values.yaml", SWEEP_HEAD + "parameters: {lr: {values: [{a: 1}]}}\n"),
    ("nested.yaml", SWEEP_HEAD + "parameters: {lr: {parameters: {a: {value: 1}}}}\n"),
    ("distribution.yaml", SWEEP_HEAD + "parameters: {lr: {distribution: magic, min: 0, max: 1}}\n"),
    ("owned.yaml", SWEEP_HEAD + "parameters: {output_dir: {value: /tmp}}\n"),
    ("unknown-setting.yaml", SWEEP_HEAD + "parameters: {flavour: {value: 1}}\n"),
    ("python-tag.yaml", SWEEP_HEAD + "parameters: !!python/object/apply:os.system ['touch VICTIM']\n"),
]


def special(path: Path) -> Path:
    """The files that are not plain text: a link to /dev/zero, a pipe, a folder, a 2 MB file."""
    kind = path.stem
    if kind == "zero":
        path.symlink_to("/dev/zero")
    elif kind == "fifo":
        os.mkfifo(path)  # nobody writes to it: reading it would block forever
    elif kind == "folder":
        path.mkdir()
    elif kind == "huge":
        path.write_text("# padding\n" * 200_000 + "epochs: 1\n")
    return path


def write(folder: Path, name: str, content: str | bytes | None) -> Path:
    path = folder / name
    if content is None:
        return special(path)
    if isinstance(content, str):
        content = content.encode("utf-8")
    path.write_bytes(content)
    return path


@pytest.mark.parametrize("kind", ["config", "sweep"])
def test_hostile_settings_files(cli, kind: str, sentinel: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                record_property) -> None:
    monkeypatch.chdir(sentinel)  # relative paths in the files resolve here: it must stay as it was
    files, folder = (CONFIGS, tmp_path / "configs") if kind == "config" else (SWEEPS, tmp_path / "sweeps")
    folder.mkdir()
    for name, content in files:
        path = write(folder, name, content)
        before = snapshot(tmp_path, lambda p: p.is_relative_to(tmp_path / "out") or "wandb-home" in p.parts)
        started = time.monotonic()
        if kind == "config":
            result = cli("--config", path, "--print-config")
        else:
            result = cli("sweep", path, "--output-dir", tmp_path / "out", "--trials", "1")
        result.check(name)
        assert time.monotonic() - started < 30, name
        assert result.code != 0 or (kind == "config" and name in ACCEPTED), (name, result.out)
        assert snapshot(tmp_path, lambda p: p.is_relative_to(tmp_path / "out") or "wandb-home" in p.parts) == before
        if "own-model" in name or name == "import-model.yaml":
            assert "add --model os:abort if you trust it" in result.err, result.err
    count_cases(record_property, f"{kind} files", len(files))


def test_a_sweep_file_may_turn_the_tracker_off(cli, idx_root: Path, tmp_path: Path) -> None:
    """``tracker: {value: none}`` in a sweep file: the trial trains, with no tracker."""
    spec = tmp_path / "none.yaml"
    command = ", ".join(f"'{arg}'" for arg in ("--data-dir", str(idx_root), *TINY, *QUIET))
    spec.write_text(f"{SWEEP_HEAD}command: [{command}]\nparameters:\n  tracker: {{value: none}}\n"
                    "  epochs: {value: 1}\n")
    result = cli("sweep", spec, "--output-dir", tmp_path / "out")
    assert result.code == 0, result.err
    assert "trial 0: complete" in result.out
    assert not (tmp_path / "out" / "none" / "trial-0000" / "wandb").exists()
