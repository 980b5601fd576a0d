"""Pick the CPU thread count of a hand-written trainer the way ``--threads auto`` does: :func:`set_threads`.

torch starts one thread per core, which collapses on a machine other work shares
and does not pay for a small model; :mod:`ignite_mnist.runtime.threads` times a
few training steps at 1 thread and at one per core and takes more only when they
are clearly faster. The managed run picks its count with the same probe.

Example:
    >>> model = torch.nn.Linear(4, 2)
    >>> optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    >>> batch = (torch.randn(8, 4), torch.randint(0, 2, (8,)))
    >>> str(set_threads(model, optimizer, torch.nn.functional.cross_entropy, batch, threads=1))
    '1 CPU thread (--threads 1)'
    >>> torch.get_num_threads()
    1
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from ignite_mnist.runtime.threads import ThreadChoice, choose_threads_for

__all__ = ["set_threads"]


def set_threads(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    loss_fn: Callable[..., torch.Tensor],
    batch: tuple[torch.Tensor, torch.Tensor],
    threads: int | str = "auto",
) -> ThreadChoice:
    """Compute with the CPU thread count ``threads`` means for training ``model`` on batches like ``batch``.

    Args:
        model: the network the train step trains (a copy is timed: it stays as it is).
        optimizer: its optimizer (copied with the model).
        loss_fn: the loss the train step takes, ``loss_fn(outputs, targets)``.
        batch: ``(inputs, targets)`` of one training batch, as the model takes them.
        threads: ``auto`` (time a few steps at 1 thread and at one per core; ``$OMP_NUM_THREADS`` set
            counts as a choice made) or a count.

    Returns:
        The choice (``str()`` says the count and why); ``torch.set_num_threads`` has been called with it.
    """
    choice = choose_threads_for(model, optimizer, loss_fn, batch, str(threads))
    torch.set_num_threads(choice.threads)
    return choice
