"""A trainer written the way Ignite's own MNIST example is, plus ignite-mnist in a dozen lines.

Everything above the marked block is plain Ignite: ``create_supervised_trainer``,
``create_supervised_evaluator`` and ``@trainer.on`` logging. The block adds this
project's best checkpoints, early stopping, exact resume, Ctrl-C handling, loss averages,
the CPU thread count and TensorBoard. Run it again with the same --output-dir and it continues exactly where
it stopped; Ctrl-C saves a checkpoint and exits 130.

    python examples/ignite_style_trainer.py --data-dir ../shared/data --epochs 3
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
import torch.nn.functional as F
from ignite.engine import Events, create_supervised_evaluator, create_supervised_trainer
from ignite.metrics import Accuracy, Loss
from torch import nn

from ignite_mnist.data import TensorLoader, load_splits
from ignite_mnist.handlers import (
    Interrupted,
    attach_checkpointing,
    attach_early_stopping,
    attach_loss_averages,
    attach_metrics_log,
    attach_signal_checkpoint,
    attach_tracker,
    attach_validation,
    resume_training,
    set_threads,
)


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 10, kernel_size=5)
        self.conv2 = nn.Conv2d(10, 20, kernel_size=5)
        self.fc1 = nn.Linear(320, 50)
        self.fc2 = nn.Linear(50, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(F.max_pool2d(self.conv1(x), 2))
        x = F.relu(F.max_pool2d(self.conv2(x), 2))
        x = F.relu(self.fc1(x.view(-1, 320)))
        return F.log_softmax(self.fc2(x), dim=-1)


def run(args: argparse.Namespace) -> int:
    splits = load_splits(args.data_dir, "mnist", val_size=args.val_size, seed=0)
    mean, std = splits.spec.mean, splits.spec.std
    train_loader = TensorLoader(*splits.train, args.batch_size, mean=mean, std=std, shuffle=True, seed=0)
    val_loader = TensorLoader(*splits.val, 1000, mean=mean, std=std)

    torch.manual_seed(0)
    model = Net()
    optimizer = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=args.momentum)
    trainer = create_supervised_trainer(model, optimizer, F.nll_loss)
    metrics = {"accuracy": Accuracy(), "nll": Loss(F.nll_loss)}
    evaluator = create_supervised_evaluator(model, metrics=metrics)

    @trainer.on(Events.ITERATION_COMPLETED(every=args.log_interval))
    def log_training_loss(engine):
        print(f"Epoch[{engine.state.epoch}] Iteration[{engine.state.iteration}] Loss: {engine.state.output:.2f}")

    @evaluator.on(Events.COMPLETED)  # the evaluator is run by attach_validation below
    def log_validation_results(engine):
        metrics = engine.state.metrics
        print(f"Validation Results - Epoch: {trainer.state.epoch}  Avg accuracy: {metrics['accuracy']:.2f} "
              f"Avg loss: {metrics['nll']:.2f}")

    # --8<-- [start:ignite_mnist]
    output = Path(args.output_dir)
    save_every = Events.EPOCH_COMPLETED | Events.ITERATION_COMPLETED(every=args.checkpoint_every)
    attach_loss_averages(trainer)  # train_loss in the metrics log (the trainer's output is loss.item())
    attach_validation(trainer, evaluator, val_loader, metrics=metrics)  # -> val_accuracy (max), val_nll (min)
    attach_early_stopping(trainer, patience=args.patience, monitor=args.monitor)
    attach_metrics_log(trainer, output / "metrics.jsonl", optimizer)
    attach_tracker(trainer, "tensorboard", output, evaluators={"val": evaluator}, optimizer=optimizer)
    checkpoints = attach_checkpointing(trainer, output / "checkpoints", {"model": model, "optimizer": optimizer},
                                       event=save_every, monitor=args.monitor)
    attach_signal_checkpoint(trainer, checkpoints)
    resumed = resume_training(output, trainer, max_epochs=args.epochs, data=train_loader)
    print(resumed or f"starting afresh in {output}")
    if resumed is not None and resumed.finished:
        return 0
    print(set_threads(model, optimizer, F.nll_loss, (train_loader.images[:64], train_loader.labels[:64])))
    try:
        trainer.run(train_loader, max_epochs=args.epochs)
    except Interrupted as interrupt:  # Ctrl-C/SIGTERM: a checkpoint was saved; run again to continue
        return interrupt.exit_code
    # --8<-- [end:ignite_mnist]
    print(f"best checkpoint: {checkpoints.best_path}")
    return 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default="./data")
    parser.add_argument("--output-dir", default="runs/ignite-style")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--val-size", type=int, default=1000)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--momentum", type=float, default=0.5)
    parser.add_argument("--log-interval", type=int, default=100)
    parser.add_argument("--patience", type=int, default=3)
    parser.add_argument("--checkpoint-every", type=int, default=500, help="also checkpoint every N iterations")
    parser.add_argument("--monitor", default="val_accuracy", choices=("val_accuracy", "val_nll"),
                        help="the validation metric that picks the best checkpoints and stops early")
    return parser.parse_args(argv)


if __name__ == "__main__":
    raise SystemExit(run(parse_args()))
