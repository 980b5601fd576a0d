"""What ignite-mnist keeps on disk and how it is read back.

* :mod:`~ignite_mnist.storage.run_dir`: the run directory's layout, lock and the metrics log;
* :mod:`~ignite_mnist.storage.reader`: the one reader of files ignite-mnist did not write (regular, inside
  their folder, within :mod:`~ignite_mnist.limits`);
* :mod:`~ignite_mnist.storage.files`: the one writer: files written whole or not at all, never through a link;
  rows, locks, and the run's own names checked before anything is written;
* :mod:`~ignite_mnist.storage.checkpoint_files`: checkpoint file names, the newest and the best of a folder;
* :mod:`~ignite_mnist.storage.checkpoints`: reading checkpoints safely and restoring objects from them.
"""
