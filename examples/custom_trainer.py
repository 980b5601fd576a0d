"""A hand-written Ignite trainer with ignite-mnist's handlers: the walk-through of docs/handlers.md.

The model, optimizer and train step are the user's own. From ignite-mnist come
validation, early stopping, loss averages, a metrics log, the run record,
checkpoints with exact resume, Ctrl-C/SIGTERM handling, progress and tracking
(W&B, TensorBoard or MLflow), all from ``ignite_mnist.handlers``. No ``to_save``
is written by hand: each handler saves itself, and the checkpoint names only
the model and the optimizer. Run it again with the same --output-dir and it continues exactly
where it stopped; interrupt it and it exits 130 (Ctrl-C) or 143 (SIGTERM).

    python examples/custom_trainer.py --data-dir ../shared/data --epochs 3
"""

# --8<-- [start:imports]
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from ignite.engine import Engine, Events, create_supervised_evaluator
from ignite.metrics import Accuracy, Loss
from torch import nn

from ignite_mnist.data import DatasetInfo, TensorLoader, load_splits
from ignite_mnist.handlers import (
    Interrupted,
    attach_checkpointing,
    attach_early_stopping,
    attach_loss_averages,
    attach_metrics_log,
    attach_nan_stop,
    attach_progress,
    attach_run_record,
    attach_signal_checkpoint,
    attach_tracker,
    attach_validation,
    evaluate_best,
    resume_training,
    set_threads,
)

# --8<-- [end:imports]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default="./data")
    parser.add_argument("--dataset", default="mnist", help="mnist, fashion-mnist or folder:PATH")
    parser.add_argument("--output-dir", default="runs/custom")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--val-size", type=int, default=1000)
    parser.add_argument("--patience", type=int, default=2)
    parser.add_argument("--checkpoint-every", type=int, default=None, help="also checkpoint every N iterations")
    parser.add_argument("--progress", default="auto", choices=("auto", "bar", "log", "none"))
    parser.add_argument("--tracker", default="wandb", choices=("wandb", "tensorboard", "mlflow"))
    parser.add_argument("--wandb-mode", default="disabled", choices=("auto", "online", "offline", "disabled"))
    return parser.parse_args(argv)


# --8<-- [start:model]
class Net(nn.Sequential):
    """The user's own network (importable, so `ignite-mnist evaluate --model custom_trainer:Net` rebuilds it)."""

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__(nn.Flatten(), nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, num_classes))
# --8<-- [end:model]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    output = Path(args.output_dir)
    output.mkdir(parents=True, exist_ok=True)

    # --8<-- [start:data]
    splits = load_splits(args.data_dir, args.dataset, val_size=args.val_size, seed=0)
    mean, std = splits.spec.mean, splits.spec.std
    train_loader = TensorLoader(*splits.train, args.batch_size, mean=mean, std=std, shuffle=True, seed=0)
    val_loader = TensorLoader(*splits.val, 1000, mean=mean, std=std)
    test_loader = TensorLoader(*splits.test, 1000, mean=mean, std=std)
    # --8<-- [end:data]

    # --8<-- [start:engines]
    torch.manual_seed(0)
    model = Net(len(splits.spec.classes))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)

    def update(engine: Engine, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        model.train()
        images, labels = batch
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(model(images), labels)
        loss.backward()
        optimizer.step()
        return loss.detach()

    trainer = Engine(update)
    metrics = {"accuracy": Accuracy(), "loss": Loss(nn.functional.cross_entropy)}
    evaluator = create_supervised_evaluator(model, metrics=metrics)
    # --8<-- [end:engines]

    # --8<-- [start:handlers]
    save_every = Events.EPOCH_COMPLETED
    if args.checkpoint_every:
        save_every |= Events.ITERATION_COMPLETED(every=args.checkpoint_every)
    attach_loss_averages(trainer)  # trainer.state.metrics["loss"] and ["train_loss"]
    nan_stop = attach_nan_stop(trainer)
    attach_validation(trainer, evaluator, val_loader, metrics=metrics)  # -> state.metrics["val_*"]
    attach_run_record(trainer)  # best values and training time, across resumes
    attach_early_stopping(trainer, patience=args.patience, monitor="val_accuracy")
    attach_metrics_log(trainer, output / "metrics.jsonl", optimizer)
    options = {"mode": args.wandb_mode} if args.tracker == "wandb" else {}
    tracker = attach_tracker(trainer, args.tracker, output, evaluators={"val": evaluator}, optimizer=optimizer,
                             model=model, config=vars(args), **options)
    checkpoints = attach_checkpointing(trainer, output / "checkpoints", {"model": model, "optimizer": optimizer},
                                       event=save_every, monitor="val_accuracy")
    attach_progress(trainer, {"validation": evaluator}, mode=args.progress, metric_names=["loss"])
    attach_signal_checkpoint(trainer, checkpoints)
    # --8<-- [end:handlers]

    # --8<-- [start:resume]
    resumed = resume_training(output, trainer, max_epochs=args.epochs, data=train_loader)  # all the state above
    print(resumed or f"starting afresh in {output}")
    if resumed is not None and resumed.finished:  # run again after it finished: nothing to do, no file changes
        return 0
    # --8<-- [end:resume]

    # --8<-- [start:run]
    probe_batch = train_loader.images[:64], train_loader.labels[:64]
    print(set_threads(model, optimizer, nn.functional.cross_entropy, probe_batch))  # as --threads auto picks
    try:
        trainer.run(train_loader, max_epochs=args.epochs)
    except Interrupted as interrupt:  # a checkpoint was saved and the tracker closed its run as "interrupted"
        print(f"{interrupt}; run the same command again to continue", file=sys.stderr)
        return interrupt.exit_code
    if nan_stop.tripped:
        tracker.finish("failed", 1)
        print(f"the loss became {nan_stop.value} at iteration {nan_stop.iteration}", file=sys.stderr)
        return 1
    # --8<-- [end:run]

    # --8<-- [start:test]
    best, evaluation = evaluate_best(model, checkpoints, test_loader, DatasetInfo.of(splits.spec), [tracker])
    print(f"test accuracy {evaluation.accuracy * 100:.2f} % with {best}")
    return 0
    # --8<-- [end:test]


if __name__ == "__main__":
    raise SystemExit(main())
