"""Many runs: sweeps over settings and runs compared side by side.

* :mod:`~ignite_mnist.experiments.sweep_spec`: a W&B sweep file, checked with the training flags' own parser;
* :mod:`~ignite_mnist.experiments.sweep_storage`: the study's database (SQLite, PostgreSQL) and heartbeats;
* :mod:`~ignite_mnist.experiments.sweep`: the sweep folder and the Optuna study that runs the trials;
* :mod:`~ignite_mnist.experiments.compare`: run directories side by side.
"""
