"""Every flag's bad values end in a usage error (exit 2) naming the flag, derived from ``TrainConfig``'s fields.

A new setting with a ``check``, ``choices`` or a numeric type is covered here without editing this file.
"""

from __future__ import annotations

import pytest

from ignite_mnist.settings.config import flag_name, setting_fields, setting_type
from tests.faults.conftest import assert_one_line_error

FIELDS = tuple(setting_fields().values())
INT_CANDIDATES = (0, -1, -7, 2**32)
FLOAT_CANDIDATES = (0.0, -1e-3, -1.0, 1.0, 1.5)


def out_of_range() -> list[tuple[str, str]]:
    """(flag, value) for every value of the candidates that a field's declared check rejects."""
    cases = []
    for f in FIELDS:
        check = f.metadata.get("check")
        if check is None:
            continue
        candidates = INT_CANDIDATES if setting_type(f) is int else FLOAT_CANDIDATES
        rejected = [value for value in candidates if not check[0](value)]
        assert rejected, f"no out-of-range candidate for {f.name}: add one to this test"
        cases += [(flag_name(f.name), str(value)) for value in rejected]
    return cases


def float_flags() -> list[str]:
    return [flag_name(f.name) for f in FIELDS if setting_type(f) is float]


def numeric_flags() -> list[str]:
    return [flag_name(f.name) for f in FIELDS if setting_type(f) in (int, float)]


def choice_flags() -> list[str]:
    return [flag_name(f.name) for f in FIELDS if f.metadata.get("choices")]


@pytest.mark.parametrize(("flag", "value"), out_of_range())
def test_out_of_range(cli, flag: str, value: str) -> None:
    assert_one_line_error(cli(flag, value), 2, f"{flag}: ", f"got {value}", "(see --help)")


@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
@pytest.mark.parametrize("flag", float_flags())
def test_non_finite_numbers(cli, flag: str, value: str) -> None:
    assert_one_line_error(cli(flag, value), 2, f"{flag}: ")


@pytest.mark.parametrize("flag", numeric_flags())
def test_not_a_number(cli, flag: str) -> None:
    assert_one_line_error(cli(flag, "ten"), 2, f"argument {flag}: invalid", "'ten'")


@pytest.mark.parametrize("flag", choice_flags())
def test_unknown_choice(cli, flag: str) -> None:
    # argparse refuses a closed choice; TrainConfig.validate an open one (--model, --dataset also take paths)
    assert_one_line_error(cli(flag, "bogus"), 2, f"{flag}: invalid choice", "'bogus'")


@pytest.mark.parametrize(
    ("args", "flag"),
    [
        (("--overwrite", "--resume", "auto"), "--overwrite"),
        (("--momentum", "0.9"), "--momentum"),  # the default optimizer is adam
        (("--optimizer", "adamw", "--momentum", "0.5"), "--momentum"),
        (("--min-delta", "0.01"), "--min-delta"),  # without --patience nothing uses it
        (("--run-name", "a/b"), "--run-name"),
        (("--run-name", ".."), "--run-name"),
        (("--seed", str(2**32)), "--seed"),
    ],
)
def test_conflicting_or_unusable_combinations(cli, args: tuple[str, ...], flag: str) -> None:
    assert_one_line_error(cli(*args), 2, f"{flag}: ")


def test_unknown_flag(cli) -> None:
    assert_one_line_error(cli("--learning-rate", "0.1"), 2, "unrecognized arguments: --learning-rate")

