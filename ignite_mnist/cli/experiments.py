"""The ``sweep`` and ``compare`` subcommands of ``ignite-mnist``: many runs at once.

The work is done by :mod:`ignite_mnist.experiments.sweep` (on Optuna) and :mod:`ignite_mnist.experiments.compare`;
this module parses arguments and prints. Nothing here imports Optuna or torch
before a command runs, so ``--help`` and usage errors answer at once.

Example:
    $ ignite-mnist sweep examples/sweep.yaml --jobs 2
    $ ignite-mnist compare runs/lr-seed --format markdown --plot curves.png
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ignite_mnist.errors import EXIT_OK, ConfigError, IgniteMnistError, SweepError
from ignite_mnist.registry import AUTO_PRUNER, COMPARE_FORMATS, MONITORS, PRUNER_CHOICES
from ignite_mnist.settings.arguments import PROG, HelpFormatter, OneLineParser
from ignite_mnist.settings.config import TrainConfig, require_named_model

__all__ = ["EXPERIMENT_PARSERS", "build_compare_parser", "build_sweep_parser", "compare_command", "sweep_command"]

_OUTPUT_DIR = next(f.default for f in dataclasses.fields(TrainConfig) if f.name == "output_dir")


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _non_negative(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def build_sweep_parser() -> argparse.ArgumentParser:
    """``ignite-mnist sweep SPEC``: a hyperparameter search on Optuna, from a W&B sweep file."""
    parser = OneLineParser(
        prog=f"{PROG} sweep", formatter_class=HelpFormatter,
        description="Search training settings as a W&B sweep file says (method grid, random or bayes; metric; "
                    "parameters), locally on Optuna. Each trial is a run directory in <output-dir>/<name>/. Started "
                    "again, a sweep goes on where it stopped. See docs/sweeps.md.",
    )
    parser.add_argument("spec", metavar="SPEC", help="the sweep file (YAML, W&B's sweep configuration)")
    parser.add_argument("--output-dir", default=_OUTPUT_DIR,
                        help="folder that holds the sweep's folder")
    parser.add_argument("--name", default=None,
                        help="the sweep's folder and study name (default: the file's name: key, else its file name)")
    parser.add_argument("--storage", metavar="URL", default=None,
                        help="an Optuna database URL (sqlite:///..., postgresql://..., mysql://...) for a study "
                             "shared by several machines (default: SQLite in the sweep's folder)")
    parser.add_argument("--jobs", type=_positive, default=1,
                        help="worker processes on this machine, sharing the study")
    parser.add_argument("--trials", type=_positive, default=None,
                        help="how many trials in all (default: the file's run_cap; a grid: its size)")
    parser.add_argument("--pruner", choices=PRUNER_CHOICES, default=AUTO_PRUNER,
                        help="stop hopeless trials from their validations: halving (successive halving from the "
                             "file's early_terminate min_iter and eta), median, none; auto: halving when the file "
                             "has early_terminate, else none")
    parser.add_argument("--heartbeat", metavar="SECONDS", type=_non_negative, default=60,
                        help="a running trial's heartbeat interval in the study; a trial whose heartbeat stops "
                             "(its worker died, on any machine) is marked failed and retried by the next worker "
                             "that looks; 0: off (give every worker of a study the same value)")
    parser.add_argument("--grace-period", metavar="SECONDS", type=_positive, default=None,
                        help="seconds without a heartbeat after which a trial counts as dead (default: 3 heartbeats)")
    parser.add_argument("--retries", metavar="N", type=_non_negative, default=2,
                        help="how many times one trial is retried after its worker died")
    parser.add_argument("--model", action="append", default=None, metavar="MODULE:CLASS",
                        help="your own model class the sweep file names (package.module:Class), once per class: "
                             "code a file names is imported only when the command line names it too")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)  # one of --jobs N: no report
    return parser


def build_compare_parser() -> argparse.ArgumentParser:
    """``ignite-mnist compare RUN_OR_SWEEP...``: settings that differ, final and best metrics."""
    parser = OneLineParser(
        prog=f"{PROG} compare", formatter_class=HelpFormatter,
        description="Compare runs: one column per setting that differs, the latest and best validation metrics and "
                    "the test accuracy; runs that differ only by --seed share a row (mean ± std).",
    )
    parser.add_argument("runs", metavar="RUN_OR_SWEEP", nargs="+",
                        help="run directories, or folders of them (a sweep's folder: its trials)")
    parser.add_argument("--format", choices=COMPARE_FORMATS, default="text",
                        help="aligned text, a Markdown table, or CSV (one row per run, no grouping)")
    parser.add_argument("--output", metavar="FILE", default=None,
                        help="write the table to FILE instead of printing it")
    parser.add_argument("--plot", metavar="PNG", default=None,
                        help="draw every run's validation curve into one figure (needs matplotlib)")
    parser.add_argument("--metric", choices=MONITORS, default=MONITORS[0],
                        help="the metric --plot draws")
    return parser


def _sweep_module() -> Any:
    try:
        from ignite_mnist.experiments import sweep
    except ModuleNotFoundError as error:
        raise SweepError(f"sweeps need Optuna ({error}): pip install \"ignite-mnist[sweep]\"") from None
    return sweep


def sweep_command(argv: Sequence[str]) -> int:
    from ignite_mnist.experiments.sweep_spec import SweepSpec

    args = build_sweep_parser().parse_args(argv)
    spec = SweepSpec.load(args.spec)
    for model in sorted(spec.own_models() - set(args.model or [])):
        require_named_model(model, None, args.spec)
    budget = spec.budget(args.trials)
    sweep = _sweep_module()
    heartbeat = sweep.Heartbeat(args.heartbeat, args.grace_period, args.retries)
    if heartbeat.enabled and heartbeat.grace <= heartbeat.interval:
        raise ConfigError("--grace-period", f"must be longer than --heartbeat ({heartbeat.interval} s), got "
                          f"{heartbeat.grace} s")
    folder, study = sweep.open_sweep(spec, args.output_dir, args.name, args.storage, args.pruner, heartbeat)
    if args.jobs > 1:
        worker_args = [args.spec, "--output-dir", args.output_dir, "--name", folder.path.name, "--pruner", args.pruner,
                       "--heartbeat", str(args.heartbeat), "--grace-period", str(heartbeat.grace),
                       "--retries", str(args.retries)]
        worker_args += ["--trials", str(args.trials)] if args.trials else []
        worker_args += [f"--model={model}" for model in args.model or []]
        sweep.run_workers(args.jobs, worker_args + (["--storage", args.storage] if args.storage else []))
    else:
        sweep.work(study, spec, folder, budget, heartbeat=heartbeat)
    if not args.worker:
        print(sweep.report(study, spec, folder))
    return EXIT_OK


def _trial_states(path: Path) -> Mapping[str, str] | None:
    """A sweep folder's trial states, when Optuna is there to read its study."""
    try:
        from ignite_mnist.experiments.sweep import trial_states
    except ModuleNotFoundError:
        return None
    return trial_states(path)


def compare_command(argv: Sequence[str]) -> int:
    from ignite_mnist.experiments.compare import Comparison, find_runs
    from ignite_mnist.storage.files import write_text

    args = build_compare_parser().parse_args(argv)
    comparison = Comparison.of(find_runs(args.runs, _trial_states))
    text = comparison.format(args.format)
    if args.output is not None:
        write_text(args.output, text + "\n")
        print(f"{len(comparison.runs)} runs compared in {args.output}")
    else:
        print(text)
    if args.plot is not None:
        from ignite_mnist.training.plots import PLOTS_INSTALL, matplotlib_available, plot_validation_curves, save_figure

        if not matplotlib_available():
            raise IgniteMnistError(f"--plot needs matplotlib ({PLOTS_INSTALL})")
        save_figure(plot_validation_curves(comparison.curves(args.metric), args.metric), args.plot)
        print(f"validation curves ({args.metric}) drawn to {args.plot}")
    return EXIT_OK


#: Subcommand name -> its parser builder (for the generated CLI reference).
EXPERIMENT_PARSERS = {"sweep": build_sweep_parser, "compare": build_compare_parser}
