"""Data: splits (partitions, heterogeneity), file loaders on files the tests write, synthetic
optima."""

from __future__ import annotations

import gzip
import pickle
import struct

import numpy as np
import pytest
import torch

from learning.data import (
    NodeData,
    dirichlet_split,
    load_cifar10,
    load_dataset,
    load_digits,
    load_mnist,
    read_cifar_batch,
    read_idx,
    shard_split,
    split,
    synthetic,
)


def _is_partition(parts, total):
    allidx = np.concatenate(parts)
    return len(allidx) == total and len(np.unique(allidx)) == total


@pytest.mark.parametrize("alpha", [0.1, 1.0, 100.0])
def test_dirichlet_split_is_a_partition(alpha):
    y = load_digits(0).y_train
    parts = dirichlet_split(y, 10, alpha, np.random.default_rng(3))
    assert _is_partition(parts, len(y))
    assert min(len(p) for p in parts) >= 2


def test_dirichlet_alpha_controls_heterogeneity():
    y = load_digits(0).y_train

    def mean_tv(alpha):  # mean total-variation distance of node label laws to the global law
        parts = dirichlet_split(y, 10, alpha, np.random.default_rng(0))
        glob = np.bincount(y, minlength=10) / len(y)
        return np.mean([0.5 * np.abs(np.bincount(y[p], minlength=10) / len(p) - glob).sum()
                        for p in parts])

    assert mean_tv(0.1) > 0.5 > mean_tv(1.0) > mean_tv(100.0)
    assert mean_tv(100.0) < 0.1


def test_dirichlet_bad_alpha():
    with pytest.raises(ValueError, match="alpha"):
        dirichlet_split(np.zeros(10, int), 2, 0.0, np.random.default_rng(0))


@pytest.mark.parametrize("k", [1, 2, 3])
def test_shard_split_labels_per_node(k):
    y = load_digits(0).y_train
    parts = shard_split(y, 10, k, np.random.default_rng(1))
    assert _is_partition(parts, len(y))
    # a shard is a contiguous run of the label-sorted array: it spans at most
    # 1 + ceil((size - 1) / smallest class) labels
    size = -(-len(y) // (10 * k))
    span = 1 + -(-(size - 1) // int(np.bincount(y).min()))
    assert max(len(np.unique(y[p])) for p in parts) <= span * k
    assert np.mean([len(np.unique(y[p])) for p in parts]) <= k + 1.5


def test_nodedata_sample_stays_in_each_nodes_data():
    ds = load_digits(0)
    parts = split(ds, 5, "dirichlet", alpha=0.3, seed=2)
    nd = NodeData(ds, parts, torch.device("cpu"), flip=[4])
    gen = torch.Generator().manual_seed(0)
    xb, yb = nd.sample(64, gen)
    assert xb.shape == (5, 64, 1, 8, 8) and yb.shape == (5, 64)
    for i in range(4):
        assert set(yb[i].tolist()) <= set(ds.y_train[parts[i]].tolist())
    assert set(yb[4].tolist()) <= set((9 - ds.y_train[parts[4]]).tolist())  # flipped


def _write_idx(path, arr, gz=False):
    code = {np.uint8: 0x08, np.int32: 0x0C}[arr.dtype.type]
    head = bytes([0, 0, code, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
    body = head + arr.astype(arr.dtype.newbyteorder(">")).tobytes()
    (gzip.open if gz else open)(path, "wb").write(body)


def test_idx_roundtrip_and_errors(tmp_path):
    a = np.arange(24, dtype=np.int32).reshape(2, 3, 4) - 5
    _write_idx(tmp_path / "a.idx", a)
    assert np.array_equal(read_idx(tmp_path / "a.idx"), a)
    (tmp_path / "bad").write_bytes(b"\x01\x00\x08\x01")
    with pytest.raises(ValueError, match="magic"):
        read_idx(tmp_path / "bad")
    (tmp_path / "short").write_bytes(bytes([0, 0, 8, 1]) + struct.pack(">I", 10) + b"abc")
    with pytest.raises(ValueError, match="truncated"):
        read_idx(tmp_path / "short")


@pytest.mark.parametrize("gz", [False, True])
def test_mnist_loader_reads_local_idx_files(tmp_path, gz):
    rng = np.random.default_rng(0)
    for stem, n in (("train", 12), ("t10k", 5)):
        x = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        y = rng.integers(0, 10, n).astype(np.uint8)
        sfx = ".gz" if gz else ""
        _write_idx(tmp_path / f"{stem}-images-idx3-ubyte{sfx}", x, gz)
        _write_idx(tmp_path / f"{stem}-labels-idx1-ubyte{sfx}", y, gz)
        if stem == "train":
            x0, y0 = x, y
    ds = load_mnist(tmp_path)
    assert ds.x_train.shape == (12, 1, 28, 28) and ds.x_test.shape == (5, 1, 28, 28)
    assert np.allclose(ds.x_train[:, 0] * 255, x0) and np.array_equal(ds.y_train, y0)
    with pytest.raises(FileNotFoundError, match="never downloaded"):
        load_mnist(tmp_path / "nowhere")
    with pytest.raises(ValueError, match="data_dir"):
        load_dataset("mnist")


def _write_cifar(path, n, rng):
    data = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
    labels = rng.integers(0, 10, n).tolist()
    with open(path, "wb") as fh:
        pickle.dump({b"batch_label": b"x", b"data": data, b"labels": labels}, fh)
    return data, labels


def test_cifar_loader_reads_local_batches(tmp_path):
    rng = np.random.default_rng(1)
    d1, l1 = _write_cifar(tmp_path / "data_batch_1", 4, rng)
    _write_cifar(tmp_path / "data_batch_2", 3, rng)
    _write_cifar(tmp_path / "test_batch", 2, rng)
    ds = load_cifar10(tmp_path)
    assert ds.x_train.shape == (7, 3, 32, 32) and ds.x_test.shape == (2, 3, 32, 32)
    assert np.allclose(ds.x_train[:4].reshape(4, -1) * 255, d1)
    assert ds.y_train[:4].tolist() == l1


def test_cifar_unpickler_refuses_other_globals(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    (tmp_path / "data_batch_1").write_bytes(pickle.dumps({b"data": Evil(), b"labels": []}))
    with pytest.raises(pickle.UnpicklingError, match="refused"):
        read_cifar_batch(tmp_path / "data_batch_1")


@pytest.mark.parametrize("task", ["least-squares", "logistic"])
def test_synthetic_optimum_zeroes_the_honest_gradient(task):
    ds = synthetic(task, 6, dim=5, samples=50, heterogeneity=0.5, seed=4)
    honest = ds.node_index[2:]
    theta = ds.optimum(honest)
    g = np.zeros_like(theta)
    for idx in honest:
        a = np.hstack([ds.x_train[idx].astype(np.float64), np.ones((len(idx), 1))])
        y = ds.y_train[idx].astype(np.float64)
        z = a @ theta
        r = z - y if task == "least-squares" else 1 / (1 + np.exp(-z)) - y
        g += a.T @ r / len(idx) / len(honest)
    if task == "logistic":
        g[:-1] += ds.l2 * theta[:-1]
    assert np.linalg.norm(g) < 1e-8
