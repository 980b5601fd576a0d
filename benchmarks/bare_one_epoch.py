"""The one-epoch recipe as a bare PyTorch script, written the way the tutorial writes its plain loop.

What a person would write without ignite-mnist to train ``--recipe one-epoch``
(:data:`ignite_mnist.settings.recipes.ONE_EPOCH_RECIPE`): torchvision's ``MNIST``
with ``ToTensor`` + ``Normalize`` per sample and a shuffling ``DataLoader``
(the tutorial's way of reading MNIST), the same network as ``--model quickcnn``,
Adam with the one-cycle curve of ``--lr-schedule onecycle`` (lr / 10 up to 6e-3
over the first 20 % of the iterations, then down to lr / 1000), label smoothing
0.1, batch 128, one epoch over the same 55,000 training images (the 5,000 that
``--val-size 5000 --seed 0`` holds out are left out), then the test accuracy printed.
It imports nothing from ignite-mnist, so its wall time is a bare script's.
``benchmarks/instant.py`` times it against ``ignite-mnist --recipe one-epoch``.

Usage:
    python benchmarks/bare_one_epoch.py --data-dir /work/shared/data --threads 2
"""

import argparse
import time

import torch
from torch import nn
from torch.utils.data import DataLoader, Subset
from torchvision import datasets, transforms

LR, BATCH_SIZE, LABEL_SMOOTHING, VAL_SIZE, SEED = 6e-3, 128, 0.1, 5000, 0


def conv_stage(in_channels: int, out_channels: int) -> list[nn.Module]:
    return [nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False), nn.MaxPool2d(2),
            nn.BatchNorm2d(out_channels), nn.ReLU()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", required=True, help="the folder holding MNIST/raw/")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's, one per core)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(SEED)

    to_input = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.1307,), (0.3081,))])
    train_set = datasets.MNIST(args.data_dir, train=True, transform=to_input)
    test_set = datasets.MNIST(args.data_dir, train=False, transform=to_input)
    held_out = torch.randperm(len(train_set), generator=torch.Generator().manual_seed(SEED))
    train_loader = DataLoader(Subset(train_set, held_out[VAL_SIZE:].sort().values.tolist()),
                              batch_size=BATCH_SIZE, shuffle=True)
    test_loader = DataLoader(test_set, batch_size=1000)

    model = nn.Sequential(*conv_stage(1, 16), *conv_stage(16, 16), nn.Flatten(),
                          nn.Linear(16 * 7 * 7, 256, bias=False), nn.BatchNorm1d(256), nn.ReLU(), nn.Linear(256, 10))
    loss_fn = nn.CrossEntropyLoss(label_smoothing=LABEL_SMOOTHING)
    optimizer = torch.optim.Adam(model.parameters(), lr=LR)
    steps = len(train_loader)
    peak = int(steps * 0.2)

    def one_cycle(step: int) -> float:  # a factor of LR: 0.1 -> 1 (warm-up), then -> 0.001 at the last step
        if step <= peak:
            return 0.1 + 0.9 * step / peak
        return 1 + (0.001 - 1) * (step - peak) / (steps - 1 - peak)

    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, one_cycle)

    started = time.perf_counter()
    model.train()
    for images, labels in train_loader:
        optimizer.zero_grad()
        loss = loss_fn(model(images), labels)
        loss.backward()
        optimizer.step()
        schedule.step()
    trained = time.perf_counter() - started

    model.eval()
    correct = 0
    with torch.no_grad():
        for images, labels in test_loader:
            correct += (model(images).argmax(1) == labels).sum().item()
    print(f"test accuracy {correct / len(test_set):.2%} ({trained:.1f} s of training, "
          f"{torch.get_num_threads()} threads)")


if __name__ == "__main__":
    main()
