"""A sweep file: W&B's sweep configuration, read and checked here without W&B, Optuna or torch.

The same YAML file works with ``wandb sweep`` on a connected machine and with
``ignite-mnist sweep`` here (docs/sweeps.md)::

    name: lr-seed
    program: examples/train_mnist.py
    method: grid                       # grid | random | bayes
    metric: {name: val/accuracy, goal: maximize}
    parameters:
      lr: {values: [0.003, 0.00001]}
      seed: {values: [0, 1, 2]}
      epochs: {value: 1}
    early_terminate: {type: hyperband, min_iter: 1, eta: 2}

Parameter names are training settings, spelled as in ``config.json``
(``batch_size``) or as flags (``batch-size``). A trial's command line is built
the way ``wandb agent`` builds it, ``--batch_size=128``
(:meth:`SweepSpec.trial_args`), and the training command reads exactly that
(:func:`~ignite_mnist.settings.config_args.agent_style`). Every value a parameter can take
(each of ``values``, ``min`` and ``max``) is checked by the training command's
own parser before the first trial starts.

Example:
    >>> spec = SweepSpec.from_dict({"method": "random", "metric": {"name": "val/accuracy", "goal": "maximize"},
    ...     "parameters": {"lr": {"min": 0.0001, "max": 0.01, "distribution": "log_uniform_values"},
    ...                    "amp": {"value": False}}, "run_cap": 4}, "demo.yaml")
    >>> spec.parameters["lr"].kind, spec.budget(None)
    ('log_uniform_values', 4)
    >>> spec.trial_args({"lr": 0.001, "amp": False})
    ['--lr=0.001', '--amp=False']
    >>> SweepSpec.from_dict({"method": "grid", "parameters": {"lr": {"values": [0.1]}}}, "demo.yaml")
    Traceback (most recent call last):
    ...
    ignite_mnist.errors.ConfigError: demo.yaml: metric: missing; add e.g. metric: {name: val/accuracy, goal: maximize}
"""

from __future__ import annotations

import contextlib
import io
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ignite_mnist.errors import ConfigError, UnsafeFileError
from ignite_mnist.limits import MAX_GRID_POINTS, MAX_SETTINGS_FILE_BYTES, MAX_SWEEP_VALUES, MAX_YAML_NODES, count_nodes
from ignite_mnist.registry import MONITORS, SWEEP_DISTRIBUTIONS, SWEEP_METHODS, SWEEP_METRICS, is_import_path
from ignite_mnist.settings.arguments import PROG
from ignite_mnist.settings.config_args import parse_train_args
from ignite_mnist.storage.reader import read_file, size_text

__all__ = ["GOALS", "SWEEP_OWNED", "EarlyTerminate", "Parameter", "SweepSpec", "agent_args"]

#: W&B's ``metric.goal`` values; W&B's default is the first.
GOALS = ("minimize", "maximize")
#: Settings the sweep sets for each trial; a sweep file may not.
SWEEP_OWNED = ("output_dir", "run_name", "resume", "overwrite", "nproc_per_node")
#: Keys of W&B's sweep configuration; those this module does not read are left to W&B.
KNOWN_KEYS = ("method", "metric", "parameters", "early_terminate", "run_cap", "name", "description", "program",
              "command", "project", "entity", "controller", "job")
_COMMAND_MACRO = "${"


def agent_args(params: Mapping[str, Any]) -> list[str]:
    """Parameters as ``wandb agent`` writes them on a command line: ``--{name}={value}``, ``str`` of the value.

    Example:
        >>> agent_args({"batch_size": 128, "amp": True, "lr": 1e-05})
        ['--batch_size=128', '--amp=True', '--lr=1e-05']
    """
    return [f"--{name}={value}" for name, value in params.items()]


@dataclass(frozen=True)
class Parameter:
    """One entry of ``parameters``: a W&B distribution name and its arguments.

    Attributes:
        kind: a name of :data:`~ignite_mnist.registry.SWEEP_DISTRIBUTIONS` (W&B infers it when the file does not say).
        values: the choices of ``constant`` (one) and ``categorical``.
        low: ``min`` of the numeric distributions.
        high: ``max`` of the numeric distributions.
        q: ``q`` (the step) of the quantized distributions.
    """

    name: str
    kind: str
    values: tuple[Any, ...] = ()
    low: float | None = None
    high: float | None = None
    q: float | None = None

    @property
    def extremes(self) -> tuple[Any, ...]:
        """The values to check: every choice, or both bounds."""
        return self.values or (self.low, self.high)


@dataclass(frozen=True)
class EarlyTerminate:
    """W&B's ``early_terminate: {type: hyperband, ...}``: the first validation to judge a trial at, and ``eta``."""

    min_iter: int
    eta: int = 3


def _error(where: str, key: str, message: str) -> ConfigError:
    return ConfigError(f"{where}: {key}", message)


def _number(where: str, key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        hint = " (YAML reads 1e-3 as text: write 1.0e-3)" if isinstance(value, str) else ""
        raise _error(where, key, f"must be a number, got {value!r}{hint}")
    return value


def _kind(where: str, name: str, entry: Mapping[str, Any]) -> str:
    """The distribution W&B uses for ``entry``: as named, else inferred from its keys."""
    if "parameters" in entry:
        raise _error(where, f"parameters: {name}", "nested parameters are not supported here")
    if "distribution" in entry:
        kind = entry["distribution"]
    elif "value" in entry:
        kind = "constant"
    elif "values" in entry:
        kind = "categorical"
    elif "min" in entry and "max" in entry:
        integers = all(isinstance(entry[k], int) and not isinstance(entry[k], bool) for k in ("min", "max"))
        kind = "int_uniform" if integers else "uniform"
    else:
        raise _error(where, f"parameters: {name}", "needs value, values, or min and max")
    if kind not in SWEEP_DISTRIBUTIONS:
        raise _error(where, f"parameters: {name}", f"distribution {kind!r} is not supported here; "
                     f"use one of {', '.join(SWEEP_DISTRIBUTIONS.names)}")
    return str(kind)


def _parameter(where: str, name: str, entry: Any) -> Parameter:
    key = f"parameters: {name}"
    if not isinstance(entry, Mapping):
        raise _error(where, key, "must be a mapping such as {values: [1, 2]}")
    if name.replace("-", "_") in SWEEP_OWNED:
        raise _error(where, key, "is set by the sweep for each trial; leave it out")
    kind = _kind(where, name, entry)
    if kind in ("constant", "categorical"):
        values = (entry.get("value"),) if kind == "constant" else entry.get("values")
        if not isinstance(values, (list, tuple)) or not values:
            raise _error(where, key, "values must be a non-empty list")
        if any(isinstance(v, (list, dict)) for v in values):
            raise _error(where, key, "values must be single values (a flag takes one)")
        if len(values) > MAX_SWEEP_VALUES:
            raise _error(where, key, f"lists {len(values)} values, more than the limit of {MAX_SWEEP_VALUES}")
        return Parameter(name, kind, tuple(values))
    low, high = (_number(where, f"{key}: {k}", entry.get(k)) for k in ("min", "max"))
    if not low < high:
        raise _error(where, key, f"min must be below max, got {low} and {high}")
    q = _number(where, f"{key}: q", entry["q"]) if "q" in entry else None
    if q is not None and q <= 0:
        raise _error(where, f"{key}: q", f"must be > 0, got {q}")
    if kind.startswith("log") and low <= 0:
        raise _error(where, key, f"a log distribution needs min > 0, got {low}")
    return Parameter(name, kind, low=low, high=high, q=q)


def _early_terminate(where: str, entry: Any) -> EarlyTerminate | None:
    if entry is None:
        return None
    if not isinstance(entry, Mapping) or entry.get("type") != "hyperband":
        raise _error(where, "early_terminate", "only {type: hyperband, min_iter: N} is known (W&B's only type)")
    eta = entry.get("eta", 3)
    if not isinstance(eta, int) or eta < 2:
        raise _error(where, "early_terminate: eta", f"must be an integer >= 2, got {eta!r}")
    if "min_iter" in entry:
        min_iter = entry["min_iter"]
    elif "max_iter" in entry and "s" in entry:  # W&B: the brackets end at max_iter, s halvings before it
        min_iter = max(1, round(entry["max_iter"] / eta ** entry["s"]))
    else:
        raise _error(where, "early_terminate", "needs min_iter (or max_iter and s)")
    if not isinstance(min_iter, int) or min_iter < 1:
        raise _error(where, "early_terminate: min_iter", f"must be an integer >= 1, got {min_iter!r}")
    return EarlyTerminate(min_iter, eta)


def _command_args(where: str, command: Any) -> tuple[str, ...]:
    """The literal flags of W&B's ``command`` (``--no-plots``, ``--epochs 1``); its ``${macros}`` are W&B's."""
    if command is None:
        return ()
    if not isinstance(command, list):
        raise _error(where, "command", "must be a list")
    tokens = [str(token) for token in command]
    kept: list[str] = []
    for i, token in enumerate(tokens):
        follows_flag = i > 0 and tokens[i - 1].startswith("--") and "=" not in tokens[i - 1]
        if token.startswith("--") or (follows_flag and not token.startswith(("-", _COMMAND_MACRO))):
            kept.append(token)
    return tuple(kept)


def _metric(where: str, entry: Any) -> tuple[str, str]:
    if entry is None:
        raise _error(where, "metric", "missing; add e.g. metric: {name: val/accuracy, goal: maximize}")
    if not isinstance(entry, Mapping) or entry.get("name") not in SWEEP_METRICS + MONITORS:
        got = entry.get("name") if isinstance(entry, Mapping) else entry
        raise _error(where, "metric: name", f"must be one of {', '.join(SWEEP_METRICS)} (what the W&B tracker "
                     f"logs; {', '.join(MONITORS)} also work here, but not with wandb sweep), got {got!r}")
    goal = entry.get("goal", GOALS[0])
    if goal not in GOALS:
        raise _error(where, "metric: goal", f"must be minimize or maximize, got {goal!r}")
    return entry["name"], goal


@dataclass
class SweepSpec:
    """A checked sweep file. ``raw`` is the file's content, which identifies the sweep."""

    where: str
    name: str
    method: str
    metric: str
    goal: str
    parameters: dict[str, Parameter]
    early_terminate: EarlyTerminate | None
    run_cap: int | None
    command_args: tuple[str, ...]
    raw: dict[str, Any]

    @classmethod
    def load(cls, path: str | Path, *, inside: str | Path | None = None) -> SweepSpec:
        """Read and check a YAML sweep file (with ``inside``: a copy kept in that sweep folder, which it must not
        leave); every problem is a one-line :class:`ConfigError` naming the file."""
        import yaml

        try:
            raw = yaml.safe_load(read_file(path, MAX_SETTINGS_FILE_BYTES, inside=inside).decode("utf-8"))
            count_nodes(raw, MAX_YAML_NODES)
        except UnsafeFileError as error:
            raise ConfigError(str(path), f"refused: {error.reason}; a sweep file is a regular file of at most "
                              f"{size_text(MAX_SETTINGS_FILE_BYTES)}") from None
        except (OSError, UnicodeDecodeError) as error:
            raise ConfigError(str(path), f"cannot read the sweep file ({getattr(error, 'strerror', None) or error})"
                              ) from None
        except yaml.YAMLError as error:
            mark = getattr(error, "problem_mark", None)
            line = f"line {mark.line + 1}: " if mark is not None else ""
            raise ConfigError(str(path), f"{line}not valid YAML ({getattr(error, 'problem', error)})") from None
        except (ValueError, RecursionError) as error:  # nested or aliased too deep
            raise ConfigError(str(path), f"refused: {error or 'nested too deeply'}; a sweep file is a regular file "
                              f"of at most {size_text(MAX_SETTINGS_FILE_BYTES)}") from None
        return cls.from_dict(raw, str(path))

    @classmethod
    def from_dict(cls, raw: Any, where: str) -> SweepSpec:
        """Check a sweep configuration (``where`` names it in errors)."""
        if not isinstance(raw, dict):
            raise ConfigError(where, "a sweep file is a mapping with method, metric and parameters")
        unknown = sorted(set(raw) - set(KNOWN_KEYS))
        if unknown:
            raise _error(where, unknown[0], f"unknown key; a W&B sweep file has {', '.join(KNOWN_KEYS)}")
        if raw.get("method") not in SWEEP_METHODS:
            raise _error(where, "method", f"must be one of {', '.join(SWEEP_METHODS.names)}, got {raw.get('method')!r}")
        entries = raw.get("parameters")
        if not isinstance(entries, dict) or not entries:
            raise _error(where, "parameters", "missing or empty")
        parameters = {str(name): _parameter(where, str(name), entry) for name, entry in entries.items()}
        run_cap = raw.get("run_cap")
        if run_cap is not None and (not isinstance(run_cap, int) or run_cap < 1):
            raise _error(where, "run_cap", f"must be a positive integer, got {run_cap!r}")
        name = str(raw.get("name") or Path(where).stem)
        if "/" in name or "\0" in name or name in (".", ".."):
            raise _error(where, "name", f"must be a plain folder name, got {name!r}")
        spec = cls(where, name, raw["method"], *_metric(where, raw.get("metric")), parameters,
                   _early_terminate(where, raw.get("early_terminate")), run_cap,
                   _command_args(where, raw.get("command")), raw)
        spec.check_values()
        return spec

    @property
    def monitor(self) -> str:
        """The trainer metric behind :attr:`metric`: ``val/accuracy``, ``val_accuracy`` (``--monitor``'s spelling,
        accepted too) and ``best_val_accuracy`` -> ``val_accuracy``."""
        return self.metric.removeprefix("best_").replace("/", "_", 1)

    @property
    def uses_best(self) -> bool:
        """Whether a trial's value is its best validation (``best_*``), else its latest."""
        return self.metric.startswith("best_")

    def trial_args(self, params: Mapping[str, Any]) -> list[str]:
        """A trial's training arguments, as ``wandb agent`` builds them: the file's flags, then the parameters."""
        return list(self.command_args) + agent_args({name: params[name] for name in self.parameters})

    def grid(self) -> dict[str, list[Any]]:
        """The grid a ``grid`` sweep walks: every parameter's values.

        Raises:
            ConfigError: a parameter has a range instead of values.
        """
        for parameter in self.parameters.values():
            if not parameter.values:
                raise _error(self.where, f"parameters: {parameter.name}", "a grid sweep needs values (or value)")
        size = math.prod(len(parameter.values) for parameter in self.parameters.values())
        if size > MAX_GRID_POINTS:
            raise _error(self.where, "parameters", f"the grid has {size} points, more than the limit of "
                         f"{MAX_GRID_POINTS}; use fewer values, or method: random with run_cap")
        return {name: list(parameter.values) for name, parameter in self.parameters.items()}

    def budget(self, trials: int | None) -> int:
        """How many trials the sweep runs: ``trials`` (``--trials``), else ``run_cap``; a grid at most its size."""
        cap = trials or self.run_cap
        if self.method == "grid":
            size = math.prod(len(values) for values in self.grid().values())
            return min(cap, size) if cap else size
        if cap is None:
            raise ConfigError("--trials", f"a {self.method} sweep needs a number of trials: run_cap in "
                              f"{self.where} or --trials N")
        return cap

    def check_values(self) -> None:
        """Parse every value each parameter can take with the training command's parser (beside the constants)."""
        constants = {name: p.values[0] for name, p in self.parameters.items() if p.kind == "constant"}
        for parameter in self.parameters.values():  # each once: a repeatable flag (--tracker) adds up
            others = list(self.command_args) + agent_args(
                {name: value for name, value in constants.items() if name != parameter.name})
            for value in parameter.extremes:
                self._check_args(parameter.name, others + agent_args({parameter.name: value}))

    def own_models(self) -> set[str]:
        """The models of your own (``package.module:Class``) the file names, in ``parameters: model`` or ``command``.

        Example:
            >>> spec = SweepSpec.from_dict({"method": "grid", "metric": {"name": "val/accuracy"},
            ...     "parameters": {"model": {"values": ["cnn", "my_nets:Net"]}}}, "demo.yaml")
            >>> spec.own_models()
            {'my_nets:Net'}
        """
        named = [*self.parameters["model"].extremes] if "model" in self.parameters else []
        args = self.command_args
        named += [arg.removeprefix("--model=") for arg in args if arg.startswith("--model=")]
        named += [args[i + 1] for i, arg in enumerate(args[:-1]) if arg == "--model"]
        return {value for value in named if isinstance(value, str) and is_import_path(value)}

    def _check_args(self, name: str, args: list[str]) -> None:
        captured = io.StringIO()
        try:
            with contextlib.redirect_stderr(captured), contextlib.redirect_stdout(io.StringIO()):
                parse_train_args(args)
        except SystemExit:
            message = captured.getvalue().strip().removeprefix(f"{PROG}: error: ").removesuffix(" (see --help)")
            raise _error(self.where, f"parameters: {name}", message) from None
