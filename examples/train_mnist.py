"""The main job: find (or download) MNIST, train, validate, test.

    python examples/train_mnist.py                      # the tutorial's recipe
    python examples/train_mnist.py --model cnn --epochs 3
    python examples/train_mnist.py --help               # every flag and its default
"""

from ignite_mnist.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
