"""``ignite-mnist compare``: runs side by side, from their run directories.

One row per run, one column per setting that differs between the runs (not those of
:func:`~ignite_mnist.settings.config.bookkeeping_settings`: where a run is kept and how it is
shown), then the state, each validation metric's latest and best value (from
``metrics.jsonl``, so an unfinished or pruned run counts too) and the test results
(from ``summary.json``). Runs that differ only by ``seed`` (and have the same state)
share one row, and each of its values is the mean ± standard deviation over them. A
sweep folder stands for its trials, each with its state in the sweep's study.

Example:
    >>> runs = [RunResult(f"r{seed}", {"lr": 0.1, "seed": seed, "run_name": f"r{seed}"},
    ...                   [{"iteration": 5, "val_accuracy": 0.8 + seed / 100}], None) for seed in (0, 1, 2)]
    >>> runs.append(RunResult("big", {"lr": 0.5, "seed": 0, "run_name": "big"}, [{"iteration": 5, "val_accuracy": 0.5}],
    ...                       {"test_accuracy": 0.51}))
    >>> table = Comparison.of(runs)
    >>> table.settings
    ['lr', 'seed']
    >>> print(table.format("markdown"))
    | run | lr | seed | state | val_accuracy | best_val_accuracy | val_loss | best_val_loss | test_accuracy |
    | --- | --- | --- | --- | --- | --- | --- | --- | --- |
    | r0, r1, r2 | 0.1 | 0, 1, 2 | unfinished | 0.8100 ± 0.0100 | 0.8100 ± 0.0100 | - | - | - |
    | big | 0.5 | 0 | finished | 0.5000 | 0.5000 | - | - | 0.5100 |
"""

from __future__ import annotations

import csv
import io
import json
import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ignite_mnist.errors import RunDirError
from ignite_mnist.registry import MONITOR_MODES, MONITORS
from ignite_mnist.settings.config import bookkeeping_settings
from ignite_mnist.storage.run_dir import RunDir

__all__ = ["METRIC_COLUMNS", "Comparison", "RunResult", "find_runs"]

#: The metric columns: latest and best of each validation metric, then the test accuracy.
METRIC_COLUMNS = (*tuple(c for m in MONITORS for c in (m, f"best_{m}")), "test_accuracy")
#: A sweep folder -> {trial folder name: state} (None for a folder that is not a sweep).
StatesOf = Callable[[Path], Mapping[str, str] | None]


@dataclass
class RunResult:
    """What ``compare`` reads of one run: its settings, its metrics log, its summary and its state."""

    name: str
    config: dict[str, Any]
    rows: list[dict[str, Any]]
    summary: dict[str, Any] | None
    state: str = ""

    def __post_init__(self) -> None:
        self.state = self.state or ("finished" if self.summary is not None else "unfinished")

    @classmethod
    def read(cls, run_dir: RunDir, name: str, state: str = "") -> RunResult:
        """Read ``config.json``, ``metrics.jsonl`` and ``summary.json`` of ``run_dir``."""
        return cls(name, run_dir.read_config(), run_dir.read_metrics(), run_dir.read_summary(), state)

    def validations(self, metric: str) -> list[tuple[int, float]]:
        """``(trainer iteration, value)`` of every validation of ``metric``, in order."""
        return [(row["iteration"], float(row[metric])) for row in self.rows
                if isinstance(row.get(metric), (int, float))]

    def value(self, column: str) -> float | None:
        """A column's value: ``val_x`` the latest validation's, ``best_val_x`` the best, ``test_x`` the summary's."""
        if column.startswith("test_"):
            found = (self.summary or {}).get(column)
            return float(found) if isinstance(found, (int, float)) else None
        metric = column.removeprefix("best_")
        values = [value for _, value in self.validations(metric)]
        if not values:
            return None
        if column == metric:
            return values[-1]
        return min(values) if MONITOR_MODES[metric] == "min" else max(values)


def find_runs(paths: Sequence[str | Path], states_of: StatesOf | None = None) -> list[RunResult]:
    """The runs that ``paths`` name: run directories, or folders of them (a sweep: its trials), or folders
    of sweeps (a sweep's ``--output-dir``: each sweep's trials, named ``<sweep>/<trial>``).

    Raises:
        RunDirError: a path is none of these.
    """
    found: list[RunResult] = []
    for path in map(Path, paths):
        if RunDir(path).holds_run():
            found.append(RunResult.read(RunDir(path), path.name))
            continue
        folders = sorted(d for d in path.iterdir() if d.is_dir()) if path.is_dir() else []
        members = [d for d in folders if RunDir(d).holds_run()]
        sweeps = [d for d in folders if states_of is not None and states_of(d) is not None]
        if not members and not sweeps:
            raise RunDirError(f"{path}: neither a run directory (no {RunDir.CONFIG}) nor a folder of runs or "
                              "of sweeps; name a run directory, a folder holding some, or a sweep's folder")
        found += _members(path, members, states_of, prefix="")
        for sweep in sweeps:
            trials = sorted(d for d in sweep.iterdir() if RunDir(d).holds_run())
            found += _members(sweep, trials, states_of, prefix=f"{sweep.name}/")
    return found


def _members(folder: Path, members: list[Path], states_of: StatesOf | None, prefix: str) -> list[RunResult]:
    """The runs in ``folder``; a sweep's only as far as its study knows them, each with its state there."""
    states = states_of(folder) if states_of is not None and members else None
    return [RunResult.read(RunDir(d), prefix + d.name, states[d.name] if states is not None else "")
            for d in members if states is None or d.name in states]


def _differing(runs: Sequence[RunResult]) -> list[str]:
    bookkeeping = bookkeeping_settings()
    names = dict.fromkeys(k for run in runs for k in run.config if k not in bookkeeping)
    return [k for k in names if len({json.dumps(run.config.get(k)) for run in runs}) > 1]


def _setting(value: Any) -> str:
    """A setting in the table: floats to 4 significant digits (CSV keeps every digit)."""
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _cell(values: Sequence[float | None]) -> str:
    present = [v for v in values if v is not None]
    if not present:
        return "-"
    if len(values) == 1:
        return f"{present[0]:.4f}"
    spread = statistics.stdev(present) if len(present) > 1 else 0.0
    return f"{statistics.fmean(present):.4f} ± {spread:.4f}"


@dataclass
class Comparison:
    """Runs, the settings that differ between them, and the runs grouped by everything but the seed."""

    runs: list[RunResult]
    settings: list[str]
    groups: list[list[RunResult]]

    @classmethod
    def of(cls, runs: Sequence[RunResult]) -> Comparison:
        settings = _differing(runs)
        groups: dict[str, list[RunResult]] = {}
        for run in runs:
            key = json.dumps([run.config.get(k) for k in settings if k != "seed"] + [run.state])
            groups.setdefault(key, []).append(run)
        return cls(list(runs), settings, list(groups.values()))

    @property
    def headers(self) -> list[str]:
        return ["run", *self.settings, "state", *METRIC_COLUMNS]

    def _row(self, group: list[RunResult]) -> list[str]:
        first = group[0]
        names = [run.name for run in group]
        name = ", ".join(names) if len(names) <= 3 else f"{names[0]} … {names[-1]} ({len(names)} runs)"
        settings = [", ".join(dict.fromkeys(_setting(run.config.get(k)) for run in group)) for k in self.settings]
        return [name, *settings, first.state, *(_cell([run.value(c) for run in group]) for c in METRIC_COLUMNS)]

    def table(self) -> list[list[str]]:
        """One row of text per group (mean ± std where a group has several runs)."""
        return [self._row(group) for group in self.groups]

    def format(self, kind: str = "text") -> str:
        """The comparison in one of :data:`~ignite_mnist.registry.COMPARE_FORMATS`: aligned ``text``, a
        ``markdown`` table, or ``csv`` (one row per run, raw values)."""
        if kind == "csv":
            out = io.StringIO()
            writer = csv.writer(out, lineterminator="\n")
            writer.writerow(self.headers)
            for run in self.runs:
                writer.writerow([run.name, *(run.config.get(k) for k in self.settings), run.state,
                                 *("" if run.value(c) is None else run.value(c) for c in METRIC_COLUMNS)])
            return out.getvalue().rstrip("\n")
        rows = [self.headers, *self.table()]
        if kind == "markdown":
            lines = [rows[0], ["---"] * len(rows[0]), *rows[1:]]
            return "\n".join("| " + " | ".join(row) + " |" for row in lines)
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False)).rstrip()
                         for row in rows)

    def curves(self, metric: str) -> dict[str, list[tuple[int, float]]]:
        """Each run's validation curve of ``metric``: (training images seen, value)."""
        return {run.name: [(iteration * int(run.config.get("batch_size", 1)), value)
                           for iteration, value in run.validations(metric)] for run in self.runs}
