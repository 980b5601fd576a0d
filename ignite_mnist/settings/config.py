"""``TrainConfig``: every setting of a training run, its default and its valid range.

The training flags (:mod:`ignite_mnist.settings.config_args`), ``config.json`` in the run
directory and the trackers' config are all derived from this one dataclass, so a
setting is declared once: its default, its help text, its choices and its range
check live in the ``field`` metadata below. Each tracker declares its own settings
the same way, in its :class:`TrackerSettings` (e.g. ``--wandb-mode``, in
:mod:`ignite_mnist.tracking.wandb_settings`); :func:`setting_fields` lists them all.

Example:
    >>> config = TrainConfig(epochs=3, model="cnn")
    >>> config.validate()
    >>> TrainConfig.from_dict(config.to_dict()) == config
    True
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import difflib
import os
from dataclasses import dataclass, field
from typing import Any

from ignite_mnist.errors import ConfigError
from ignite_mnist.limits import MAX_PROCESSES, MAX_THREADS, MAX_WORKERS
from ignite_mnist.registry import (
    BACKENDS,
    DATASETS,
    DEVICES,
    LOADERS,
    LR_SCHEDULES,
    MODELS,
    MONITORS,
    NO_TRACKER,
    OPTIMIZERS,
    PROGRESS_MODES,
    THREAD_MODES,
    TRACKER_CHOICES,
    TRACKER_SETTINGS,
    is_import_path,
)
from ignite_mnist.settings.fields import (
    NON_NEGATIVE,
    POSITIVE,
    PROBABILITY,
    SEED,
    TrackerSettings,
    check_setting,
    flag_name,
    setting,
    setting_default,
    setting_name,
    setting_type,
)

#: ``--dataset folder:PATH`` (see :mod:`ignite_mnist.data.folders`).
FOLDER_PREFIX = "folder:"

__all__ = [
    "BOOKKEEPING_SETTINGS",
    "DATA_DIR_ENV",
    "EXACT_RESUME_SETTINGS",
    "IDENTITY_SETTINGS",
    "RENAMED_SETTINGS",
    "TrackerSettings",
    "TrainConfig",
    "bookkeeping_settings",
    "coerce_setting",
    "current_names",
    "default_data_dir",
    "flag_name",
    "require_named_model",
    "setting_default",
    "setting_fields",
    "setting_name",
    "setting_type",
    "tracker_settings_classes",
]

#: A checkpoint is never resumed with other values of these: it would be another experiment.
IDENTITY_SETTINGS = ("model", "dataset")
#: Changing these on resume breaks the exact continuation (refused unless --allow-config-change).
EXACT_RESUME_SETTINGS = (
    "batch_size", "seed", "val_size", "optimizer", "lr", "momentum", "weight_decay", "label_smoothing", "lr_schedule",
    "augment", "amp",
)
#: Where a run is kept and how it is shown and tracked, not what it trains: ``compare`` leaves them out
#: (and every tracker's own settings, see :func:`bookkeeping_settings`).
BOOKKEEPING_SETTINGS = (
    "data_dir", "output_dir", "run_name", "resume", "overwrite", "allow_config_change", "progress",
    "progress_interval", "plots", "tracker", "log_every",
)
#: The field of :class:`TrainConfig` that holds the trackers' own settings (not a setting itself).
TRACKER_SETTINGS_FIELD = "tracker_settings"

DATA_DIR_ENV = "IGNITE_MNIST_DATA_DIR"

def default_data_dir() -> str:
    """The dataset root: ``$IGNITE_MNIST_DATA_DIR`` when set, else ``./data``."""
    return os.environ.get(DATA_DIR_ENV) or "./data"


def _is_count(threads: str) -> bool:
    """Whether ``--threads`` got a thread count (a whole number from 1 to ``MAX_THREADS``)."""
    return threads.isascii() and threads.isdigit() and 0 < int(threads) <= MAX_THREADS


def is_folder_name(dataset: str) -> bool:
    """Whether ``dataset`` names a folder of images (``folder:PATH``).

    Example:
        >>> is_folder_name("folder:/data/digits"), is_folder_name("folder:"), is_folder_name("mnist")
        (True, False, False)
    """
    return dataset.startswith(FOLDER_PREFIX) and len(dataset) > len(FOLDER_PREFIX)


#: Settings that were renamed: the old name (in older ``config.json`` files and checkpoints) -> the current one.
RENAMED_SETTINGS = {"wandb_log_every": "log_every"}


def current_names(values: dict[str, Any]) -> dict[str, Any]:
    """``values`` with renamed settings under their current names.

    Example:
        >>> current_names({"wandb_log_every": 10, "epochs": 2})
        {'log_every': 10, 'epochs': 2}
    """
    return {RENAMED_SETTINGS.get(name, name): value for name, value in values.items()}


def tracker_settings_classes() -> dict[str, type[TrackerSettings]]:
    """Each tracker's settings class, by tracker name (:data:`~ignite_mnist.registry.TRACKER_SETTINGS`)."""
    return {name: TRACKER_SETTINGS.load(name) for name in TRACKER_SETTINGS.names}


def _default_tracker_settings() -> dict[str, TrackerSettings]:
    return {name: kind() for name, kind in tracker_settings_classes().items()}


def _core_fields() -> tuple[dataclasses.Field[Any], ...]:
    return tuple(f for f in dataclasses.fields(TrainConfig) if f.name != TRACKER_SETTINGS_FIELD)


def setting_fields() -> dict[str, dataclasses.Field[Any]]:
    """Every setting by name, in ``config.json``'s order: :class:`TrainConfig`'s own, then each tracker's.

    Example:
        >>> names = list(setting_fields())
        >>> names[:2], "wandb_mode" in names, "tracker_settings" in names
        (['dataset', 'data_dir'], True, False)
    """
    found = {f.name: f for f in _core_fields()}
    for kind in tracker_settings_classes().values():
        found |= {f.name: f for f in dataclasses.fields(kind)}  # type: ignore[arg-type]
    return found


def bookkeeping_settings() -> tuple[str, ...]:
    """:data:`BOOKKEEPING_SETTINGS` and every tracker's own settings: what ``compare`` leaves out."""
    core = {f.name for f in _core_fields()}
    return BOOKKEEPING_SETTINGS + tuple(name for name in setting_fields() if name not in core)


@dataclass
class TrainConfig:
    """All settings of one training run. The defaults are the tutorial's recipe."""

    # data
    dataset: str = setting(
        "mnist", "which dataset to train on: MNIST, Fashion-MNIST, or your own images in PATH/train/<class>/ "
        "and PATH/test/<class>/ (see docs/handlers.md)", choices=DATASETS.names, other=("folder:PATH", is_folder_name),
    )
    data_dir: str = setting(
        help=f"dataset root holding <DATASET>/raw/ (default: ${DATA_DIR_ENV} or ./data)",
        default_factory=default_data_dir,
    )
    val_size: int = setting(5000, "training images held out (seeded) for validation", check=POSITIVE)
    # model and optimisation
    model: str = setting(
        "mlp", "network: mlp, the tutorial's MLP; mlp-deskew, the same MLP behind a deskewing layer (the "
        "mlp-best recipe's); cnn, a small ConvNet; fastcnn, the fast recipe's BatchNorm CNN; "
        "quickcnn, the one-epoch recipe's CNN; deepcnn, the best recipe's deeper CNN; or your own "
        "torch.nn.Module class by import path (taking num_classes if it wants it)",
        choices=MODELS.names, other=("package.module:Class", is_import_path),
    )
    epochs: int = setting(10, "number of training epochs", check=POSITIVE)
    batch_size: int = setting(
        32, "training batch size; with several processes the global one, split evenly over them", check=POSITIVE
    )
    lr: float = setting(1e-3, "learning rate", check=POSITIVE)
    optimizer: str = setting("adam", "optimizer", choices=OPTIMIZERS.names)
    momentum: float = setting(0.0, "SGD momentum (sgd only)", check=PROBABILITY)
    weight_decay: float = setting(0.0, "weight decay (L2 for adam/sgd, decoupled for adamw)", check=NON_NEGATIVE)
    label_smoothing: float = setting(
        0.0, "label smoothing of the training loss (0.1: the target class gets 0.91, each other 0.01); "
        "validation and test losses stay plain cross-entropy", check=PROBABILITY,
    )
    seed: int = setting(0, "seed for weights, dropout, data order and the validation split", check=SEED)
    device: str = setting("auto", "where to train; auto picks cuda when available", choices=DEVICES)
    # speed (see docs/benchmarks.md)
    loader: str = setting(
        "tensor", "tensor: the whole split as one tensor on the device (fast); torch: torchvision Dataset + "
        "DataLoader (workers, pinned memory on CUDA); both give the same batches", choices=LOADERS.names,
    )
    num_workers: int = setting(0, "DataLoader worker processes (--loader torch only)",
                               check=(lambda v: 0 <= v <= MAX_WORKERS, f"must be between 0 and {MAX_WORKERS}"))
    threads: str = setting(
        "auto", "CPU threads torch computes with: auto times a few steps at 1 thread and at one per core and "
        "takes more only when clearly faster (a busy machine or a small model gives 1); config.json keeps the "
        "count it chose", choices=THREAD_MODES, other=(f"a thread count from 1 to {MAX_THREADS}", _is_count),
    )
    augment: bool = setting(False, "random shifts (2 px) and rotations (10 degrees) of each training image")
    lr_schedule: str = setting(
        "constant", "learning rate: constant, or onecycle (warm up to --lr over the first fifth of the run, "
        "then down to --lr/1000)",
        choices=LR_SCHEDULES.names,
    )
    amp: bool = setting(
        False, "mixed precision: bfloat16 autocast on recent GPUs and on CPUs with bfloat16 instructions "
        "(AVX512-BF16/AMX; other CPUs stay in float32, where it is faster), float16 on older GPUs")
    compile: bool = setting(False, "torch.compile the model (slow start, faster steps for long runs)")
    # distributed training (ignite.distributed; see docs/distributed.md)
    nproc_per_node: int = setting(
        1, "processes to start on this machine for data-parallel training (leave it out under torchrun, "
        "which starts them itself)", check=(lambda v: 0 < v <= MAX_PROCESSES, f"must be between 1 and {MAX_PROCESSES}"),
    )
    backend: str = setting(
        "auto", "distributed backend: auto is nccl when training on CUDA, gloo otherwise",
        choices=BACKENDS,
    )
    # outputs
    output_dir: str = setting("runs", "folder that holds the run directories")
    run_name: str | None = setting(
        None, "name of this run's directory under --output-dir (default: <dataset>-<model>-<time>)", type=str
    )
    progress: str = setting(
        "auto", "progress display: tqdm bars on a terminal, log lines otherwise", choices=PROGRESS_MODES
    )
    progress_interval: float = setting(10.0, "seconds between progress lines in log mode", check=NON_NEGATIVE)
    plots: bool = setting(
        True, "draw loss/accuracy curves, the confusion matrix and misclassified test digits into "
        "<run dir>/plots/ after training (needs matplotlib: the plots extra)",
    )
    # validation, early stopping, checkpoints, resume
    val_every: int = setting(1, "validate every N epochs (and after the last one)", check=POSITIVE)
    val_every_iterations: int | None = setting(
        None, "also validate every N training iterations (default: off)", check=POSITIVE, type=int
    )
    monitor: str = setting(
        "val_accuracy", "metric that picks the best checkpoint and drives early stopping (accuracy: max, loss: min)",
        choices=MONITORS,
    )
    patience: int | None = setting(
        None, "stop after this many epochs without improvement of --monitor (default: never)", check=POSITIVE, type=int
    )
    min_delta: float = setting(0.0, "smallest change of --monitor that counts as an improvement", check=NON_NEGATIVE)
    keep_best: int = setting(2, "how many best checkpoints (by --monitor) to keep", check=POSITIVE)
    checkpoint_every: int | None = setting(
        None, "also save a resumable checkpoint every N iterations (one is always saved each epoch)",
        check=POSITIVE, type=int,
    )
    resume: str | None = setting(
        None, "continue a run: a checkpoint path, or 'auto' for the newest one of --run-name "
        "(or of the newest run in --output-dir)", type=str,
    )
    allow_config_change: bool = setting(
        False, "let --resume go on although batch size, seed, split or optimisation settings differ "
        "from the checkpoint (the result is then no longer an exact continuation)",
    )
    overwrite: bool = setting(
        False, "start afresh in a --run-name that already holds a run; the old run's files are moved to "
        "<run-name>.old-N/ beside it, never deleted",
    )
    # experiment tracking (see docs/tracking.md)
    tracker: list[str] = setting(
        help="experiment tracker; give the flag once per tracker (--tracker tensorboard --tracker mlflow), "
             "or none for no tracker (default: wandb)",
        default_factory=lambda: ["wandb"], choices=TRACKER_CHOICES, type=str, repeatable=True,
    )
    log_every: int = setting(50, "log the training loss and learning rate to the trackers every N iterations",
                             check=POSITIVE)
    # each tracker's own settings (--wandb-*, --mlflow-*), declared by the tracker: see TrackerSettings
    tracker_settings: dict[str, TrackerSettings] = field(default_factory=_default_tracker_settings)
    def __post_init__(self) -> None:
        # a folder dataset is stored with an absolute path, so the run's commands work from any folder
        if is_folder_name(self.dataset):
            folder = self.dataset.removeprefix(FOLDER_PREFIX)
            self.dataset = FOLDER_PREFIX + os.path.abspath(os.path.expanduser(folder))

    def validate(self) -> None:
        """Check every setting against its declared range and choices.

        Raises:
            ConfigError: naming the flag and the accepted values.
        """
        for f in _core_fields():
            check_setting(f, getattr(self, f.name))
        for settings in self.tracker_settings.values():
            for f in dataclasses.fields(settings):  # type: ignore[arg-type]
                check_setting(f, getattr(settings, f.name))
            settings.validate()
        if (NO_TRACKER in self.tracker and len(self.tracker) > 1) or len(set(self.tracker)) < len(self.tracker):
            raise ConfigError("--tracker", f"name each tracker once, or none alone; got {', '.join(self.tracker)}")
        if self.run_name is not None and (not self.run_name or "/" in self.run_name or "\0" in self.run_name
                                          or self.run_name in (".", "..")):
            raise ConfigError("--run-name", f"must be a plain folder name, got {self.run_name!r}")
        if self.resume is not None and not self.resume.strip():
            raise ConfigError("--resume", "needs a checkpoint path or 'auto', got an empty string")
        if self.overwrite and self.resume is not None:
            raise ConfigError("--overwrite", "cannot be combined with --resume (one continues a run, the other "
                              "replaces it); leave one out")
        if self.momentum and self.optimizer != "sgd":
            raise ConfigError("--momentum", f"only --optimizer sgd uses it, got --optimizer {self.optimizer}; "
                              "leave --momentum out or use --optimizer sgd")
        if self.min_delta and self.patience is None:
            raise ConfigError("--min-delta", "only early stopping uses it; add --patience N or leave it out")
        if self.backend == "nccl" and self.device == "cpu":
            raise ConfigError("--backend", "nccl runs on CUDA GPUs only; use --backend gloo with --device cpu")
        if self.num_workers and self.loader != "torch":
            raise ConfigError("--num-workers", "only --loader torch uses worker processes; add --loader torch "
                              "or leave --num-workers out")
        if self.batch_size % self.nproc_per_node:
            raise ConfigError(
                "--batch-size", f"{self.batch_size} cannot be split evenly over --nproc-per-node "
                f"{self.nproc_per_node} (it is the global batch size); use a multiple of {self.nproc_per_node}"
            )

    def settings_of(self, tracker: str) -> Any:
        """Tracker ``tracker``'s own settings (the tracker's :class:`TrackerSettings` dataclass)."""
        return self.tracker_settings[tracker]

    def to_dict(self) -> dict[str, Any]:
        """Every setting by name as plain JSON-serialisable values (what ``config.json`` holds): the
        trackers' settings beside the others, one level, as ``--config`` files take them."""
        values = {f.name: copy.deepcopy(getattr(self, f.name)) for f in _core_fields()}
        for settings in self.tracker_settings.values():
            values |= dataclasses.asdict(settings)  # type: ignore[call-overload]
        return values

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        """A config from settings by name, e.g. :meth:`to_dict` output or ``config.json`` (older names accepted,
        settings left out at their defaults); unknown names are an error.

        Example:
            >>> TrainConfig.from_dict({"epochs": 2, "wandb_mode": "offline"}).settings_of("wandb").wandb_mode
            'offline'
        """
        values = current_names(values)
        unknown = sorted(set(values) - set(setting_fields()))
        if unknown:
            raise ConfigError(unknown[0], f"unknown setting(s): {', '.join(unknown)}")
        trackers = {}
        for name, kind in tracker_settings_classes().items():
            own = {f.name for f in dataclasses.fields(kind)}  # type: ignore[arg-type]
            trackers[name] = kind(**{k: values.pop(k) for k in own & set(values)})
        return cls(**values, tracker_settings=trackers)


def require_named_model(model: str, named: str | None, source: object) -> None:
    """Refuse your own model (``package.module:Class``) that only a file names: code is imported only when the
    command line names it too (``--model package.module:Class``); the built-in models need nothing.

    Raises:
        ConfigError: ``model`` is an import path and ``named`` (the command line's ``--model``) is not it.

    Example:
        >>> require_named_model("cnn", None, "a.pt"), require_named_model("my.nets:Net", "my.nets:Net", "a.pt")
        (None, None)
        >>> require_named_model("os:abort", None, "a.pt")
        Traceback (most recent call last):
        ...
        ignite_mnist.errors.ConfigError: --model: a.pt names your own model os:abort; code a file names is \
imported only when the command line names it too: add --model os:abort if you trust it
    """
    if is_import_path(model) and named != model:
        raise ConfigError("--model", f"{source} names your own model {model}; code a file names is imported only "
                                     f"when the command line names it too: add --model {model} if you trust it")


_KINDS = {bool: "true or false", int: "an integer", float: "a number", str: "text"}


def coerce_setting(name: str, value: Any) -> Any:
    """A value for setting ``name`` read from a file (YAML, TOML, JSON), in the type its flag gives.

    Integers pass for numbers, a single name for a list of names, and text that reads as a
    number for a number (PyYAML reads ``1e-3``, without a dot, as text). Ranges and
    choices are checked later, by :meth:`TrainConfig.validate`.

    Raises:
        ConfigError: an unknown setting, or a value of the wrong type.

    Example:
        >>> coerce_setting("lr", "1e-3"), coerce_setting("epochs", 3), coerce_setting("tracker", "mlflow")
        (0.001, 3, ['mlflow'])
        >>> coerce_setting("threads", 2), coerce_setting("threads", "auto")
        ('2', 'auto')
        >>> coerce_setting("epochs", "ten")
        Traceback (most recent call last):
        ...
        ignite_mnist.errors.ConfigError: --epochs: expected an integer, got 'ten'
    """
    fields = setting_fields()
    name = RENAMED_SETTINGS.get(name, name)
    if name not in fields:
        close = difflib.get_close_matches(name, fields, n=1)
        raise ConfigError(name, "unknown setting" + (f" (did you mean {close[0]}?)" if close else ""))
    f, kind = fields[name], setting_type(fields[name])
    if f.metadata.get("repeatable"):
        items = [value] if isinstance(value, kind) else value
        if isinstance(items, list) and all(isinstance(item, kind) for item in items):
            return list(items)
        raise ConfigError(flag_name(name), f"expected a list of names, e.g. [{', '.join(f.metadata['choices'][:2])}], "
                                           f"got {value!r}")
    if value is None and setting_default(f) is None:
        return None
    if kind is float and not isinstance(value, bool):
        with contextlib.suppress(TypeError, ValueError):
            return float(value)
    if isinstance(value, kind) and (kind is bool or not isinstance(value, bool)):
        return value
    if kind is str and type(value) is int and f.metadata.get("other"):
        return str(value)  # ``threads: 2`` in a file: a count where text is otherwise taken (validate checks it)
    raise ConfigError(flag_name(name), f"expected {_KINDS.get(kind, kind.__name__)}, got {value!r}")
