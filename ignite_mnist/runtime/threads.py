"""How many CPU threads torch computes with (``--threads N|auto``).

torch starts one intra-op thread per core. On a machine that other work shares,
that collapses: a parallel region ends only when its slowest thread does, and a
thread the scheduler has set aside holds the whole step (measured on the 2-core
machine with one other busy process: the tutorial MLP at 2 threads ran at a
fraction of its 1-thread speed; see ``docs/benchmarks.md``). More threads also
only pay when a step has enough work to split: the tutorial MLP at batch 32 does
not.

So ``auto`` measures rather than guesses: it times a few training steps of the
run's model, optimizer and batch shape (built a second time for the probe) at 1
thread and at one per core, interleaved, each after a few untimed warm-up steps,
and takes more threads only when they are clearly faster (by :data:`MIN_SPEEDUP`).
It is short because it is paid before every run (about 0.3 s for the one-epoch
recipe on a quiet 2-core machine): each try lasts :data:`PROBE_SECONDS` (one step
at least: on a busy machine a step at 2 threads took 0.5-1.5 s), once two rounds
agree the third is skipped, and one round whose speed-up misses or clears
:data:`MIN_SPEEDUP` by a factor of 2 decides alone.
A busy machine and a small model both give 1. The probe's model is built under a
forked random state, so the run's weights and random numbers are those of a run
without it.

The thread count changes the order of floating-point sums, so a run is
reproducible bit for bit only at the same count: the run stores the count ``auto``
chose in ``config.json`` (``threads: "1"``), and ``--resume`` and ``--config
config.json`` use it again. ``$OMP_NUM_THREADS`` set in the environment counts as
a choice already made.

Example:
    >>> choice = choose_threads("3", probe=None)
    >>> choice.threads, choice.reason
    (3, '--threads 3')
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import os
import statistics
import time
from collections.abc import Callable, Iterator

import torch
from torch import nn

from ignite_mnist.registry import THREADS_AUTO

__all__ = [
    "MIN_SPEEDUP", "ThreadChoice", "available_cores", "choose_threads", "choose_threads_for", "step_probe",
    "using_threads",
]

#: How much faster per step more threads must be before ``auto`` takes them (noise, and the risk under load).
MIN_SPEEDUP = 1.15
#: Each try steps for at least this many seconds (one step at least), so a small model's try is not all timer
#: noise; each count is tried up to :data:`PROBE_ROUNDS` times, interleaved with the other, after
#: :data:`WARMUP_STEPS` untimed steps at each count.
PROBE_SECONDS = 0.05
#: Rounds of tries at most; after two whose speed-ups both clear :data:`MIN_SPEEDUP`, or both miss it, the median
#: of three could not say otherwise and the third is not run; a round off the bar by a factor of 2 decides alone.
PROBE_ROUNDS = 3
#: Untimed steps at each thread count first: the first steps at a count start its thread pool and pick
#: kernels, and timed with the rest they made 2 threads look barely faster (1.13x) for a model they train 2x
#: faster (the one-epoch recipe's).
WARMUP_STEPS = 2


@dataclasses.dataclass(frozen=True)
class ThreadChoice:
    """The thread count a run computes with, and why; ``measured`` when ``auto`` timed the probe to decide
    (the run then tells the user; ``config.json`` keeps the count either way)."""

    threads: int
    reason: str
    measured: bool = False

    def __str__(self) -> str:
        return f"{self.threads} CPU thread{'s' if self.threads > 1 else ''} ({self.reason})"


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity, which containers and ``taskset`` narrow)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def step_probe(model: nn.Module, optimizer: torch.optim.Optimizer, loss_fn: Callable[..., torch.Tensor],
               images: torch.Tensor, labels: torch.Tensor) -> Callable[[], None]:
    """One training step on a fixed batch, to time; it trains ``model`` and ``optimizer``, so give it
    ones built for the probe (the run builds a second model and optimizer under a forked random state)."""
    model.train()

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        loss_fn(model(images), labels).backward()
        optimizer.step()

    return step


def _seconds_per_step(step: Callable[[], None], threads: int) -> float:
    torch.set_num_threads(threads)
    started, steps = time.perf_counter(), 0
    while steps == 0 or time.perf_counter() - started < PROBE_SECONDS:
        step()
        steps += 1
    return (time.perf_counter() - started) / steps


def choose_threads(setting: str, probe: Callable[[], None] | None, cores: int | None = None) -> ThreadChoice:
    """The thread count ``--threads`` means here.

    Args:
        setting: a count (``"2"``) or ``"auto"``.
        probe: one training step to time (:func:`step_probe`); only ``auto`` calls it.
        cores: the cores to consider (default: :func:`available_cores`).
    """
    if setting != THREADS_AUTO:
        return ThreadChoice(int(setting), f"--threads {setting}")
    if os.environ.get("OMP_NUM_THREADS", "").isdigit():
        return ThreadChoice(int(os.environ["OMP_NUM_THREADS"]), "$OMP_NUM_THREADS")
    cores = cores or available_cores()
    if cores == 1:
        return ThreadChoice(1, "one core")
    if probe is None:
        return ThreadChoice(1, "nothing to time")
    # dropout in the probe draws from a copy of the random state; the thread count comes back as it was
    with torch.random.fork_rng(devices=[]), using_threads(torch.get_num_threads()):
        times = _probe_times(probe, cores)
    one, many = (statistics.median(times[count]) * 1000 for count in (1, cores))
    faster = statistics.median(a / b for a, b in zip(times[1], times[cores], strict=True)) >= MIN_SPEEDUP
    return ThreadChoice(cores if faster else 1, f"{one:.1f} ms per step on 1 thread, {many:.1f} ms on {cores}",
                        measured=True)


def _probe_times(probe: Callable[[], None], cores: int) -> dict[int, list[float]]:
    """Seconds per step at 1 thread and at ``cores``, one try each per round, until two rounds agree."""
    times: dict[int, list[float]] = {1: [], cores: []}
    for count in times:  # warm-up: first-call allocations, the thread pool, kernel selection
        torch.set_num_threads(count)
        for _ in range(WARMUP_STEPS):
            probe()
    for _ in range(PROBE_ROUNDS):
        for count in times:
            times[count].append(_seconds_per_step(probe, count))
        speedups = [a / b for a, b in zip(times[1], times[cores], strict=True)]
        clear = not MIN_SPEEDUP / 2 < speedups[0] < MIN_SPEEDUP * 2
        if len({speedup >= MIN_SPEEDUP for speedup in speedups}) == 1 and (len(speedups) >= 2 or clear):
            break
    return times


def choose_threads_for(model: nn.Module, optimizer: torch.optim.Optimizer, loss_fn: Callable[..., torch.Tensor],
                       batch: tuple[torch.Tensor, torch.Tensor], setting: str = THREADS_AUTO) -> ThreadChoice:
    """The thread count ``setting`` means for training ``model`` with ``optimizer`` and ``loss_fn`` on batches
    like ``batch`` (``auto``: a few steps timed at each count, :func:`choose_threads`). The steps train copies,
    so ``model``, ``optimizer`` and every random generator are as they were.

    Example:
        >>> model = torch.nn.Linear(4, 2)
        >>> optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        >>> batch = (torch.randn(8, 4), torch.randint(0, 2, (8,)))
        >>> choose_threads_for(model, optimizer, torch.nn.functional.cross_entropy, batch, "1").threads
        1
    """
    images, labels = batch
    with torch.random.fork_rng(devices=[]):
        probe_model, probe_optimizer = copy.deepcopy((model, optimizer))  # the copy steps over the copied weights
        return choose_threads(setting, step_probe(probe_model, probe_optimizer, loss_fn, images, labels))


@contextlib.contextmanager
def using_threads(threads: int) -> Iterator[None]:
    """Compute with ``threads`` intra-op threads inside the block; the previous count comes back after it."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)
