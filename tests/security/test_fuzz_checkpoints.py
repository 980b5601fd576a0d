"""A real checkpoint, every field mutated: ``--resume`` and ``evaluate`` give success or one line, touch nothing
outside the run directory, import nothing, and a sample does the same in real processes (no signal).

The checkpoint and ``config.json`` come from a real 1-epoch run on generated IDX data (see ``trained_run``).
Each field of the checkpoint (down to the first and last item of every list) is replaced by a value of
another type, None, a huge or negative number, NaN, infinity, ``../`` and absolute paths, and each tensor
by one of the wrong shape or dtype, or left out; the rotation state of Ignite's checkpointers gets crafted
file names. The cases are sampled with a fixed seed, so every run checks the same ones.
"""

from __future__ import annotations

import copy
import json
import random
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

from tests.security.conftest import QUIET, TINY, copy_run, count_cases, load, run_subprocess, snapshot

Path_ = tuple[Any, ...]
#: How many generic (field, mutation) cases each command gets, besides the hand-made ones.
RESUME_CASES = 150
EVALUATE_CASES = 100
#: What every field is replaced by (besides "left out"); ``{sentinel}`` becomes the sentinel folder.
VALUES: dict[str, Any] = {
    "none": None, "text": "ten", "negative": -1, "huge": 10**18, "nan": float("nan"), "inf": float("inf"),
    "bool": True, "list": [1, "a"], "dict": {"x": 1}, "parent": "../../../VICTIM.pt",
    "absolute": "{sentinel}/VICTIM.pt", "import": "os:abort",
}
TENSORS: dict[str, Any] = {
    "wrong-shape": lambda t: torch.zeros(3), "int-tensor": lambda t: torch.zeros(t.shape, dtype=torch.int64),
    "empty-tensor": lambda t: torch.empty(0), "nan-tensor": lambda t: torch.full(t.shape, float("nan")),
}
CRAFTED_NAMES = ["../../../VICTIM.pt", "{sentinel}/VICTIM.pt", "../../VICTIM2.pt", "..", "", ".",
                 "last_checkpoint_1.pt/../../../VICTIM.pt", "checkpoints/last_checkpoint_1.pt", "notes.txt",
                 "best_checkpoint_1_accuracy=0.5.pt\n", "last_checkpoint_-1.pt", 7, None]


def fields(value: Any, path: Path_ = ()) -> Iterator[Path_]:
    """Every place in a checkpoint: each dict entry, and the first and last item of each list (nested)."""
    if path:
        yield path
    if isinstance(value, dict):
        for key, item in value.items():
            yield from fields(item, (*path, key))
    elif isinstance(value, (list, tuple)) and value:
        for index in sorted({0, len(value) - 1}):
            yield from fields(value[index], (*path, index))


def mutated(checkpoint: dict, path: Path_, mutation: str, sentinel: Path) -> dict:
    """A deep copy of ``checkpoint`` with the value at ``path`` replaced (or removed: ``"delete"``)."""
    result = copy.deepcopy(checkpoint)
    parents, holder = [], result
    for key in path[:-1]:
        parents.append(holder)
        holder = holder[key]
    key = path[-1]
    if isinstance(holder, tuple):  # tuples (Python's RNG state) are rebuilt as lists with the change
        holder = list(holder)
        container, parent_key = (parents[-1], path[-2]) if parents else (result, None)
        container[parent_key] = holder
    if mutation == "delete":
        if isinstance(holder, dict):
            del holder[key]
        else:
            holder.pop(key)
        return result
    old = holder[key]
    if mutation in TENSORS:
        holder[key] = TENSORS[mutation](old)
    else:
        value = VALUES[mutation]
        holder[key] = value.format(sentinel=sentinel) if isinstance(value, str) else copy.deepcopy(value)
    return result


def cases(checkpoint: dict, wanted: Any, count: int, seed: int) -> list[tuple[Path_, str]]:
    """``count`` (field, mutation) pairs for fields where ``wanted(path)``, drawn with ``seed``."""
    pairs = []
    for path in fields(checkpoint):
        if not wanted(path):
            continue
        value = checkpoint
        for key in path:
            value = value[key]
        mutations = list(TENSORS) if isinstance(value, torch.Tensor) else list(VALUES)
        pairs += [(path, m) for m in [*mutations, "delete"]]
    random.Random(seed).shuffle(pairs)
    return pairs[:count]


def rotation_cases(sentinel: Path) -> list[tuple[str, Any]]:
    """Hand-made rotation states: crafted file names, wrong shapes, bad priorities."""
    made: list[tuple[str, Any]] = []
    for entry in ("checkpointer", "best_checkpointer"):
        for name in CRAFTED_NAMES:
            name = name.format(sentinel=sentinel) if isinstance(name, str) else name
            made.append((entry, {"_saved": [[1, name]]}))
        made += [(entry, {"_saved": [[float("nan"), "last_checkpoint_8.pt"]]}), (entry, {"_saved": "x"}),
                 (entry, {"_saved": [[1]]}), (entry, {"_saved": [[1, 2, 3]]}), (entry, {}), (entry, None),
                 (entry, {"_saved": [[i, f"last_checkpoint_{i}.pt"] for i in range(2000)]})]
    for tracker in ("wandb", "mlflow"):
        made += [(tracker, {"run_id": "../../../VICTIM"}), (tracker, {"run_id": 5}), (tracker, "x")]
    return made


def interrupted_run(trained_run: Path, target: Path) -> Path:
    """A copy of the run as a kill at iteration 8 to 16 leaves it: newest checkpoint 8, no summary."""
    run = copy_run(trained_run, target)
    for path in [*run.glob("checkpoints/*_16*.pt"), run / "summary.json"]:
        path.unlink()
    return run


def remove_run(run: Path) -> None:
    """A case's run directory and its set-aside siblings, once checked (so the next snapshot stays small)."""
    for folder in [run, *run.parent.glob(f"{run.name}.old-*")]:
        shutil.rmtree(folder)


def outside(run: Path, root: Path) -> dict[str, str]:
    """Everything under ``root`` but the run directory, its set-aside siblings (``<run>.old-N``) and W&B's home."""
    def skip(path: Path) -> bool:
        return path.is_relative_to(run) or path.name.startswith(f"{run.name}.old-") or any(
            part.startswith((f"{run.name}.old-", "wandb-home")) for part in path.relative_to(root).parts)
    return snapshot(root, skip)


@pytest.mark.slow  # fuzzing: hundreds of mutated checkpoints, some in real processes
def test_resume_of_mutated_checkpoints(cli, idx_root: Path, trained_run: Path, sentinel: Path, tmp_path: Path,
                                       record_property) -> None:
    base = load(trained_run / "checkpoints" / "last_checkpoint_8.pt")
    generic = [(f"{'.'.join(map(str, path))}={m}", mutated(base, path, m, sentinel))
               for path, m in cases(base, lambda path: path[0] not in ("model", "dataset"), RESUME_CASES, 1)]
    crafted = [(f"{entry}={json.dumps(state)[:60]}", base | {entry: state})
               for entry, state in rotation_cases(sentinel)]
    succeeded = 0
    for number, (case, checkpoint) in enumerate([("unchanged", base), *generic, *crafted]):
        run = interrupted_run(trained_run, tmp_path / "runs" / f"r{number}")
        torch.save(checkpoint, run / "checkpoints" / "last_checkpoint_8.pt")
        before = outside(run, tmp_path)
        result = cli("--resume", "auto", "--output-dir", run.parent, "--run-name", run.name, "--epochs", "1",
                     "--data-dir", idx_root, *TINY, *QUIET)
        result.check(case)
        assert outside(run, tmp_path) == before, case
        if case.startswith(("checkpointer", "best_checkpointer")) and ("VICTIM" in case or "sentinel" in case):
            assert result.code != 0, case  # a crafted name is refused, not skipped
        assert result.code == 0 or case != "unchanged", result.err  # the control: the real checkpoint resumes
        succeeded += result.code == 0
        remove_run(run)
    assert succeeded > len(generic) // 10  # some mutations are harmless (a number for a number): not all refused
    count_cases(record_property, "checkpoints (--resume)", len(generic) + len(crafted))


def test_evaluate_of_mutated_checkpoints(cli, idx_root: Path, trained_run: Path, sentinel: Path, tmp_path: Path,
                                         record_property) -> None:
    base = load(trained_run / "checkpoints" / "last_checkpoint_16.pt")
    chosen = cases(base, lambda path: path[0] in ("model", "dataset", "config"), EVALUATE_CASES, 2)
    run = copy_run(trained_run, tmp_path / "runs" / "done")
    target = run / "checkpoints" / "mutated.pt"
    succeeded = 0
    for path, mutation in [((), "unchanged"), *chosen]:
        case = f"{'.'.join(map(str, path))}={mutation}"
        torch.save(mutated(base, path, mutation, sentinel) if path else base, target)
        before = outside(run, tmp_path)
        result = cli("evaluate", target, "--data-dir", idx_root, "--json", "--plot", run / "cm.png")
        result.check(case)
        assert outside(run, tmp_path) == before, case
        if path == ("config", "model") and mutation == "import":
            assert result.code == 2 and "add --model os:abort if you trust it" in result.err, result.err
        assert result.code == 0 or path, result.err  # the control: the real checkpoint evaluates
        succeeded += result.code == 0
    assert succeeded > len(chosen) // 20
    count_cases(record_property, "checkpoints (evaluate)", len(chosen))


def test_config_json_of_a_run_mutated(cli, idx_root: Path, trained_run: Path, sentinel: Path, tmp_path: Path,
                                      record_property) -> None:
    """The run's own ``config.json`` as a ``--config`` file, each setting mutated (``--print-config``: parsing only)."""
    saved = json.loads((trained_run / "config.json").read_text())
    chosen = [(name, m) for name in saved for m in VALUES]
    chosen = [chosen[i] for i in sorted(random.Random(3).sample(range(len(chosen)), 200))]
    target = tmp_path / "config.json"
    target.write_text(json.dumps(saved))
    assert cli("--config", target, "--print-config").code == 0  # the control: the real config.json
    succeeded = 0
    for name, mutation in chosen:
        value = VALUES[mutation]
        target.write_text(json.dumps(saved | {name: value.format(sentinel=sentinel) if isinstance(value, str)
                                              else value}))
        before = snapshot(sentinel)
        result = cli("--config", target, "--print-config")
        result.check(f"{name}={mutation}")
        succeeded += result.code == 0
        assert snapshot(sentinel) == before
        if name == "model" and mutation == "import":
            assert result.code == 2 and "add --model os:abort if you trust it" in result.err, result.err
    assert succeeded > len(chosen) // 20
    count_cases(record_property, "config.json", len(chosen))


@pytest.mark.slow  # fuzzing: hundreds of mutated checkpoints, some in real processes
def test_a_sample_in_real_processes(idx_root: Path, trained_run: Path, sentinel: Path, tmp_path: Path,
                                    record_property) -> None:
    """The worst cases again in real processes: no signal (an abort), one line, nothing outside touched."""
    base = load(trained_run / "checkpoints" / "last_checkpoint_8.pt")
    samples = {
        "rotation ../": base | {"checkpointer": {"_saved": [[1, "../../../VICTIM.pt"]]}},
        "model os:abort": base | {"config": base["config"] | {"model": "os:abort"}},
    }
    for number, (case, checkpoint) in enumerate(samples.items()):
        run = interrupted_run(trained_run, tmp_path / "runs" / f"p{number}")
        torch.save(checkpoint, run / "checkpoints" / "last_checkpoint_8.pt")
        before = outside(run, tmp_path)
        resumed = run_subprocess("--resume", "auto", "--output-dir", run.parent, "--run-name", run.name,
                                 "--data-dir", idx_root, *TINY, *QUIET)
        resumed.check(case)
        assert resumed.code in (1, 2), (case, resumed.err)
        evaluated = run_subprocess("evaluate", run / "checkpoints" / "last_checkpoint_8.pt", "--json")
        evaluated.check(case)
        assert outside(run, tmp_path) == before, case
        remove_run(run)
    count_cases(record_property, "checkpoints (subprocesses)", 2 * len(samples))
