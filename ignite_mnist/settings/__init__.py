"""Every setting of a run and where it comes from: defaults, recipes, ``--config`` files, flags.

* :mod:`~ignite_mnist.settings.config`: :class:`~ignite_mnist.settings.config.TrainConfig`, each setting's
  default, type, range and help; the settings a tracker brings are its own (``tracking/*_settings``);
* :mod:`~ignite_mnist.settings.recipes`: named sets of settings (``--recipe``);
* :mod:`~ignite_mnist.settings.config_file`: YAML, TOML and JSON files read into settings, each mistake located;
* :mod:`~ignite_mnist.settings.config_args` and :mod:`~ignite_mnist.settings.arguments`: the training flags
  parsed into a validated ``TrainConfig`` (the command line and sweeps both use it).

Torch-free, so ``--help`` and usage errors answer at once.
"""
