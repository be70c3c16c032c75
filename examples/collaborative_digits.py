"""A user's training script with the per-process API (``learning.CollaborativeSGD``): every
node has its own model, data shard and optimizer. Node ids below f are Byzantine: they
follow the protocol but put in their gradient sign-flipped and scaled by 10.

All nodes as threads of this process, over the in-process network::

    python examples/collaborative_digits.py [--n 4] [--f 1] [--steps 60]

One process per node over netsim's real network (mutual TLS over TCP)::

    python -m netsim keys --n 4 --f 1 --out keys    # CA, certificates, keys/cluster.toml
    for i in 0 1 2 3; do
        python examples/collaborative_digits.py --config keys/cluster.toml --id $i &
    done; wait

The same under torchrun (peers found through torchrun's TCPStore, a trusted bootstrap)::

    torchrun --nproc-per-node 4 examples/collaborative_digits.py --torchrun run-keys/
"""

from __future__ import annotations

import argparse
import threading

import numpy as np
import torch

from learning.data import dirichlet_split, load_digits
from learning.models import make_model
from learning.optim import CollaborativeSGD, InProcessNetwork, TransportNetwork
from netsim.net.node import NETWORK_STRATEGIES

_INIT_LOCK = threading.Lock()


def node_main(i: int, n: int, f: int, steps: int, net, parts, ds,
              results: dict, is_byzantine: bool, strategy: str | None = None) -> None:
    with _INIT_LOCK:  # threads of one process share torch's global generator
        torch.manual_seed(0)  # the shared seed: every node starts from the same parameters
        model = make_model("mlp", ds.input_shape, 10, hidden=32)
    hook = (lambda g: -10.0 * g) if is_byzantine and strategy is None else None
    endpoint = net.endpoint(i) if isinstance(net, InProcessNetwork) else net
    x = torch.as_tensor(ds.x_train[parts[i]])
    y = torch.as_tensor(ds.y_train[parts[i]])
    gen = torch.Generator().manual_seed(100 + i)
    # leaving the block serves slower nodes until every node is done, then closes
    with CollaborativeSGD(model.parameters(), lr=0.1, momentum=0.9, node=endpoint, f=f,
                          gradient_hook=hook,
                          strategy=strategy if is_byzantine else None) as opt:
        for _ in range(steps):
            idx = torch.randint(len(x), (32,), generator=gen)
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(x[idx]), y[idx]).backward()
            opt.step()
    with torch.no_grad():
        pred = model(torch.as_tensor(ds.x_test)).argmax(1).numpy()
    results[i] = (float((pred == ds.y_test).mean()),
                  torch.nn.utils.parameters_to_vector(model.parameters()).detach().numpy().copy())


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=4)
    ap.add_argument("--f", type=int, default=1)
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--config", help="cluster.toml: run ONE node over the real network")
    ap.add_argument("--id", type=int, help="this process's node id (with --config)")
    ap.add_argument("--torchrun", metavar="WORKDIR",
                    help="run ONE node under torchrun (node id = RANK; keys in WORKDIR)")
    ap.add_argument("--strategy", metavar="NAME", choices=NETWORK_STRATEGIES,
                    help="the Byzantine ids (< f) play this protocol-level strategy "
                         "instead of sending -10 x their gradient: "
                         + ", ".join(NETWORK_STRATEGIES))
    a = ap.parse_args(argv)
    ds = load_digits(0)
    if a.config is not None or a.torchrun is not None:
        if a.torchrun is not None:
            net, cfg = TransportNetwork.from_torchrun(a.torchrun, f=a.f)
            a.id = net.node_id
        else:
            if a.id is None:
                ap.error("--config needs --id")
            from netsim.net.cluster import load_config

            cfg = load_config(a.config)
            net = TransportNetwork.from_config(cfg, a.id)
        parts = dirichlet_split(ds.y_train, cfg.n, 1.0, np.random.default_rng(0))
        results: dict = {}
        try:
            node_main(a.id, cfg.n, cfg.f, a.steps, net, parts, ds, results, a.id < cfg.f,
                      a.strategy)
        finally:
            net.close()
        acc = results[a.id][0]
        print(f"node {a.id}{' (Byzantine)' if a.id < cfg.f else ''}: accuracy {acc:.3f}")
        return {"accuracies": [acc]}
    parts = dirichlet_split(ds.y_train, a.n, 1.0, np.random.default_rng(0))
    net = InProcessNetwork(a.n)
    results = {}
    threads = [threading.Thread(target=node_main, args=(i, a.n, a.f, a.steps, net, parts, ds,
                                                        results, i < a.f, a.strategy))
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
