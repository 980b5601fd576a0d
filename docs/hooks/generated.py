"""MkDocs hook: fill the generated parts of the docs from the code, so they cannot drift.

* ``<!-- generated: cli -->`` (in ``cli.md``) becomes the ``--help`` of every
  ``ignite-mnist`` command, straight from the argparse parsers.
* ``<!-- generated: api -->`` (in ``api.md``) becomes one mkdocstrings block
  (``::: module``) per public module of the package, so a new module appears
  in the API reference without editing the docs.

The package's docstrings head their doctests ``Example:``; griffe's Google
parser knows only ``Examples:`` and would render the doctest lines as Markdown,
so ``example`` is registered as an alias when this hook loads.
"""

from __future__ import annotations

import os
import pkgutil
from typing import Any

CLI_MARKER = "<!-- generated: cli -->"
API_MARKER = "<!-- generated: api -->"
HELP_WIDTH = "100"


def _accept_singular_example_sections() -> None:
    try:  # griffe keeps its section titles in a private table; without it the build warns and fails loudly
        from griffe import DocstringSectionKind
        from griffe._internal.docstrings import google
    except ImportError:
        return
    google._section_kind.setdefault("example", DocstringSectionKind.examples)


_accept_singular_example_sections()


def _cli_reference() -> str:
    from ignite_mnist.cli import build_train_parser
    from ignite_mnist.config import DATA_DIR_ENV
    from ignite_mnist.cli.experiments import EXPERIMENT_PARSERS
    from ignite_mnist.cli.inference import SUBCOMMAND_PARSERS

    os.environ["COLUMNS"] = HELP_WIDTH  # argparse wraps help text at the terminal width
    os.environ.pop(DATA_DIR_ENV, None)  # show the documented default, not the builder's data folder
    parsers = {"train (the default command)": build_train_parser, **SUBCOMMAND_PARSERS, **EXPERIMENT_PARSERS}
    sections = []
    for name, build in parsers.items():
        sections.append(f"## `{name.split(' ')[0]}`\n\n```text\n{build().format_help().rstrip()}\n```\n")
    return "\n".join(sections)


def _api_reference() -> str:
    import ignite_mnist

    names = ["ignite_mnist"] + sorted(
        module.name for module in pkgutil.walk_packages(ignite_mnist.__path__, "ignite_mnist.")
        if not any(part.startswith("_") for part in module.name.split("."))
    )
    return "\n".join(f"## `{name}`\n\n::: {name}\n" for name in names)


def on_page_markdown(markdown: str, **_: Any) -> str:
    """Replace the markers with the generated Markdown."""
    if CLI_MARKER in markdown:
        markdown = markdown.replace(CLI_MARKER, _cli_reference())
    if API_MARKER in markdown:
        markdown = markdown.replace(API_MARKER, _api_reference())
    return markdown
