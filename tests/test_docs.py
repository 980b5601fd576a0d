"""The docs site builds with ``mkdocs build --strict``: no warnings, no broken links or anchors."""

from __future__ import annotations

import html
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # the strict docs build

REPO = Path(__file__).resolve().parents[1]

pytest.importorskip("mkdocs", reason="the docs extra is not installed (pip install -e '.[docs]')")
pytest.importorskip("mkdocstrings", reason="the docs extra is not installed (pip install -e '.[docs]')")


def build(config_dir: Path, site: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=config_dir, capture_output=True, text=True, timeout=300,
    )


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The docs site, built once for this module's tests (``--strict``: any warning fails it)."""
    site = tmp_path_factory.mktemp("docs") / "site"
    result = build(REPO, site)
    assert result.returncode == 0, result.stderr[-3000:]
    return site


def test_cli_reference_is_every_commands_help(site: Path) -> None:
    cli = (site / "cli" / "index.html").read_text()
    # the generated --help of every command
    for command in ("predict", "evaluate", "export", "demo", "sweep", "compare"):
        assert f"usage: ignite-mnist {command} [-h]" in cli
    assert "--epochs EPOCHS" in cli
    flat = " ".join(html.unescape(re.sub(r"<[^>]+>", "", cli)).split())  # the text, without the highlighting
    assert "(default: $IGNITE_MNIST_DATA_DIR or ./data)" in flat and "(default: ./data)" not in flat  # said once


def test_one_reference_page_per_public_module(site: Path) -> None:
    pages = {path.parent.name for path in (site / "reference").glob("*/index.html")}
    assert {"ignite_mnist", "ignite_mnist.handlers", "ignite_mnist.inference.trained",
            "ignite_mnist.tracking.mlflow"} <= pages
    assert not {page for page in pages if page.startswith(("ignite_mnist.cli", "ignite_mnist.handlers."))}
    assert not pages & {"ignite_mnist.training.wiring", "ignite_mnist.training.parts", "ignite_mnist.console",
                        "ignite_mnist.storage.files"}
    inference = (site / "reference" / "ignite_mnist.inference.trained" / "index.html").read_text()
    assert 'id="ignite_mnist.inference.trained.load_model"' in inference  # a docstring rendered by mkdocstrings
    index = (site / "reference" / "index.html").read_text()
    assert all(f"ignite_mnist.{name}/" in index for name in ("handlers", "inference.export", "training.managed"))


def test_sphinx_roles_render_as_links_or_code(site: Path) -> None:
    html = "\n".join(path.read_text() for path in (site / "reference").glob("*/index.html"))
    assert not re.search(r":(func|class|meth|attr|mod|data|exc):`", html)  # none printed literally
    handlers = (site / "reference" / "ignite_mnist.handlers" / "index.html").read_text()
    # ":mod:`ignite_mnist.training.managed`" in the handlers' docstring is a link to that module's page
    assert re.search(r'<a [^>]*href="../ignite_mnist.training.managed/[^"]*"[^>]*>', handlers)


def test_code_is_highlighted_and_the_nav_is_four_tabs(site: Path) -> None:
    home = (site / "index.html").read_text()
    assert '<div class="highlight">' in home and '<span class="' in home  # Pygments spans inside code blocks
    tabs = re.findall(r'<li class="md-tabs__item[^"]*">\s*<a [^>]*>\s*([^<]+?)\s*</a>', home)
    assert tabs == ["Guides", "Tracking", "Reference", "Project"]


def test_a_broken_link_fails_the_build(tmp_path: Path) -> None:
    shutil.copy(REPO / "mkdocs.yml", tmp_path / "mkdocs.yml")
    shutil.copytree(REPO / "docs", tmp_path / "docs")
    with open(tmp_path / "docs" / "index.md", "a", encoding="utf-8") as index:
        index.write("\nSee [the missing page](no-such-page.md).\n")
    result = build(tmp_path, tmp_path / "site")
    assert result.returncode != 0
    assert "no-such-page.md" in result.stderr


def test_long_code_lines_scroll_instead_of_being_clipped(site: Path) -> None:
    css = (site / "stylesheets" / "extra.css").read_text()
    assert re.search(r"\.md-typeset pre > code \{[^}]*overflow-x: auto", css)
    assert re.search(r"\.md-typeset \.admonition,\s*\.md-typeset details \{[^}]*overflow: visible", css)
    for page in (site / "index.html", site / "troubleshooting" / "index.html"):
        assert 'stylesheets/extra.css"' in page.read_text()  # linked from every page
