"""The version of ignite-mnist: the one place it is written.

``ignite_mnist.__version__``, ``ignite-mnist --version``, the installed package's
metadata (``setup.cfg`` reads it: ``version = attr: ignite_mnist._version.__version__``)
and the metadata stored in exported models all come from here. Nothing is imported,
so setuptools reads it without importing the package, and ``--version`` answers at once.
"""

__all__ = ["__version__"]

__version__ = "0.2.0"
