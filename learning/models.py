"""Models, and the batched simulation of n copies of one model.

Built-in models (:func:`make_model`): ``mlp`` (flatten, one hidden ReLU layer), ``cnn`` (two
3x3 conv + ReLU + 2x2 max-pool blocks, adaptive average pooling to 2x2, a linear head; any
image size) and ``linear`` (the synthetic tasks' model ``<a, w> + b``). Any ``torch.nn.Module``
without batch statistics works with :class:`Swarm`.

:class:`Swarm` simulates ``k`` nodes' copies of one architecture at once: their parameters are
the rows of one ``(k, d)`` tensor (``d`` = the number of parameters, in
``parameters_to_vector`` order); each parameter of the module is a view into it, and one
``torch.func.vmap`` of ``grad_and_value`` over ``functional_call`` gives all ``k`` gradients
in one batched call: the hot path has no Python loop over nodes (only over the module's few
parameter tensors, to lay out the flat gradient).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.func import functional_call, grad_and_value, vmap

MODELS = ("mlp", "cnn", "linear")


def make_model(name: str, input_shape: tuple[int, ...], out_dim: int, hidden: int = 64
               ) -> nn.Module:
    """A built-in model for inputs of ``input_shape`` (without the batch axis)."""
    numel = 1
    for s in input_shape:
        numel *= s
    if name == "mlp":
        return nn.Sequential(nn.Flatten(), nn.Linear(numel, hidden), nn.ReLU(),
                             nn.Linear(hidden, out_dim))
    if name == "linear":
        return nn.Sequential(nn.Flatten(), nn.Linear(numel, out_dim))
    if name == "cnn":
        if len(input_shape) != 3:
            raise ValueError(f"the cnn needs (channels, height, width) inputs, got {input_shape}")
        c = input_shape[0]
        return nn.Sequential(
            nn.Conv2d(c, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2, ceil_mode=True),
            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2, ceil_mode=True),
            nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(32 * 4, out_dim),
        )
    raise ValueError(f"unknown model {name!r}; known: {', '.join(MODELS)}")


def loss_fn(task: str) -> Any:
    """The per-sample-mean loss of a task: cross-entropy, ½ squared error, logistic."""
    if task == "classification":
        return nn.functional.cross_entropy
    if task == "regression":
        return lambda out, y: 0.5 * ((out.squeeze(-1) - y) ** 2).mean()
    if task == "binary":
        return lambda out, y: nn.functional.binary_cross_entropy_with_logits(out.squeeze(-1), y)
    if task == "quadratic":  # ½||θ - x_j||² (docs/theory.md §2: learning => agreement)
        return lambda out, y: 0.5 * ((out - y) ** 2).sum(-1).mean()
    raise ValueError(f"unknown task {task!r}")


class Swarm:
    """``k`` copies of ``model``'s architecture as the rows of a ``(k, d)`` tensor.

    ``grads(theta, x, y)`` -> ``(k, d)`` gradients and ``(k,)`` losses of node ``i``'s loss at
    ``theta[i]`` on ``(x[i], y[i])`` (plus ``l2/2·||w||²`` on non-bias weights when
    ``l2 > 0``); ``forward(theta, x)`` -> ``(k, N, out)`` outputs of every node on a shared
    input batch.
    """

    def __init__(self, model: nn.Module, task: str, l2: float = 0.0) -> None:
        for mod in model.modules():
            if isinstance(mod, nn.modules.batchnorm._BatchNorm):
                raise ValueError("models with batch statistics (BatchNorm) cannot be simulated "
                                 "as a batch of nodes; use GroupNorm or LayerNorm")
        self.model = model
        self.names = [name for name, _ in model.named_parameters()]
        params = [p for _, p in model.named_parameters()]
        self.shapes = [tuple(p.shape) for p in params]
        self.numels = [p.numel() for p in params]
        self.d = sum(self.numels)
        self.buffers = {k: v for k, v in model.named_buffers()}
        self.init = torch.nn.utils.parameters_to_vector(params).detach()
        self.task = task
        self.l2 = l2
        crit = loss_fn(task)
        buffers = self.buffers

        def node_loss(p: dict[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor):
            out = functional_call(model, (p, buffers), (x,))
            loss = crit(out, y)
            if l2 > 0:
                loss = loss + 0.5 * l2 * sum((w ** 2).sum() for k, w in p.items()
                                             if not k.endswith("bias"))
            return loss

        self._grad = vmap(grad_and_value(node_loss))
        self._fwd = vmap(lambda p, x: functional_call(model, (p, buffers), (x,)),
                         in_dims=(0, None))

    def unflatten(self, theta: torch.Tensor) -> dict[str, torch.Tensor]:
        """Views of the ``(k, d)`` rows as the module's parameters, each ``(k, *shape)``."""
        out = {}
        off = 0
        k = theta.shape[0]
        for name, shape, num in zip(self.names, self.shapes, self.numels, strict=True):
            out[name] = theta[:, off:off + num].view(k, *shape)
            off += num
        return out

    def grads(self, theta: torch.Tensor, x: torch.Tensor, y: torch.Tensor
              ) -> tuple[torch.Tensor, torch.Tensor]:
        g, loss = self._grad(self.unflatten(theta), x, y)
        k = theta.shape[0]
        return torch.cat([g[name].reshape(k, -1) for name in self.names], dim=1), loss

    @torch.no_grad()
    def forward(self, theta: torch.Tensor, x: torch.Tensor, chunk: int = 4096) -> torch.Tensor:
        p = self.unflatten(theta)
        return torch.cat([self._fwd(p, x[s:s + chunk]) for s in range(0, len(x), chunk)], dim=1)


def diameter(theta: torch.Tensor) -> float:
    """``Δ2 = max_{j,k} ||θ_j - θ_k||`` of the rows (float64, on the rows' device)."""
    if theta.shape[0] < 2:
        return 0.0
    c = theta.double() - theta.double().mean(dim=0)
    return float(torch.cdist(c, c).max())
