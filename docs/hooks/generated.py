"""MkDocs hook: fill the generated parts of the docs from the code, so they cannot drift.

* ``<!-- generated: cli -->`` (in ``cli.md``) becomes the ``--help`` of every
  ``ignite-mnist`` command, straight from the argparse parsers.
* every public module (see ``reference.py``) gets a page of its own,
  ``reference/<module>.md`` holding one mkdocstrings block (``::: module``), and
  an entry in the nav under the API reference, so a new module appears without
  editing the docs; ``<!-- generated: api -->`` (in ``reference/index.md``)
  becomes the table of them.

The package's docstrings head their doctests ``Example:``; griffe's Google
parser knows only ``Examples:`` and would render the doctest lines as Markdown,
so ``example`` is registered as an alias when this hook loads.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.structure.files import File, Files

sys.path.insert(0, str(Path(__file__).parent))
from reference import page_path, page_title, public_modules  # a sibling file, not a package

CLI_MARKER = "<!-- generated: cli -->"
API_MARKER = "<!-- generated: api -->"
HELP_WIDTH = "100"
API_INDEX = "reference/index.md"


def _accept_singular_example_sections() -> None:
    try:  # griffe keeps its section titles in a private table; without it the build warns and fails loudly
        from griffe import DocstringSectionKind
        from griffe._internal.docstrings import google
    except ImportError:
        return
    google._section_kind.setdefault("example", DocstringSectionKind.examples)


_accept_singular_example_sections()


def _cli_reference() -> str:
    from ignite_mnist.cli.experiments import EXPERIMENT_PARSERS
    from ignite_mnist.cli.inference import SUBCOMMAND_PARSERS
    from ignite_mnist.cli.train import train_parser
    from ignite_mnist.settings.config import DATA_DIR_ENV

    os.environ["COLUMNS"] = HELP_WIDTH  # argparse wraps help text at the terminal width
    os.environ.pop(DATA_DIR_ENV, None)  # show the documented default, not the builder's data folder
    parsers = {"train (the default command)": train_parser, **SUBCOMMAND_PARSERS, **EXPERIMENT_PARSERS}
    sections = []
    for name, build in parsers.items():
        sections.append(f"## `{name.split(' ')[0]}`\n\n```text\n{build().format_help().rstrip()}\n```\n")
    return "\n".join(sections)


def _summary(module: str) -> str:
    """The first line of a module's docstring."""
    import importlib

    doc = importlib.import_module(module).__doc__ or ""
    return doc.strip().splitlines()[0] if doc.strip() else ""


def _api_index() -> str:
    """The reference's front page: each public module, linked, with its first docstring line."""
    rows = [f"| [`{module}`]({page_path(module).removeprefix('reference/')}) | {_summary(module)} |"
            for module in public_modules()]
    return "| module | what it is |\n| --- | --- |\n" + "\n".join(rows) + "\n"


def _module_page(module: str) -> str:
    """The module's docstring under its name as the page's title (an anchor links can point at), then its members."""
    return f"::: {module}\n    options:\n      show_root_heading: true\n      heading_level: 1\n"


def _section_holding(entries: Any, page: str) -> list[Any] | None:
    """The nav list that has ``page`` as a plain entry, searched through the nested sections."""
    if isinstance(entries, list):
        if page in entries:
            return entries
        entries = {str(index): entry for index, entry in enumerate(entries)}
    for entry in entries.values() if isinstance(entries, dict) else ():
        found = _section_holding(entry, page)
        if found is not None:
            return found
    return None


def on_config(config: MkDocsConfig, **_: Any) -> MkDocsConfig:
    """Give every public module a nav entry after the API reference's index page."""
    section = _section_holding(config.nav, API_INDEX)
    if section is not None:
        section.extend({page_title(module): page_path(module)} for module in public_modules())
    return config


def on_files(files: Files, config: MkDocsConfig, **_: Any) -> Files:
    """Add one generated page per public module."""
    for module in public_modules():
        files.append(File.generated(config, page_path(module), content=_module_page(module)))
    return files


def on_page_markdown(markdown: str, **_: Any) -> str:
    """Replace the markers with the generated Markdown."""
    if CLI_MARKER in markdown:
        markdown = markdown.replace(CLI_MARKER, _cli_reference())
    if API_MARKER in markdown:
        markdown = markdown.replace(API_MARKER, _api_index())
    return markdown
