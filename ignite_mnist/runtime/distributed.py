"""Data-parallel training on ``ignite.distributed``: start the processes, keep the ranks in step, report.

Ignite supplies the machinery: :class:`ignite.distributed.Parallel` starts
``--nproc-per-node`` processes (under ``torchrun``, torch's ``env://`` rendezvous
joins the group ``RANK``/``WORLD_SIZE``/``MASTER_ADDR``/``MASTER_PORT`` describe, and
Ignite takes it up), ``idist.auto_model`` wraps the model in ``DistributedDataParallel``, Ignite's
metrics all-reduce their counts across ranks, and ``Checkpoint``/``DiskSaver``
write on rank 0 only. Added here, because neither Ignite nor torch has it:

* :func:`launch`: one line per failure naming the rank that failed first (not
  the ranks that then lost their peer), the failing rank's exit code, a free
  port on one machine, SIGTERM forwarded from the launcher to its processes;
  under ``srun torchrun``, torchrun's ranks rather than Slurm's (which Ignite would read);
  under torchrun, each restart's keys under a prefix of their own in torchrun's shared store;
* :func:`check_world`: the global ``--batch-size`` must split evenly over ranks;
* :class:`RankRNGStates`: each rank's random generators in the checkpoint, so a
  resume with the same number of processes is exact;
* :func:`broadcast_module`: rank 0's weights to every rank (the best checkpoint
  is read on rank 0 only, so nodes need no shared disk for it).

Elsewhere, for the same reason: the train step returns the loss averaged over
ranks (:func:`~ignite_mnist.engines.make_train_step`) and
:class:`~ignite_mnist.handlers.signals.SignalCheckpoint` makes all ranks stop at
the same iteration. ``training.run`` shards the data and keeps files, progress
and W&B on rank 0 (see ``docs/distributed.md``).

``run(TrainConfig(nproc_per_node=2, backend="gloo"))`` trains with two processes
and returns rank 0's summary, over the whole test set (``docs/distributed.md``).

Example:
    >>> resolve_backend("auto", "cpu"), needs_launch(TrainConfig(nproc_per_node=2))
    ('gloo', True)
"""

from __future__ import annotations

import json
import multiprocessing
import os
import pickle
import signal
import socket
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import ignite.distributed as idist
import torch
import torch.distributed as dist
from ignite.distributed.launcher import Parallel
from ignite.utils import manual_seed
from torch.distributed.distributed_c10d import PrefixStore
from torch.distributed.rendezvous import rendezvous
from torch.multiprocessing.spawn import ProcessExitedException, ProcessRaisedException

from ignite_mnist.errors import EXIT_FAILURE, EXIT_SIGINT, ConfigError, IgniteMnistError, first_line
from ignite_mnist.settings.config import TrainConfig
from ignite_mnist.storage.checkpoints import RNGStates
from ignite_mnist.storage.files import write_json

__all__ = [
    "RankError",
    "RankRNGStates",
    "broadcast_module",
    "check_world",
    "external_world_size",
    "is_rank_zero",
    "launch",
    "needs_launch",
    "rank_device",
    "resolve_backend",
]

T = TypeVar("T")

_RESULT = "result.pkl"


class RankError(IgniteMnistError):
    """One process of a distributed run failed; the message names its rank.

    Args:
        message: ``"rank <r>: <what went wrong>"``.
        exit_code: the failed process's exit code (2 usage, 130/143 interrupted, ...).
        lost_peer: this rank failed only because another one had stopped.
    """

    def __init__(self, message: str, exit_code: int = 1, *, lost_peer: bool = False) -> None:
        super().__init__(message)
        self.exit_code = exit_code
        self.lost_peer = lost_peer


def _lost_peer(error: BaseException) -> bool:
    """Whether a collective failed because another process went away (gloo raises a plain RuntimeError)."""
    return isinstance(error, dist.DistError) or (isinstance(error, RuntimeError) and "by peer" in str(error))


def is_rank_zero() -> bool:
    """Whether this process is rank 0, the one that writes files and talks to the user: the process group's
    rank once there is one, before that ``$RANK`` as torchrun sets it (a process alone is rank 0).

    Example:
        >>> is_rank_zero()
        True
    """
    if idist.get_world_size() > 1:
        return idist.get_rank() == 0
    return os.environ.get("RANK", "0") == "0"


def external_world_size() -> int:
    """``$WORLD_SIZE`` as set by ``torchrun`` (or another launcher); 1 when unset."""
    try:
        return int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError:
        return 1


def resolve_backend(backend: str, device: str) -> str:
    """``auto`` -> ``nccl`` when training on CUDA, ``gloo`` otherwise.

    Example:
        >>> resolve_backend("auto", "cpu")
        'gloo'
    """
    if backend != "auto":
        return backend
    on_cuda = device == "cuda" or (device == "auto" and torch.cuda.is_available())
    return "nccl" if on_cuda else "gloo"


def needs_launch(config: TrainConfig) -> bool:
    """Whether ``run(config)`` must first start (or join) a process group.

    True for ``--nproc-per-node N`` (N > 1) and under ``torchrun``, unless this
    process is already a rank of an initialised group.
    """
    return idist.get_world_size() == 1 and (config.nproc_per_node > 1 or external_world_size() > 1)


def check_world(config: TrainConfig) -> None:
    """Per-rank checks of settings against the actual world size.

    ``--batch-size`` is the *global* batch: each of the W ranks takes
    ``batch_size / W`` samples per step, so it must divide evenly.
    """
    world_size = idist.get_world_size()
    if config.batch_size % world_size:
        raise ConfigError(
            "--batch-size", f"{config.batch_size} cannot be split evenly over {world_size} processes "
            f"(it is the global batch size); use a multiple of {world_size}"
        )
    if config.val_size < world_size:
        raise ConfigError("--val-size",
                          f"must be at least the number of processes ({world_size}), got {config.val_size}")


def rank_device(device: torch.device) -> torch.device:
    """The device of this rank: ``cuda:<local rank>`` when training on CUDA, else ``device``."""
    if device.type == "cuda" and idist.get_world_size() > 1:
        return idist.device()
    return device


def broadcast_module(module: torch.nn.Module, src: int = 0) -> None:
    """Copy rank ``src``'s parameters and buffers into ``module`` on every rank (no-op for one process)."""
    if idist.get_world_size() == 1:
        return
    with torch.no_grad():
        for tensor in module.state_dict().values():
            dist.broadcast(tensor, src)


class RankRNGStates(RNGStates):
    """:class:`~ignite_mnist.storage.checkpoints.RNGStates` of every rank, for distributed checkpoints.

    ``state_dict`` (called on every rank by Ignite's ``Checkpoint``) gathers all
    ranks' generator states: rank 0's sit at the top level, so a single process
    resumes as rank 0, and all of them under ``"ranks"``. On load, each rank takes
    its own when the world size is unchanged (exact resume); with another world
    size rank 0 takes rank 0's and the other ranks reseed from it and their rank
    (the dropout streams then differ from an uninterrupted run).

    Example:
        >>> states = RankRNGStates().state_dict()  # one process: the plain RNGStates dict
        >>> "ranks" in states
        False
    """

    def state_dict(self) -> dict[str, Any]:
        own = super().state_dict()
        world_size = idist.get_world_size()
        if world_size == 1:
            return own
        gathered: list[Any] = [None] * world_size
        dist.all_gather_object(gathered, own)
        return {**gathered[0], "ranks": gathered}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        ranks, rank = state.get("ranks"), idist.get_rank()
        if ranks is not None and len(ranks) == idist.get_world_size():
            super().load_state_dict(ranks[rank])
            return
        super().load_state_dict(state)
        if rank > 0:
            manual_seed(int(torch.randint(0, 2**31 - 1, (1,))) + rank)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _children_share_terminal() -> bool:
    """Whether Ctrl-C reaches the worker processes directly (we are the terminal's foreground group)."""
    try:
        return os.tcgetpgrp(sys.stdin.fileno()) == os.getpgrp()
    except (OSError, ValueError, AttributeError):
        return False


@contextmanager
def _forward_signals() -> Iterator[None]:
    """In the launcher: pass SIGTERM (and SIGINT not typed at a terminal) on to the workers.

    The workers save a checkpoint and stop together (see
    :class:`~ignite_mnist.handlers.signals.SignalCheckpoint`); the launcher waits for them.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def forward(signum: int, frame: Any) -> None:
        if signum == signal.SIGINT and _children_share_terminal():
            return  # the terminal sent it to the workers too; a second copy would mean "stop at once"
        for child in multiprocessing.active_children():
            if child.pid is not None:
                os.kill(child.pid, signum)

    previous = {signum: signal.signal(signum, forward) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def run_on_rank(fn: Callable[[TrainConfig], T], config: TrainConfig) -> T:
    """Call ``fn(config)`` as one rank; its user-facing errors are prefixed with ``rank <r>:``.

    A failed collective (another process died) becomes a :class:`RankError` saying so.
    """
    rank = idist.get_rank()
    try:
        result = fn(config)
        idist.barrier()  # nobody tears the process group down while another rank still uses it
    except IgniteMnistError as error:
        if not str(error).startswith(f"rank {rank}:"):
            error.args = (f"rank {rank}: {error}",)
        raise
    except (dist.DistError, RuntimeError) as error:
        if not _lost_peer(error):
            raise
        raise RankError(
            f"rank {rank}: stopped because another process failed ({first_line(error)})", lost_peer=True
        ) from error
    return result


def _write_report(reports: Path, error: BaseException) -> int:
    rank = idist.get_rank()
    peer = isinstance(error, RankError) and error.lost_peer
    if isinstance(error, IgniteMnistError):
        message, code, trace = str(error), error.exit_code, None
    elif isinstance(error, KeyboardInterrupt):
        message, code, trace = f"rank {rank}: interrupted", EXIT_SIGINT, None
    else:
        message, code = f"rank {rank}: {type(error).__name__}: {error}", EXIT_FAILURE
        trace = "".join(traceback.format_exception(error))
    report = {"rank": rank, "time": time.time(), "peer": peer, "message": message, "exit_code": code, "trace": trace}
    # atomically: the launcher stops the other ranks once one has failed, maybe while one writes its report, and
    # reads them all (a report cut short by that SIGTERM was once read as an empty file, a JSONDecodeError)
    write_json(reports / f"rank{rank}.json", report)
    return code


def _share_cores(nproc_per_node: int) -> None:
    """Give each process its share of the CPU cores for torch's threads (as torchrun does with OMP_NUM_THREADS).

    Without it every process starts one thread per core and they fight over the cores.
    """
    if "OMP_NUM_THREADS" not in os.environ:
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // nproc_per_node))


@contextmanager
def _slurm_hidden_under_torchrun() -> Iterator[None]:
    """Under ``srun torchrun`` (one Slurm task per node, torchrun's processes in it), hide ``$SLURM_JOB_ID``.

    Ignite takes a process's rank and local rank from Slurm's variables when it sees
    ``$SLURM_JOB_ID``; those describe the task, not each of torchrun's processes (every
    process of a node would be local rank 0, and several nodes are refused as inconsistent).
    torchrun's ``RANK``/``LOCAL_RANK``/``WORLD_SIZE`` are the right ones.
    """
    job = os.environ.pop("SLURM_JOB_ID", None) if "TORCHELASTIC_RUN_ID" in os.environ else None
    try:
        yield
    finally:
        if job is not None:
            os.environ["SLURM_JOB_ID"] = job


@contextmanager
def _torchrun_group(backend: str) -> Iterator[None]:
    """Join the process group torchrun describes, with keys of this attempt only in its store.

    torchrun keeps one TCPStore for the whole job (unless ``TORCH_DISABLE_SHARE_RDZV_TCP_STORE=1``),
    and a process group's processes leave their addresses there under fixed keys: after a
    ``--max-restarts`` restart a new process can read a dead one's (gloo: "Connection refused",
    seen here). Each attempt (``$TORCHELASTIC_RESTART_COUNT``) gets its own prefix; the store
    and the ranks are torch's own ``env://`` rendezvous, and Ignite takes up the group.
    """
    store, rank, world_size = next(rendezvous("env://"))
    attempt = os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")
    if backend == "nccl":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group(backend, store=PrefixStore(f"ignite-mnist/attempt-{attempt}", store), rank=rank,
                            world_size=world_size)
    idist.sync()
    try:
        yield
    finally:
        idist.finalize()


def _rank_main(local_rank: int, fn: Callable[[TrainConfig], Any], config: TrainConfig, reports: str) -> None:
    """The body of each spawned process: run, then hand the result or the failure to the launcher."""
    _share_cores(config.nproc_per_node)
    try:
        result = run_on_rank(fn, config)
    except BaseException as error:  # noqa: BLE001 - every failure is reported to the launcher
        raise SystemExit(_write_report(Path(reports), error)) from None
    if idist.get_rank() == 0:
        with open(Path(reports) / _RESULT, "wb") as f:
            pickle.dump(result, f)


def _failure(reports: Path, failure: Exception) -> RankError:
    """The error to raise for a failed spawn: the first rank that failed for a reason of its own."""
    found = sorted(
        (json.loads(p.read_text()) for p in reports.glob("rank*.json")), key=lambda r: (r["peer"], r["time"])
    )
    index = getattr(failure, "error_index", 0)
    signal_name = getattr(failure, "signal_name", None)
    if found and (not found[0]["peer"] or signal_name is None):
        report = found[0]
        if report["trace"]:
            print(report["trace"], file=sys.stderr, end="")
        return RankError(report["message"], report["exit_code"])
    if signal_name is not None:
        code = 128 + signal.Signals[signal_name].value if signal_name in signal.Signals.__members__ else 1
        return RankError(f"rank {index}: killed by {signal_name}", code)
    lines = [line for line in str(failure).strip().splitlines() if line.strip()]
    return RankError(f"rank {index}: {lines[-1] if lines else type(failure).__name__}")


def _spawn(fn: Callable[[TrainConfig], T], config: TrainConfig, backend: str) -> T:
    port = int(os.environ.get("MASTER_PORT") or _free_port())
    with tempfile.TemporaryDirectory(prefix="ignite-mnist-ranks-") as reports, _forward_signals():
        try:
            with Parallel(backend=backend, nproc_per_node=config.nproc_per_node, master_port=port) as parallel:
                parallel.run(_rank_main, fn, config, reports)
        except (ProcessExitedException, ProcessRaisedException) as failure:
            raise _failure(Path(reports), failure) from None
        with open(Path(reports) / _RESULT, "rb") as f:
            result: T = pickle.load(f)  # written by our own rank 0 in our own temporary folder
        return result


def launch(fn: Callable[[TrainConfig], T], config: TrainConfig) -> T:
    """Run ``fn(config)`` on every rank; return rank 0's result (under torchrun: this rank's).

    With ``--nproc-per-node N`` it starts N processes on this machine
    (``idist.Parallel``, a free local port unless ``$MASTER_PORT`` is set); under
    ``torchrun`` it joins the process group described by the environment (and
    ``--nproc-per-node`` is ignored: torchrun's own flag decides).

    Raises:
        ConfigError: ``nccl`` without a GPU or not built into torch.
        RankError: a process failed; names its rank and carries its exit code.
    """
    backend = resolve_backend(config.backend, config.device)
    if backend == "nccl" and not torch.cuda.is_available():
        raise ConfigError("--backend", "nccl needs CUDA GPUs and none is available; use --backend gloo")
    if backend not in idist.available_backends():
        raise ConfigError("--backend", f"{backend} is not available in this torch build; use --backend gloo")
    if external_world_size() > 1:  # torchrun started the processes: --nproc-per-node is its business
        with _slurm_hidden_under_torchrun(), _torchrun_group(backend):
            return run_on_rank(fn, config)
    return _spawn(fn, config, backend)
