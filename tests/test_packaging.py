"""The package's house rules: one version, the licence, the minimum Python said alike, every data file shipped.

Building and installing the wheel is .ci/wheel_check.sh's job (a fresh virtualenv, minutes); these
are the checks that hold in the source tree, in seconds.
"""

from __future__ import annotations

import configparser
import re
import subprocess
import sys
from importlib import metadata

import pytest

import ignite_mnist
from tests.conftest import REPO, run_cli

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10: the backport (setup.cfg installs it there)
    import tomli as tomllib


@pytest.fixture(scope="module")
def setup_cfg() -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(REPO / "setup.cfg")
    return parser


@pytest.fixture(scope="module")
def pyproject() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text())


def test_version_is_one_and_said_alike_by_metadata_cli_and_changelog(setup_cfg) -> None:
    version = ignite_mnist.__version__
    assert re.fullmatch(r"\d+\.\d+\.\d+", version)
    assert setup_cfg["metadata"]["version"] == "attr: ignite_mnist._version.__version__"
    assert metadata.version("ignite-mnist") == version, (
        "the installed metadata is older than ignite_mnist/_version.py: reinstall (pip install -e . --no-deps)")
    result = run_cli("--version")
    assert (result.returncode, result.stdout, result.stderr) == (0, f"ignite-mnist {version}\n", "")
    assert f"## [{version}]" in (REPO / "CHANGELOG.md").read_text()


def test_version_answers_without_importing_torch() -> None:
    code = "import sys\nfrom ignite_mnist.cli import main\nmain(['--version'])\nprint('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert result.stdout.splitlines() == [f"ignite-mnist {ignite_mnist.__version__}", "False"], result.stderr


def test_the_minimum_python_is_the_same_for_pip_ruff_mypy_and_the_classifiers(setup_cfg, pyproject) -> None:
    (minor,) = re.fullmatch(r">=3\.(\d+)", setup_cfg["options"]["python_requires"]).groups()
    assert pyproject["tool"]["ruff"]["target-version"] == f"py3{minor}"
    assert pyproject["tool"]["mypy"]["python_version"] == f"3.{minor}"
    said = re.findall(r"Programming Language :: Python :: 3\.(\d+)", setup_cfg["metadata"]["classifiers"])
    assert min(map(int, said)) == int(minor)


def test_the_licence_file_is_the_declared_licence(setup_cfg) -> None:
    assert setup_cfg["metadata"]["license_expression"] == "BSD-3-Clause"
    assert setup_cfg["metadata"]["license_files"] == "LICENSE"
    assert (REPO / "LICENSE").read_text().startswith("BSD 3-Clause License\n\nCopyright (c) ")


def test_every_file_of_the_package_that_is_not_python_is_package_data(setup_cfg) -> None:
    shipped = {
        f"{package.replace('.', '/')}/{name.strip()}"
        for package, names in setup_cfg["options.package_data"].items() for name in names.split(",")
    }
    package = REPO / "ignite_mnist"
    data = {
        path.relative_to(REPO).as_posix() for path in package.rglob("*")
        if path.is_file() and path.suffix not in (".py", ".pyc") and "__pycache__" not in path.parts
    }
    assert "ignite_mnist/py.typed" in data
    assert data == shipped
