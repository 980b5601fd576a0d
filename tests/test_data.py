import pytest
import torch
from torchvision import datasets, transforms

from ignite_mnist.data import TensorLoader, load_splits, normalise, prepare_files, split_indices
from ignite_mnist.errors import DataError


def test_load_splits_shapes_and_types(idx_root):
    splits = load_splits(idx_root, "mnist", val_size=200, seed=0)
    (train_x, train_y), (val_x, val_y), (test_x, test_y) = splits.train, splits.val, splits.test
    assert train_x.shape == (1000, 28, 28) and val_x.shape == (200, 28, 28) and test_x.shape == (300, 28, 28)
    assert train_x.dtype == torch.uint8 and train_y.dtype == torch.int64
    assert len(train_y) == 1000 and len(val_y) == 200 and len(test_y) == 300


def test_normalisation_equals_torchvision_totensor_normalize(idx_root):
    reference = datasets.MNIST(
        str(idx_root), train=False,
        transform=transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.1307,), (0.3081,))]),
    )
    splits = load_splits(idx_root, "mnist", val_size=200, seed=0)
    ours = normalise(splits.test[0][:5], 0.1307, 0.3081)
    for i in range(5):
        torch.testing.assert_close(ours[i], reference[i][0], rtol=0, atol=1e-6)


def test_validation_split_is_disjoint_and_seeded(idx_root):
    train, val = split_indices(1200, 200, seed=3)
    assert set(train.tolist()).isdisjoint(val.tolist())
    assert sorted(train.tolist() + val.tolist()) == list(range(1200))
    again_train, again_val = split_indices(1200, 200, seed=3)
    assert torch.equal(val, again_val) and torch.equal(train, again_train)
    assert not torch.equal(val, split_indices(1200, 200, seed=4)[1])
    splits = load_splits(idx_root, "mnist", val_size=200, seed=3)
    assert torch.equal(splits.val_indices, val)


def _loader(n=10, **kwargs):
    return TensorLoader(torch.zeros(n, 28, 28, dtype=torch.uint8), torch.arange(n), mean=0.0, std=1.0, **kwargs)


def test_tensor_loader_visits_every_sample_once_per_epoch_in_a_new_order():
    loader = _loader(103, batch_size=10, shuffle=True, seed=1)
    assert len(loader) == 11
    epochs = [torch.cat([y for _, y in loader]) for _ in range(2)]
    for order in epochs:
        assert sorted(order.tolist()) == list(range(103))
    assert not torch.equal(epochs[0], epochs[1])
    assert len(_loader(103, batch_size=10, drop_last=True)) == 10


def test_tensor_loader_resumes_mid_epoch_with_the_remaining_batches():
    reference = _loader(50, batch_size=8, shuffle=True, seed=2)
    first_epoch = [y for _, y in reference]
    second_epoch = [y for _, y in reference]

    interrupted = _loader(50, batch_size=8, shuffle=True, seed=2)
    list(interrupted)  # epoch 0
    iterator = iter(interrupted)
    seen = [next(iterator) for _ in range(3)]
    state = interrupted.state_dict()
    assert state == {"epoch": 1, "position": 3}

    resumed = _loader(50, batch_size=8, shuffle=True, seed=2)
    resumed.load_state_dict(state)
    rest = [y for _, y in resumed]
    assert all(torch.equal(a, b) for a, b in zip([y for _, y in seen] + rest, second_epoch, strict=False))
    assert len(rest) == len(second_epoch) - 3
    assert not all(torch.equal(a, b) for a, b in zip(first_epoch, second_epoch, strict=False))


def test_tensor_loader_shards_disjointly_across_ranks():
    shards = [torch.cat([y for _, y in _loader(101, batch_size=7, shuffle=True, seed=0, rank=r, world_size=2)])
              for r in range(2)]
    assert set(shards[0].tolist()).isdisjoint(shards[1].tolist())
    assert len(shards[0]) == len(shards[1]) == 50


def test_missing_files_name_the_folder_and_the_four_files(tmp_path):
    with pytest.raises(DataError) as info:
        prepare_files(tmp_path, "mnist", download=False)
    message = str(info.value)
    assert str(tmp_path / "MNIST" / "raw") in message
    for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                 "t10k-labels-idx1-ubyte"):
        assert name in message
    assert "--data-dir" in message


def test_gzipped_files_are_unpacked(tmp_path, idx_root):
    import gzip

    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for source in (idx_root / "MNIST" / "raw").iterdir():
        (raw / f"{source.name}.gz").write_bytes(gzip.compress(source.read_bytes()))
    splits = load_splits(tmp_path, "mnist", val_size=100, seed=0)
    assert splits.test[0].shape == (300, 28, 28)


def test_truncated_idx_file_is_reported(fresh_idx_root):
    path = fresh_idx_root / "MNIST" / "raw" / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(DataError, match="train-images-idx3-ubyte: truncated IDX file"):
        load_splits(fresh_idx_root, "mnist", val_size=100, seed=0)
