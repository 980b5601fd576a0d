"""Your own ``--model`` going wrong: one line naming it and what went wrong (a probe batch checks its output
before anything trains), the traceback with ``IGNITE_MNIST_TRACEBACK=1``; a module that exits is an error."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.security.conftest import QUIET, TINY, run_subprocess

NETS = '''
import torch
from torch import nn


class Nine(nn.Sequential):
    def __init__(self):
        super().__init__(nn.Flatten(), nn.Linear(784, 9))


class _Linear10(nn.Module):
    """784 -> 10, the right shape; each subclass spoils its output in one way."""

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(784, 10)


class Scalar(_Linear10):
    def forward(self, x):
        return self.linear(x.flatten(1)).sum()


class Integers(_Linear10):
    def forward(self, x):
        return self.linear(x.flatten(1)).long()


class Raises(nn.Module):
    def __init__(self):
        raise ValueError("my bug")


class BadForward(nn.Sequential):
    def __init__(self):
        super().__init__(nn.Linear(3, 10))


class Detached(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(784, 10)

    def forward(self, x):
        return torch.zeros(len(x), 10)


def not_a_module():
    return 5


NOT_CALLABLE = 5
'''
#: ``--model`` -> what its one line must say.
CASES = {
    "my_nets:Nine": "my_nets:Nine: its output is (N, 9), expected (N, 10) logits",
    "my_nets:Scalar": "my_nets:Scalar: its output is a scalar, expected (N, 10)",
    "my_nets:Integers": "my_nets:Integers: its output is torch.int64, expected floating-point logits",
    "my_nets:Raises": "my_nets:Raises raised ValueError while being built: my bug (set IGNITE_MNIST_TRACEBACK=1",
    "my_nets:BadForward": "my_nets:BadForward raised RuntimeError on a probe batch",
    "my_nets:Detached": "my_nets:Detached: its output does not depend on its parameters",
    "my_nets:not_a_module": "my_nets:not_a_module built a int, not a torch.nn.Module",
    "my_nets:NOT_CALLABLE": "my_nets:NOT_CALLABLE is a int, not a class",
    "torch.nn:Identity": "torch.nn:Identity has no parameters to train",
    "os:system": "os:system raised TypeError while being built",
    "exits:Net": "cannot import exits (SystemExit: 0)",
}


@pytest.fixture
def nets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "my_nets.py").write_text(NETS)
    (tmp_path / "exits.py").write_text("import sys\nsys.exit(0)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv("IGNITE_MNIST_TRACEBACK", raising=False)
    return tmp_path


@pytest.mark.parametrize("model", list(CASES))
def test_your_model_going_wrong_is_one_line(cli, nets: Path, idx_root: Path, model: str) -> None:
    result = cli("--model", model, "--data-dir", idx_root, "--epochs", "1", "--output-dir", nets / "runs", *TINY,
                 *QUIET)
    result.check(model)
    assert result.code == 2, result.err
    assert CASES[model] in result.err, result.err
    assert not list((nets / "runs").glob("*/checkpoints/*.pt"))  # nothing trained


def test_the_traceback_of_your_code_on_request(nets: Path, idx_root: Path) -> None:
    args = ("--model", "my_nets:Raises", "--data-dir", idx_root, "--epochs", "1", "--output-dir", nets / "runs",
            *TINY, *QUIET)
    shown = run_subprocess(*args, cwd=nets, env={"IGNITE_MNIST_TRACEBACK": "1"})
    assert shown.code == 1 and "Traceback" in shown.err and 'raise ValueError("my bug")' in shown.err
    exits = run_subprocess("--model", "exits:Net", "--data-dir", idx_root, "--output-dir", nets / "runs", *QUIET,
                           cwd=nets)
    exits.check("exits")
    assert exits.code == 2 and "cannot import exits (SystemExit: 0)" in exits.err
