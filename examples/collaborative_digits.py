"""A user's training script with the per-process API: each node is one thread here, each
with its own model, data shard and ``learning.CollaborativeSGD`` optimizer, talking over the
in-process network (:class:`learning.optim.InProcessNetwork`). One node is Byzantine: it
follows the protocol but puts in its gradient sign-flipped and scaled by 10.

    python examples/collaborative_digits.py [--n 4] [--f 1] [--steps 60]

With one process per node, each process would build the same model from the same seed,
create its optimizer with its own network endpoint, and run the same loop.
"""

from __future__ import annotations

import argparse
import threading

import numpy as np
import torch

from learning.data import dirichlet_split, load_digits
from learning.models import make_model
from learning.optim import CollaborativeSGD, InProcessNetwork


def node_main(i: int, n: int, f: int, steps: int, net: InProcessNetwork, parts, ds,
              results: dict, byzantine: bool) -> None:
    torch.manual_seed(0)  # the shared seed: every node starts from the same parameters
    model = make_model("mlp", ds.input_shape, 10, hidden=32)
    hook = (lambda g: -10.0 * g) if byzantine else None
    opt = CollaborativeSGD(model.parameters(), lr=0.1, momentum=0.9, node=net.endpoint(i),
                           f=f, gradient_hook=hook)
    x = torch.as_tensor(ds.x_train[parts[i]])
    y = torch.as_tensor(ds.y_train[parts[i]])
    gen = torch.Generator().manual_seed(100 + i)
    for _ in range(steps):
        idx = torch.randint(len(x), (32,), generator=gen)
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x[idx]), y[idx]).backward()
        opt.step()
    opt.serve(1.0)  # let slower nodes finish their last agreement
    with torch.no_grad():
        pred = model(torch.as_tensor(ds.x_test)).argmax(1).numpy()
    results[i] = (float((pred == ds.y_test).mean()),
                  torch.nn.utils.parameters_to_vector(model.parameters()).detach().numpy().copy())


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=4)
    ap.add_argument("--f", type=int, default=1)
    ap.add_argument("--steps", type=int, default=60)
    a = ap.parse_args(argv)
    ds = load_digits(0)
    parts = dirichlet_split(ds.y_train, a.n, 1.0, np.random.default_rng(0))
    net = InProcessNetwork(a.n)
    results: dict = {}
    threads = [threading.Thread(target=node_main, args=(i, a.n, a.f, a.steps, net, parts, ds,
                                                        results, i < a.f))
               for i in range(a.n)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    honest = [i for i in range(a.n) if i >= a.f]
    accs = [results[i][0] for i in honest]
    thetas = np.stack([results[i][1] for i in honest])
    diam = float(max(np.linalg.norm(p - q) for p in thetas for q in thetas))
    print(f"honest accuracies {[round(x, 3) for x in accs]}, parameter diameter {diam:.3g}, "
          f"{net.messages:,} messages, {net.bytes:,} bytes")
    return {"accuracies": accs, "diameter": diam, "messages": net.messages}


if __name__ == "__main__":
    main()
