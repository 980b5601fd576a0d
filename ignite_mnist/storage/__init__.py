"""What ignite-mnist keeps on disk and how it is read back.

* :mod:`~ignite_mnist.storage.run_dir`: the run directory's layout, lock and the metrics log;
* :mod:`~ignite_mnist.storage.files`: files written whole or not at all;
* :mod:`~ignite_mnist.storage.checkpoint_files`: checkpoint file names, the newest and the best of a folder;
* :mod:`~ignite_mnist.storage.checkpoints`: reading checkpoints safely and restoring objects from them.
"""
