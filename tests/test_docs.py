"""The docs site builds with ``mkdocs build --strict``: no warnings, no broken links or anchors."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

pytest.importorskip("mkdocs", reason="the docs extra is not installed (pip install -e '.[docs]')")
pytest.importorskip("mkdocstrings", reason="the docs extra is not installed (pip install -e '.[docs]')")


def build(config_dir: Path, site: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=config_dir, capture_output=True, text=True, timeout=300,
    )


def test_docs_build_strict(tmp_path: Path) -> None:
    result = build(REPO, tmp_path / "site")
    assert result.returncode == 0, result.stderr[-3000:]
    cli = (tmp_path / "site" / "cli" / "index.html").read_text()
    for command in ("predict", "evaluate", "export", "sweep", "compare"):  # the generated --help of every command
        assert f"usage: ignite-mnist {command} [-h]" in cli
    assert "--epochs EPOCHS" in cli
    flat = " ".join(cli.split())
    assert "(default: $IGNITE_MNIST_DATA_DIR or ./data)" in flat and "(default: ./data)" not in flat  # said once
    api = (tmp_path / "site" / "api" / "index.html").read_text()
    assert 'id="ignite_mnist.inference.load_model"' in api  # a docstring rendered by mkdocstrings


def test_a_broken_link_fails_the_build(tmp_path: Path) -> None:
    shutil.copy(REPO / "mkdocs.yml", tmp_path / "mkdocs.yml")
    shutil.copytree(REPO / "docs", tmp_path / "docs")
    (tmp_path / "docs" / "api.md").write_text("# API reference\n")  # skip the slow API rendering here
    with open(tmp_path / "docs" / "index.md", "a", encoding="utf-8") as index:
        index.write("\nSee [the missing page](no-such-page.md).\n")
    result = build(tmp_path, tmp_path / "site")
    assert result.returncode != 0
    assert "no-such-page.md" in result.stderr
