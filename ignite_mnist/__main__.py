"""``python -m ignite_mnist``: the same CLI as ``ignite-mnist``."""

from ignite_mnist.cli import main

raise SystemExit(main())
