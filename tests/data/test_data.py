"""Dataset readers on small files written here in the published formats, and the training-time
helpers (augmentation, label noise)."""

from __future__ import annotations

import gzip
import os
import pickle
import struct
import textwrap

import numpy as np
import pytest
import torch
from helpers import make_cifar10, write_cifar_batch

from landscape.data.datasets import NORMALIZATION, apply_label_noise, augment, load_dataset, read_idx
from landscape.errors import LandscapeError

# --- writers for the published formats ------------------------------------------------------


def write_idx(path, array: np.ndarray, compress: bool = False):
    """IDX: two zero bytes, the type code (0x08 = ubyte), the number of dimensions, then each
    dimension as a big-endian uint32, then the data, row-major."""
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    payload = header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()
    opener = gzip.open if compress else open
    with opener(str(path) + (".gz" if compress else ""), "wb") as f:
        f.write(payload)


def make_mnist(folder, compress: bool = False, n_train: int = 6, n_test: int = 4, seed: int = 0):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    out = {}
    plan = (("train", n_train, ("train-images-idx3-ubyte", "train-labels-idx1-ubyte")),
            ("test", n_test, ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")))
    for split, n, stems in plan:
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, size=n, dtype=np.uint8)
        write_idx(folder / stems[0], images, compress)
        write_idx(folder / stems[1], labels, compress)
        out[split] = (images, labels)
    return out


# --- CIFAR ----------------------------------------------------------------------------------


def test_cifar10_reads_the_published_layout(tmp_path):
    folder, batches = make_cifar10(tmp_path)
    train = load_dataset("cifar10", root=str(tmp_path), split="train", raw=True)
    assert train.x.shape == (15, 3, 32, 32) and train.x.dtype == torch.float32
    assert train.num_classes == 10 and train.name == "cifar10"
    data, labels = batches["data_batch_2"]
    i = 3 + 1  # second sample of the second batch
    # pixel (row 5, column 7) of the green plane is at 1024 + 5 * 32 + 7 in the row
    assert train.x[i, 1, 5, 7].item() == pytest.approx(data[1, 1024 + 5 * 32 + 7] / 255.0)
    assert train.x[i, 2, 31, 31].item() == pytest.approx(data[1, 3071] / 255.0)
    assert train.y[i].item() == labels[1]
    all_labels = sum((batches[f"data_batch_{k}"][1] for k in range(1, 6)), [])
    assert train.y.tolist() == all_labels
    test = load_dataset("cifar10", root=str(folder), split="test", raw=True)  # the folder itself
    assert test.x.shape == (3, 3, 32, 32)
    assert test.y.tolist() == batches["test_batch"][1]


def test_cifar10_normalization_uses_the_original_constants(tmp_path):
    make_cifar10(tmp_path)
    raw = load_dataset("cifar10", root=str(tmp_path), raw=True)
    norm = load_dataset("cifar10", root=str(tmp_path))
    mean, std = NORMALIZATION["cifar10"]
    assert mean[0] == pytest.approx(125.3 / 255) and std[2] == pytest.approx(66.7 / 255)
    for c in range(3):
        assert torch.allclose(norm.x[:, c], (raw.x[:, c] - mean[c]) / std[c], atol=1e-6)
    assert norm.info["pad_fill"] == pytest.approx([-m / s for m, s in zip(mean, std, strict=True)])
    assert raw.info["pad_fill"] == [0.0, 0.0, 0.0]


def test_cifar10_missing_batch_is_named(tmp_path):
    make_cifar10(tmp_path, skip="data_batch_3")
    with pytest.raises(LandscapeError, match="missing data_batch_3"):
        load_dataset("cifar10", root=str(tmp_path), split="train")
    # the test split does not need the training batches
    assert len(load_dataset("cifar10", root=str(tmp_path), split="test")) == 3


def test_cifar_missing_root_and_folder(tmp_path):
    with pytest.raises(LandscapeError, match="needs `data_root`"):
        load_dataset("cifar10")
    with pytest.raises(LandscapeError, match="does not exist"):
        load_dataset("cifar10", root=str(tmp_path / "nope"))
    with pytest.raises(LandscapeError, match="missing data_batch_1"):
        load_dataset("cifar10", root=str(tmp_path))


def test_cifar_pickle_with_code_is_refused(tmp_path):
    folder, _ = make_cifar10(tmp_path)

    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    with open(folder / "test_batch", "wb") as f:
        pickle.dump({b"data": Evil(), b"labels": [0]}, f, protocol=2)
    with pytest.raises(LandscapeError, match="refusing to unpickle"):
        load_dataset("cifar10", root=str(tmp_path), split="test")


def test_cifar_bad_shape_is_reported(tmp_path):
    folder, _ = make_cifar10(tmp_path)
    write_cifar_batch(folder / "test_batch", np.zeros((2, 100), np.uint8), [0, 1])
    with pytest.raises(LandscapeError, match=r"\(N, 3072\)"):
        load_dataset("cifar10", root=str(tmp_path), split="test")


def test_cifar100_fine_labels(tmp_path):
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    rng = np.random.default_rng(1)
    for name, n in (("train", 5), ("test", 2)):
        write_cifar_batch(folder / name, rng.integers(0, 256, (n, 3072), dtype=np.uint8),
                          [99, 3, 50, 7, 0][:n], label_key=b"fine_labels")
    train = load_dataset("cifar100", root=str(tmp_path))
    assert train.num_classes == 100 and train.y.tolist() == [99, 3, 50, 7, 0]
    assert load_dataset("cifar100", root=str(tmp_path), split="test").x.shape == (2, 3, 32, 32)
    os.remove(folder / "test")
    with pytest.raises(LandscapeError, match="missing test"):
        load_dataset("cifar100", root=str(tmp_path), split="test")


# --- MNIST ----------------------------------------------------------------------------------


@pytest.mark.parametrize("compress", [False, True])
def test_mnist_idx(tmp_path, compress):
    written = make_mnist(tmp_path / "mnist", compress=compress)
    train = load_dataset("mnist", root=str(tmp_path / "mnist"), split="train", raw=True)
    images, labels = written["train"]
    assert train.x.shape == (6, 1, 28, 28)
    assert torch.allclose(train.x[:, 0] * 255, torch.from_numpy(images).float(), atol=1e-4)
    assert train.y.tolist() == labels.tolist()
    test = load_dataset("mnist", root=str(tmp_path / "mnist"), split="test")
    mean, std = NORMALIZATION["mnist"]
    expected = (torch.from_numpy(written["test"][0]).float() / 255 - mean[0]) / std[0]
    assert torch.allclose(test.x[:, 0], expected, atol=1e-5)


def test_mnist_torchvision_layout_and_missing_file(tmp_path):
    make_mnist(tmp_path / "MNIST" / "raw")
    assert len(load_dataset("mnist", root=str(tmp_path), split="test")) == 4
    os.remove(tmp_path / "MNIST" / "raw" / "t10k-labels-idx1-ubyte")
    with pytest.raises(LandscapeError, match="missing t10k-labels-idx1-ubyte"):
        load_dataset("mnist", root=str(tmp_path), split="test")


def test_idx_reader_rejects_bad_files(tmp_path):
    bad = tmp_path / "bad"
    bad.write_bytes(b"\x01\x02\x03\x04rest")
    with pytest.raises(LandscapeError, match="not an IDX file"):
        read_idx(str(bad))
    short = tmp_path / "short"
    short.write_bytes(bytes([0, 0, 8, 1]) + struct.pack(">I", 10) + b"\x00" * 3)
    with pytest.raises(LandscapeError, match="truncated"):
        read_idx(str(short))
    good = tmp_path / "good"
    write_idx(good, np.arange(6, dtype=np.uint8).reshape(2, 3))
    assert read_idx(str(good)).tolist() == [[0, 1, 2], [3, 4, 5]]


# --- module:callable, digits, synthetic ----------------------------------------------------


def test_dataset_from_callable(tmp_path, monkeypatch):
    (tmp_path / "my_data.py").write_text(textwrap.dedent("""
        import torch

        def tensors(split="train"):
            n = 8 if split == "train" else 4
            return torch.ones(n, 2, 3), torch.arange(n) % 3

        class Pairs:
            num_classes = 5
            def __len__(self):
                return 3
            def __getitem__(self, i):
                return torch.full((4,), float(i)), i

        def pairs():
            return Pairs()

        def broken():
            return 42
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    d = load_dataset("my_data:tensors", split="test")
    assert d.x.shape == (4, 2, 3) and d.y.tolist() == [0, 1, 2, 0] and d.num_classes == 3
    p = load_dataset("my_data:pairs")
    assert p.x.shape == (3, 4) and p.y.dtype == torch.int64 and p.num_classes == 5
    with pytest.raises(LandscapeError, match="expected an"):
        load_dataset("my_data:broken")
    with pytest.raises(LandscapeError, match="cannot import"):
        load_dataset("no_such_module_xyz:f")


def test_builtin_datasets_unchanged():
    d = load_dataset("digits", split="test")
    assert d.x.shape == (359, 1, 8, 8) and d.num_classes == 10
    s = load_dataset("synthetic", size=16, shape=(3, 8, 8), num_classes=4)
    assert s.x.shape == (16, 3, 8, 8) and int(s.y.max()) < 4
    with pytest.raises(LandscapeError, match="unknown dataset"):
        load_dataset("imagenet")
    with pytest.raises(LandscapeError, match="split"):
        load_dataset("digits", split="val")


# --- augmentation ---------------------------------------------------------------------------


def reference_augment(x, oy, ox, flips, padding, fill):
    """Per-sample loop: pad with ``fill``, crop at (oy, ox), flip left-right."""
    n, c, h, w = x.shape
    out = torch.empty_like(x)
    for i in range(n):
        size = (c, h + 2 * padding, w + 2 * padding)
        padded = torch.tensor(fill).view(c, 1, 1).expand(size).clone()
        padded[:, padding:padding + h, padding:padding + w] = x[i]
        crop = padded[:, oy[i]:oy[i] + h, ox[i]:ox[i] + w]
        out[i] = crop.flip(-1) if flips[i] else crop
    return out


def test_augment_matches_a_per_sample_loop():
    x = torch.randn(16, 3, 6, 5)
    fill = [0.5, -1.0, 2.0]
    g = torch.Generator().manual_seed(3)
    got = augment(x, g, padding=2, fill=fill)
    # the same draws, in the order augment() makes them
    g = torch.Generator().manual_seed(3)
    oy = torch.randint(0, 5, (16,), generator=g)
    ox = torch.randint(0, 5, (16,), generator=g)
    flips = torch.rand(16, generator=g) < 0.5
    assert torch.equal(got, reference_augment(x, oy, ox, flips, 2, fill))
    assert flips.any() and not flips.all()


def test_augment_identity_cases_and_determinism():
    x = torch.randn(4, 3, 32, 32)
    assert torch.equal(augment(x, torch.Generator().manual_seed(0), padding=0, flip=False), x)
    a = augment(x, torch.Generator().manual_seed(1))
    b = augment(x, torch.Generator().manual_seed(1))
    assert torch.equal(a, b) and a.shape == x.shape
    # a sample that is only flipped keeps its values; a shifted one shows the zero padding
    big = augment(torch.ones(256, 1, 32, 32), torch.Generator().manual_seed(2))
    assert (big == 0).any() and (big.flatten(1).sum(1) == 1024).any()


# --- label noise ----------------------------------------------------------------------------


def test_label_noise_is_recorded_and_reproducible():
    d = load_dataset("synthetic", size=2000, shape=(4,), num_classes=10)
    same, rec0 = apply_label_noise(d, 0.0)
    assert torch.equal(same.y, d.y) and len(rec0["indices"]) == 0
    noisy, rec = apply_label_noise(d, 0.5, seed=1)
    again, _ = apply_label_noise(d, 0.5, seed=1)
    assert torch.equal(noisy.y, again.y)
    assert 0.4 < len(rec["indices"]) / len(d) < 0.6
    idx = torch.from_numpy(rec["indices"])
    assert noisy.y[idx].tolist() == rec["noisy"].tolist()
    assert d.y[idx].tolist() == rec["original"].tolist()
    untouched = torch.ones(len(d), dtype=torch.bool)
    untouched[idx] = False
    assert torch.equal(noisy.y[untouched], d.y[untouched])
    assert noisy.info["label_noise"] == 0.5
    with pytest.raises(LandscapeError, match="label_noise"):
        apply_label_noise(d, 1.5)


@pytest.mark.parametrize("field, value", [("samples", 0), ("sample_seed", -1), ("synthetic_size", 0),
                                          ("num_classes", 0), ("seq_len", 2.5), ("dataset", "")])
def test_a_data_spec_refuses_bad_counts_and_seeds_when_made(field, value):
    from landscape.data.datasets import DataSpec

    with pytest.raises(LandscapeError, match=f"^`{field}` must be"):
        DataSpec(**{field: value})
