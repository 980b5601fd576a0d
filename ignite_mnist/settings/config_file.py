"""Settings files for ``--config``: YAML, TOML or JSON, read by PyYAML, ``tomllib`` and ``json``.

A file holds :class:`~ignite_mnist.settings.config.TrainConfig` settings by their field
names (``batch_size: 64``), the same names ``config.json`` uses, so a run's own
``config.json`` is a valid ``--config`` file and ``--print-config`` writes one.
The parsers are the libraries'; added here are the checks that name the place
of a mistake: the file, the line (found by the key's name, for all three
formats) and the setting, for a syntax error, an unknown key, a wrong type, or
(through :meth:`ConfigFile.error`) a value :meth:`TrainConfig.validate` refuses.

Example:
    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "run.yaml"
    >>> _ = path.write_text("model: cnn\\nepochs: 3\\nlr: 1e-3\\n")
    >>> read_config_file(path).values
    {'model': 'cnn', 'epochs': 3, 'lr': 0.001}
    >>> _ = path.write_text("model: cnn\\nepoch: 3\\n")
    >>> read_config_file(path)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ignite_mnist.errors.ConfigError: ...run.yaml:2: epoch: unknown setting (did you mean epochs?)
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ignite_mnist.errors import ConfigError, UnsafeFileError
from ignite_mnist.limits import MAX_SETTINGS_FILE_BYTES, MAX_YAML_NODES, count_nodes
from ignite_mnist.settings.config import RENAMED_SETTINGS, TrainConfig, coerce_setting
from ignite_mnist.storage.reader import read_file, size_text

__all__ = ["FORMATS", "ConfigFile", "dump_config", "read_config_file"]

#: File suffix -> format.
FORMATS = {".yaml": "YAML", ".yml": "YAML", ".toml": "TOML", ".json": "JSON"}
#: How a top-level key starts its line in each format (``{key}`` is the escaped name).
_KEY_PATTERNS = {
    "YAML": r"^[ \t]*['\"]?{key}['\"]?[ \t]*:",
    "TOML": r"^[ \t]*['\"]?{key}['\"]?[ \t]*=",
    "JSON": r"\"{key}\"\s*:",
}


@dataclass
class ConfigFile:
    """A settings file that was read: its path, format, text and checked values (by field name)."""

    path: Path
    format: str
    text: str
    values: dict[str, Any]

    def line_of(self, key: str) -> int | None:
        """The line (from 1) where ``key`` is set, when it can be found."""
        found = re.search(_KEY_PATTERNS[self.format].format(key=re.escape(key)), self.text, re.MULTILINE)
        return self.text.count("\n", 0, found.start()) + 1 if found else None

    def error(self, key: str, message: str) -> ConfigError:
        """A one-line error at ``key``: ``FILE:LINE: key: message``."""
        line = self.line_of(key)
        return ConfigError(f"{self.path}{f':{line}' if line else ''}: {key}", message)


def _parse(path: Path, kind: str, text: str) -> Any:
    """The file's contents by the format's own parser; a syntax error becomes one line with its place."""
    if kind == "YAML":
        import yaml

        try:
            contents = yaml.safe_load(text)
            count_nodes(contents, MAX_YAML_NODES)
        except ValueError as error:  # aliases that expand too far
            raise ConfigError(str(path), f"refused: it {error}") from None
        except yaml.YAMLError as error:
            mark = getattr(error, "problem_mark", None)
            where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
            raise ConfigError(where, f"not valid YAML ({getattr(error, 'problem', None) or error})") from None
        return contents
    if kind == "TOML":
        if sys.version_info >= (3, 11):
            import tomllib
        else:  # Python 3.10: its backport
            import tomli as tomllib

        try:
            return tomllib.loads(text)
        except tomllib.TOMLDecodeError as error:
            raise ConfigError(str(path), f"not valid TOML ({error})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise ConfigError(f"{path}:{error.lineno}", f"not valid JSON ({error.msg})") from None


def read_config_file(path: str | Path) -> ConfigFile:
    """Read a YAML, TOML or JSON settings file; every key must be a setting, every value of its type.

    Raises:
        ConfigError: the file cannot be read or parsed, is not a mapping, or holds an unknown
            setting or a value of the wrong type; the message names the file, the line and the key.
    """
    path = Path(path)
    kind = FORMATS.get(path.suffix.lower())
    if kind is None:
        raise ConfigError("--config", f"{path}: unknown file type; use .yaml, .yml, .toml or .json")
    try:
        text = read_file(path, MAX_SETTINGS_FILE_BYTES).decode("utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError("--config", f"cannot read {path} ({getattr(error, 'strerror', None) or error})") from None
    except UnsafeFileError as error:  # a device, a pipe, a folder, or too big
        raise ConfigError("--config", f"{path}: refused: {error.reason}; a settings file is a regular file of at "
                                      f"most {size_text(MAX_SETTINGS_FILE_BYTES)}") from None
    try:
        contents = _parse(path, kind, text)
    except RecursionError:
        raise ConfigError(str(path), f"refused: not valid {kind} (nested too deeply)") from None
    if contents is None:
        contents = {}  # an empty YAML file
    if not isinstance(contents, dict):
        raise ConfigError(str(path), f"expected settings by name (a mapping), got a {type(contents).__name__}")
    config_file = ConfigFile(path, kind, text, {})
    for key, value in contents.items():
        try:
            config_file.values[RENAMED_SETTINGS.get(str(key), str(key))] = coerce_setting(str(key), value)
        except ConfigError as error:
            raise config_file.error(str(key), error.message) from None
    return config_file


def dump_config(config: TrainConfig) -> str:
    """``config`` as YAML, every setting by name: what ``--print-config`` prints and ``--config`` reads.

    Example:
        >>> print(dump_config(TrainConfig(epochs=3, data_dir="data")).splitlines()[:3])
        ['dataset: mnist', 'data_dir: data', 'val_size: 5000']
    """
    import yaml

    return yaml.safe_dump(config.to_dict(), sort_keys=False, allow_unicode=True)
