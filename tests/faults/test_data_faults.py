"""Bad dataset files end in one line naming the file and the problem (exit 1), before any run dir exists."""

from __future__ import annotations

import gzip
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.faults.conftest import QUIET, TINY, assert_one_line_error

RAW = Path("MNIST") / "raw"


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:-100])


def wrong_magic(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[2:4] = b"\x08\x01"  # an unsigned-byte, 1-d magic (a labels file) in an images file
    path.write_bytes(bytes(data))


def empty(path: Path) -> None:
    path.write_bytes(b"")


def fewer_labels(path: Path) -> None:
    data = path.read_bytes()
    count = int.from_bytes(data[4:8], "big") - 1
    path.write_bytes(data[:4] + count.to_bytes(4, "big") + data[8:-1])


def label_eleven(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[8 + 7] = 11
    path.write_bytes(bytes(data))


def only_a_header(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:6])


CASES = [
    ("train-images-idx3-ubyte", truncate, "truncated IDX file"),
    ("t10k-images-idx3-ubyte", wrong_magic, "wrong magic number 0x00000801 (expected 0x00000803)"),
    ("train-labels-idx1-ubyte", empty, "file is empty"),
    ("train-labels-idx1-ubyte", fewer_labels, "1199 labels but train-images-idx3-ubyte holds 1200 images"),
    ("t10k-labels-idx1-ubyte", label_eleven, "label 11 at index 7 is outside 0-9"),
    ("train-images-idx3-ubyte", only_a_header, "truncated IDX header"),
]


@pytest.mark.parametrize(("name", "damage", "problem"), CASES, ids=[c[1].__name__ for c in CASES])
def test_damaged_idx_file_is_named_in_one_line(
    cli, fresh_idx_root: Path, tmp_path: Path, name: str, damage: Callable[[Path], None], problem: str
) -> None:
    path = fresh_idx_root / RAW / name
    damage(path)
    result = cli("--data-dir", fresh_idx_root, "--output-dir", tmp_path / "runs", *TINY, *QUIET)
    assert_one_line_error(result, 1, f"{path}: ", problem)
    assert not (tmp_path / "runs").exists()


def test_corrupt_gzip_is_named_in_one_line(cli, fresh_idx_root: Path, tmp_path: Path) -> None:
    raw = fresh_idx_root / RAW
    (raw / "t10k-labels-idx1-ubyte").unlink()
    packed = raw / "t10k-labels-idx1-ubyte.gz"
    packed.write_bytes(gzip.compress(b"\x00\x00\x08\x01" + bytes(300))[:-12])  # cut inside the stream
    result = cli("--data-dir", fresh_idx_root, "--output-dir", tmp_path / "runs", *TINY, *QUIET)
    assert_one_line_error(result, 1, f"{packed}: cannot unpack", "replace the file")
    assert not (raw / "t10k-labels-idx1-ubyte").exists()  # no half-unpacked file is left to trip the next run


def test_missing_data_offline_fails_at_once_with_what_to_do(cli, tmp_path: Path) -> None:
    """There is no route to the dataset mirrors here: torchvision's download fails and the message says why.

    Measured in docs/troubleshooting.md: the failed download costs well under a second here;
    each attempt is bounded by a 15 s socket timeout where packets are silently dropped.
    """
    root = tmp_path / "nowhere"
    result = cli("--data-dir", root, "--output-dir", tmp_path / "runs", *TINY, *QUIET)
    line = assert_one_line_error(result, 1, f"files missing in {root / RAW}", "the download failed", "--data-dir")
    assert "train-images-idx3-ubyte" in line and "IGNITE_MNIST_DATA_DIR" in line
    assert not (tmp_path / "runs").exists()
    assert not root.exists()  # no empty MNIST/raw/ left behind by the failed download


def test_a_failed_download_leaves_a_folder_that_was_there_as_it_was(cli, tmp_path: Path) -> None:
    root = tmp_path / "data"
    (root / "MNIST").mkdir(parents=True)
    (root / "notes.txt").write_text("mine")
    result = cli("--data-dir", root, "--output-dir", tmp_path / "runs", *TINY, *QUIET)
    assert_one_line_error(result, 1, f"files missing in {root / RAW}", "the download failed")
    assert sorted(p.relative_to(root).as_posix() for p in root.rglob("*")) == ["MNIST", "notes.txt"]


def test_data_dir_that_is_a_file(cli, tmp_path: Path) -> None:
    not_a_folder = tmp_path / "data.txt"
    not_a_folder.write_text("not a dataset")
    result = cli("--data-dir", not_a_folder, "--output-dir", tmp_path / "runs", *TINY, *QUIET)
    assert_one_line_error(result, 1, f"files missing in {not_a_folder / RAW}")
    assert not_a_folder.read_text() == "not a dataset"
