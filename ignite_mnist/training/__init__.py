"""The managed run: ``run(config)`` as five phases, each a module of its own.

* :mod:`~ignite_mnist.training.parts`: phase 1, build the run directory, data, model, optimizer, engines;
* :mod:`~ignite_mnist.training.wiring`: phase 2, attach the public handlers the config asks for;
* :mod:`~ignite_mnist.training.resume`: which checkpoint ``--resume`` means (phase 3 restores it);
* :mod:`~ignite_mnist.training.managed`: ``run`` itself, and phase 4, training;
* :mod:`~ignite_mnist.training.report`: phase 5, the test pass, ``summary.json``, the trackers' report;
  :mod:`~ignite_mnist.training.plots` draws the run's figures.

``from ignite_mnist import run`` is the public way in; ``ignite_mnist.training.run``
(the module of 0.1) still answers, with a ``DeprecationWarning``.
"""

from typing import Any

from ignite_mnist._moved import moved_attribute

_OLD_NAMES = ("RunStage", "Summary", "restore", "run", "train")


def __getattr__(name: str) -> Any:
    return moved_attribute(__name__, "ignite_mnist.training.managed", _OLD_NAMES, name)
