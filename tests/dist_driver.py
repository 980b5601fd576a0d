"""Test-only driver: a distributed run through ``launch`` + ``training.run`` that records what each rank did.

Run as a script, ``python tests/dist_driver.py OUT_DIR <ignite-mnist train flags>``.
Spies (they call through, changing nothing) record on every rank the sample
order each training epoch used and the weights when training completed (before
the best checkpoint is loaded), and write them to ``OUT_DIR/rank<r>.pt``; the
launcher writes rank 0's summary to ``OUT_DIR/summary.pt``. Used by
``tests/test_distributed.py``: only rank 0 writes files of its own, so the other
ranks can be observed no other way.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import ignite.distributed as idist
import torch
from ignite.engine import Events

from ignite_mnist.cli import parse_train_args
from ignite_mnist.runtime.distributed import launch
from ignite_mnist.settings.config import TrainConfig
from ignite_mnist.training import managed as training
from ignite_mnist.training import parts

OUT_ENV = "DIST_DRIVER_OUT"


def spied_run(config: TrainConfig) -> training.Summary:
    """``training.run`` on this rank, with the loaders and trainer observed."""
    record: dict[str, Any] = {"orders": {}, "trained": None}
    build_loaders, create_trainer = parts.build_loaders, parts.create_trainer

    def spy_loaders(*args: Any, **kwargs: Any) -> Any:
        loaders = build_loaders(*args, **kwargs)
        epoch_order = loaders[0].epoch_order

        def recording(epoch: int) -> torch.Tensor:
            order = epoch_order(epoch)
            record["orders"][epoch] = order.clone()
            return order

        loaders[0].epoch_order = recording
        return loaders

    def spy_trainer(model: torch.nn.Module, *args: Any, **kwargs: Any) -> Any:
        trainer = create_trainer(model, *args, **kwargs)
        module = getattr(model, "module", model)  # DistributedDataParallel wraps the network

        def snapshot(_: Any) -> None:
            record["trained"] = {k: v.detach().clone() for k, v in module.state_dict().items()}

        trainer.add_event_handler(Events.COMPLETED, snapshot)
        record["wrapper"] = type(model).__name__
        return trainer

    parts.build_loaders, parts.create_trainer = spy_loaders, spy_trainer
    summary = training.run(config)
    record.update(summary=summary.to_dict(), world_size=idist.get_world_size())
    torch.save(record, Path(os.environ[OUT_ENV]) / f"rank{idist.get_rank()}.pt")
    return summary


if __name__ == "__main__":
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    os.environ[OUT_ENV] = str(out)
    result = launch(spied_run, parse_train_args(sys.argv[2:]))
    torch.save(result.to_dict(), out / "summary.pt")
