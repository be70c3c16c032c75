"""Data for collaborative learning: datasets, heterogeneous splits, batched sampling.

Datasets (:func:`load_dataset`):

- ``digits``: scikit-learn's 8x8 digits (1797 images, 10 classes; shipped with
  scikit-learn, no download); pixels scaled to [0, 1]; a stratified, seeded 80/20 split;
- ``mnist``: the IDX files (``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
  ``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte``, optionally ``.gz``) read with numpy
  from ``data_dir``; nothing is ever downloaded;
- ``cifar10``: the "python version" batches (``data_batch_1..5``, ``test_batch``) from
  ``data_dir``. These files are pickles: only load CIFAR-10 files of your own, from a source
  you trust. They are read with a restricted unpickler that only builds dicts, lists, bytes,
  strings, numbers and numpy arrays (any other global is refused), but a pickle remains a
  format for trusted files only; nothing is ever downloaded;
- ``least-squares`` and ``logistic``: synthetic tasks with a known optimum. Node ``i`` holds
  ``m`` samples ``a ~ N(0, I_p)`` labelled by its own ``w_i = w* + heterogeneity · u_i``
  (``u_i ~ N(0, I)``): ``y = <a, w_i> + noise`` (least squares) or
  ``y ~ Bernoulli(sigmoid(<a, w_i>))`` (logistic). :meth:`Dataset.optimum` gives the
  minimiser of the honest global loss ``L̄ = mean_{j honest} L_j`` (closed form for least
  squares; Newton's method in float64 for the L2-regularised logistic loss).

Splits of a labelled dataset over ``n`` nodes (:func:`split`): ``dirichlet`` (each class is
divided among the nodes in proportions ``p ~ Dirichlet(α·1_n)``: small α, few classes per
node; α -> inf, iid), ``shards`` (sorted by label, cut into ``n·k`` shards, ``k`` per node:
about ``k`` labels per node) and ``iid``.

:class:`NodeData` holds every node's samples as one padded tensor on the device, so that one
mini-batch for all nodes is one indexing operation (no Python loop over nodes).
"""

from __future__ import annotations

import gzip
import io
import math
import os
import pickle
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

DATASETS = ("digits", "mnist", "cifar10", "least-squares", "logistic")
SPLITS = ("dirichlet", "shards", "iid")


@dataclass
class Dataset:
    """A train/test dataset. ``task``: ``classification`` (integer labels, cross-entropy),
    ``regression`` (½ squared error) or ``binary`` (0/1 labels, logistic loss).

    Synthetic tasks carry their own per-node split (``node_index``) and the data to compute
    the optimum (``l2``: the ridge term of the logistic loss, part of every node's loss).
    """

    name: str
    task: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int
    node_index: list[np.ndarray] | None = None
    l2: float = 0.0
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])

    @property
    def out_dim(self) -> int:
        return self.num_classes if self.task == "classification" else 1

    def optimum(self, honest_parts: list[np.ndarray]) -> np.ndarray:
        """The minimiser ``θ* = (w, b)`` of ``L̄ = mean_j L_j`` over the honest nodes' sample
        index sets (linear model ``<a, w> + b``; parameter order weight then bias)."""
        if self.task not in ("regression", "binary"):
            raise ValueError("a known optimum exists for the synthetic tasks only")
        blocks = []
        for idx in honest_parts:
            a = self.x_train[idx].astype(np.float64)
            blocks.append((np.hstack([a, np.ones((len(a), 1))]), self.y_train[idx]
                           .astype(np.float64)))
        p1 = blocks[0][0].shape[1]
        if self.task == "regression":
            # ∇L̄ = mean_j (1/m_j) A_jᵀ(A_j θ - y_j) = 0
            lhs = sum(a.T @ a / len(a) for a, _ in blocks)
            rhs = sum(a.T @ y / len(a) for a, y in blocks)
            return np.linalg.solve(lhs, rhs)
        theta = np.zeros(p1)
        reg = np.full(p1, self.l2)
        reg[-1] = 0.0
        for _ in range(100):  # Newton on a strictly convex loss
            g = reg * theta
            hess = np.diag(reg)
            for a, y in blocks:
                s = 1 / (1 + np.exp(-(a @ theta)))
                g = g + a.T @ (s - y) / len(a) / len(blocks)
                hess = hess + (a.T * (s * (1 - s))) @ a / len(a) / len(blocks)
            step = np.linalg.solve(hess, g)
            theta -= step
            if np.linalg.norm(step) < 1e-13:
                break
        return theta


# -- built-in and file datasets -----------------------------------------------------------------


def _stratified_split(y: np.ndarray, test_fraction: float, rng: np.random.Generator):
    test = []
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        test.extend(idx[: round(test_fraction * len(idx))])
    mask = np.zeros(len(y), bool)
    mask[test] = True
    return np.flatnonzero(~mask), np.flatnonzero(mask)


def load_digits(seed: int = 0, test_fraction: float = 0.2) -> Dataset:
    """scikit-learn's digits: ``(1, 8, 8)`` float32 images in [0, 1], 10 classes."""
    from sklearn.datasets import load_digits as _load

    bunch = _load()
    x = (bunch.images.astype(np.float32) / 16.0)[:, None]
    y = bunch.target.astype(np.int64)
    tr, te = _stratified_split(y, test_fraction, np.random.default_rng(seed))
    return Dataset("digits", "classification", x[tr], y[tr], x[te], y[te], 10)


def _open(path: Path) -> io.BufferedIOBase:
    return gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an IDX file (MNIST's format; ``.gz`` too): magic ``0x00 0x00 type ndim``, then
    ``ndim`` big-endian uint32 sizes, then the data (big-endian)."""
    path = Path(path)
    with _open(path) as fh:
        head = fh.read(4)
        if len(head) != 4 or head[0] != 0 or head[1] != 0:
            raise ValueError(f"{path}: not an IDX file (bad magic number)")
        types = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
        if head[2] not in types:
            raise ValueError(f"{path}: unknown IDX data type 0x{head[2]:02x}")
        ndim = head[3]
        raw = fh.read(4 * ndim)
        if len(raw) != 4 * ndim:
            raise ValueError(f"{path}: truncated IDX header")
        shape = struct.unpack(f">{ndim}I", raw)
        dt = np.dtype(types[head[2]])
        count = math.prod(shape)
        data = fh.read(count * dt.itemsize)
        if len(data) != count * dt.itemsize:
            raise ValueError(f"{path}: truncated IDX data ({len(data)} of "
                             f"{count * dt.itemsize} bytes)")
    return np.frombuffer(data, dtype=dt).reshape(shape).astype(dt.newbyteorder("="))


def _find(data_dir: Path, stem: str) -> Path:
    for cand in (stem, stem + ".gz", stem.replace("-idx", ".idx"),
                 stem.replace("-idx", ".idx") + ".gz"):
        if (data_dir / cand).exists():
            return data_dir / cand
    raise FileNotFoundError(
        f"{data_dir}: no {stem}[.gz]; MNIST is read from local IDX files only (never downloaded)"
    )


def load_mnist(data_dir: str | os.PathLike[str]) -> Dataset:
    """MNIST from its four IDX files in ``data_dir`` (``(1, 28, 28)`` images in [0, 1])."""
    d = Path(data_dir)
    parts = []
    for split_ in ("train", "t10k"):
        x = read_idx(_find(d, f"{split_}-images-idx3-ubyte"))
        y = read_idx(_find(d, f"{split_}-labels-idx1-ubyte"))
        if x.ndim != 3 or y.ndim != 1 or len(x) != len(y):
            raise ValueError(f"{d}: MNIST {split_} images {x.shape} and labels {y.shape} "
                             "do not match")
        parts.append(((x.astype(np.float32) / 255.0)[:, None], y.astype(np.int64)))
    (xtr, ytr), (xte, yte) = parts
    return Dataset("mnist", "classification", xtr, ytr, xte, yte, 10)


class _RestrictedUnpickler(pickle.Unpickler):
    """Builds only numpy arrays (and the plain containers pickle builds natively)."""

    ALLOWED = frozenset({
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("_codecs", "encode"),
    })

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refused global {module}.{name} in a CIFAR batch")
        return super().find_class(module, name)


def read_cifar_batch(path: str | os.PathLike[str]) -> tuple[np.ndarray, np.ndarray]:
    """One CIFAR-10 python batch: ``(N, 3, 32, 32)`` uint8 images and ``(N,)`` labels.

    A pickle: load only your own trusted files (restricted unpickler, see the module doc).
    """
    with open(path, "rb") as fh:
        obj = _RestrictedUnpickler(fh, encoding="bytes").load()
    if not isinstance(obj, dict):
        raise ValueError(f"{path}: not a CIFAR batch (a dict expected)")
    obj = {k.decode() if isinstance(k, bytes) else k: v for k, v in obj.items()}
    if "data" not in obj or "labels" not in obj:
        raise ValueError(f"{path}: a CIFAR batch needs 'data' and 'labels'")
    x = np.asarray(obj["data"], dtype=np.uint8)
    y = np.asarray(obj["labels"], dtype=np.int64)
    if x.ndim != 2 or x.shape[1] != 3 * 32 * 32 or len(x) != len(y):
        raise ValueError(f"{path}: CIFAR data {x.shape} / labels {y.shape} malformed")
    if len(y) and (y.min() < 0 or y.max() > 9):
        raise ValueError(f"{path}: CIFAR-10 labels must be in 0..9")
    return x.reshape(-1, 3, 32, 32), y


def load_cifar10(data_dir: str | os.PathLike[str]) -> Dataset:
    """CIFAR-10 from ``data_dir`` (or its ``cifar-10-batches-py`` subfolder): the training
    batches present among ``data_batch_1..5`` and ``test_batch``; images scaled to [0, 1]."""
    d = Path(data_dir)
    if (d / "cifar-10-batches-py").is_dir():
        d = d / "cifar-10-batches-py"
    train = [d / f"data_batch_{i}" for i in range(1, 6) if (d / f"data_batch_{i}").exists()]
    if not train or not (d / "test_batch").exists():
        raise FileNotFoundError(f"{d}: CIFAR-10 needs data_batch_1..5 and test_batch "
                                "(python version; read locally, never downloaded)")
    xs, ys = zip(*(read_cifar_batch(p) for p in train), strict=True)
    xte, yte = read_cifar_batch(d / "test_batch")
    xtr = np.concatenate(xs).astype(np.float32) / 255.0
    return Dataset("cifar10", "classification", xtr, np.concatenate(ys),
                   xte.astype(np.float32) / 255.0, yte, 10)


def synthetic(task: str, n: int, dim: int = 10, samples: int = 200, heterogeneity: float = 1.0,
              noise: float = 0.1, l2: float = 1e-3, seed: int = 0) -> Dataset:
    """A synthetic task (``least-squares`` or ``logistic``) with node ``i``'s own weights
    ``w_i = w* + heterogeneity · u_i`` (see the module doc); ``samples`` per node, a test set
    of ``samples`` drawn from ``w*``."""
    if task not in ("least-squares", "logistic"):
        raise ValueError(f"unknown synthetic task {task!r}")
    rng = np.random.default_rng(seed)
    w = rng.standard_normal(dim)
    b = rng.standard_normal()
    xs, ys, parts = [], [], []
    for i in range(n + 1):  # the last block is the test set (labelled by w*)
        a = rng.standard_normal((samples, dim)).astype(np.float32)
        wi = w + (heterogeneity * rng.standard_normal(dim) if i < n else 0.0)
        z = a @ wi + b
        if task == "least-squares":
            y = z + noise * rng.standard_normal(samples)
        else:
            y = (rng.random(samples) < 1 / (1 + np.exp(-z))).astype(np.float64)
        xs.append(a)
        ys.append(y.astype(np.float32))
        parts.append(np.arange(i * samples, (i + 1) * samples))
    x = np.concatenate(xs[:n])
    y = np.concatenate(ys[:n])
    kind = "regression" if task == "least-squares" else "binary"
    return Dataset(task, kind, x, y, xs[n], ys[n], 0, node_index=parts[:n],
                   l2=l2 if task == "logistic" else 0.0,
                   meta={"heterogeneity": heterogeneity, "dim": dim})


def load_dataset(name: str, *, n: int = 10, data_dir: str | None = None, seed: int = 0,
                 **synthetic_params: Any) -> Dataset:
    """A dataset by name (:data:`DATASETS`)."""
    if name == "digits":
        return load_digits(seed)
    if name in ("mnist", "cifar10"):
        if data_dir is None:
            raise ValueError(f"{name} is read from local files: give data_dir (--data-dir); "
                             "Jungle never downloads data")
        return load_mnist(data_dir) if name == "mnist" else load_cifar10(data_dir)
    if name in ("least-squares", "logistic"):
        return synthetic(name, n, seed=seed, **synthetic_params)
    raise ValueError(f"unknown dataset {name!r}; known: {', '.join(DATASETS)}")


# -- splits -------------------------------------------------------------------------------------


def dirichlet_split(labels: np.ndarray, n: int, alpha: float, rng: np.random.Generator,
                    min_size: int = 2, tries: int = 100) -> list[np.ndarray]:
    """Split sample indices over ``n`` nodes: class ``c``'s samples go to the nodes in
    proportions ``p_c ~ Dirichlet(α·1_n)``. Redrawn (up to ``tries`` times) until every node
    has ``min_size`` samples."""
    if alpha <= 0:
        raise ValueError(f"the Dirichlet concentration must be > 0, got alpha={alpha}")
    classes = np.unique(labels)
    for _ in range(tries):
        parts: list[list[int]] = [[] for _ in range(n)]
        for c in classes:
            idx = rng.permutation(np.flatnonzero(labels == c))
            p = rng.dirichlet(np.full(n, alpha))
            cuts = (np.cumsum(p)[:-1] * len(idx)).astype(int)
            for i, chunk in enumerate(np.split(idx, cuts)):
                parts[i].extend(chunk.tolist())
        if min(len(p) for p in parts) >= min_size:
            return [np.sort(np.array(p, dtype=np.int64)) for p in parts]
    raise ValueError(f"no Dirichlet({alpha}) split of {len(labels)} samples over {n} nodes "
                     f"gave every node {min_size} samples in {tries} draws")


def shard_split(labels: np.ndarray, n: int, k: int, rng: np.random.Generator
                ) -> list[np.ndarray]:
    """Sort by label, cut into ``n·k`` equal shards, give each node ``k`` random shards."""
    if k < 1:
        raise ValueError(f"labels per node must be >= 1, got {k}")
    if n * k > len(labels):
        raise ValueError(f"{n * k} shards need at least as many samples, got {len(labels)}")
    order = np.argsort(labels, kind="stable")
    shards = np.array_split(order, n * k)
    perm = rng.permutation(n * k)
    return [np.sort(np.concatenate([shards[s] for s in perm[i * k:(i + 1) * k]]))
            for i in range(n)]


def split(dataset: Dataset, n: int, how: str = "dirichlet", *, alpha: float = 1.0,
          labels_per_node: int = 2, seed: int = 0) -> list[np.ndarray]:
    """Every node's sample indices (synthetic tasks: their own generated blocks)."""
    if dataset.node_index is not None:
        if len(dataset.node_index) != n:
            raise ValueError(f"the synthetic dataset was made for {len(dataset.node_index)} "
                             f"nodes, not {n}")
        return dataset.node_index
    rng = np.random.default_rng(seed)
    if how == "dirichlet":
        return dirichlet_split(dataset.y_train, n, alpha, rng)
    if how == "shards":
        return shard_split(dataset.y_train, n, labels_per_node, rng)
    if how == "iid":
        return [np.sort(p) for p in np.array_split(rng.permutation(len(dataset.y_train)), n)]
    raise ValueError(f"unknown split {how!r}; known: {', '.join(SPLITS)}")


class NodeData:
    """Every node's training samples as one padded ``(n, max_m, ...)`` tensor on ``device``;
    :meth:`sample` draws one mini-batch of ``B`` samples (with replacement) for every node in
    one indexing operation. ``flip`` lists nodes whose labels are flipped ``y -> C-1-y``
    (label-flip attack)."""

    def __init__(self, dataset: Dataset, parts: list[np.ndarray], device: torch.device,
                 dtype: torch.dtype = torch.float32, flip: list[int] | None = None) -> None:
        n = len(parts)
        sizes = np.array([len(p) for p in parts])
        if (sizes == 0).any():
            raise ValueError(f"nodes {np.flatnonzero(sizes == 0).tolist()} have no data")
        m = int(sizes.max())
        pad = np.zeros((n, m), dtype=np.int64)
        for i, p in enumerate(parts):  # setup only, not the hot path
            pad[i, : len(p)] = p
            pad[i, len(p):] = p[0]
        x = dataset.x_train[pad]
        y = dataset.y_train[pad].copy()
        for i in flip or []:
            if dataset.task == "classification":
                y[i] = dataset.num_classes - 1 - y[i]
            elif dataset.task == "binary":
                y[i] = 1 - y[i]
            else:
                y[i] = -y[i]
        self.x = torch.as_tensor(x, dtype=dtype, device=device)
        ydt = torch.long if dataset.task == "classification" else dtype
        self.y = torch.as_tensor(y, dtype=ydt, device=device)
        self.sizes = torch.as_tensor(sizes, dtype=dtype, device=device)
        self.n = n
        self.rows = torch.arange(n, device=device)[:, None]

    def sample(self, batch: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        u = torch.rand((self.n, batch), generator=gen, device=self.x.device)
        idx = (u * self.sizes[:, None]).long().clamp_max_(self.x.shape[1] - 1)
        return self.x[self.rows, idx], self.y[self.rows, idx]
