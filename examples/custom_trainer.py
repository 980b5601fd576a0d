"""A hand-written Ignite trainer that borrows ignite-mnist's handlers.

The update function, model and optimizer are the user's own; validation, early
stopping, checkpointing with exact resume, SIGINT/SIGTERM handling and progress
come from ``ignite_mnist.handlers``. Run it twice with the same ``--output-dir``
and the second run continues from the first one's newest checkpoint.

    python examples/custom_trainer.py --data-dir ../shared/data --epochs 3
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from ignite.engine import Engine, Events, create_supervised_evaluator
from ignite.metrics import Accuracy, Loss
from torch import nn

from ignite_mnist.checkpoints import RNGStates, find_latest_checkpoint, restore_objects
from ignite_mnist.data import TensorLoader, load_splits
from ignite_mnist.handlers import (
    attach_checkpointing,
    attach_early_stopping,
    attach_progress,
    attach_signal_checkpoint,
    attach_validation,
)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default="./data")
    parser.add_argument("--output-dir", default="runs/custom")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--patience", type=int, default=2)
    parser.add_argument("--progress", default="auto", choices=("auto", "bar", "log", "none"))
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    torch.manual_seed(0)
    splits = load_splits(args.data_dir, "mnist", val_size=1000, seed=0)
    mean, std = splits.spec.mean, splits.spec.std
    train_loader = TensorLoader(*splits.train, 64, mean=mean, std=std, shuffle=True, seed=0)
    val_loader = TensorLoader(*splits.val, 1000, mean=mean, std=std)

    # The user's own model, optimizer and update function.
    model = nn.Sequential(nn.Flatten(), nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 10))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)

    def update(engine: Engine, batch: tuple[torch.Tensor, torch.Tensor]) -> float:
        model.train()
        images, labels = batch
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(model(images), labels)
        loss.backward()
        optimizer.step()
        return loss.item()

    trainer = Engine(update)
    evaluator = create_supervised_evaluator(
        model, metrics={"accuracy": Accuracy(), "loss": Loss(nn.functional.cross_entropy)}
    )

    # ignite-mnist's handlers on those engines.
    validation = attach_validation(trainer, evaluator, val_loader)
    stopper = attach_early_stopping(trainer, validation, patience=args.patience, monitor="val_accuracy")
    to_save = {
        "model": model, "optimizer": optimizer, "trainer": trainer, "rng": RNGStates(),
        "train_loader": train_loader, "early_stopping": stopper,
    }
    checkpoint_dir = Path(args.output_dir) / "checkpoints"
    checkpoints = attach_checkpointing(trainer, to_save, checkpoint_dir, evaluator=evaluator, score_name="accuracy")
    attach_progress(trainer, {"validation": evaluator}, mode=args.progress)
    attach_signal_checkpoint(trainer, checkpoints.save_now)

    latest = find_latest_checkpoint(checkpoint_dir)
    if latest is not None:
        restore_objects(torch.load(latest, weights_only=True), to_save | checkpoints.resumable())
        print(f"resumed from {latest}")

    @trainer.on(Events.COMPLETED)
    def report(engine: Engine) -> None:
        print(f"best checkpoint {checkpoints.best_path}; val accuracy {engine.state.metrics['val_accuracy']:.4f}")

    trainer.run(train_loader, max_epochs=args.epochs)


if __name__ == "__main__":
    main()
