"""DistributedDataParallel over gloo (2 CPU processes) with a lossbridge loss and optimizer class.

Each rank takes half of the global batch; DDP averages the gradients, so with ``mean`` losses the
parameters after N steps equal one process training on the whole global batch. Checked in float64
for both engines of lossbridge's torch optimizers: the verified fused kernel (``adam`` under its
default hyperparameters) and the spec's own update (``fused=False``).

The file is the launched program too: the test runs ``python test_torch_ddp.py OUT``, which starts
its two ranks with ``torch.multiprocessing.spawn`` (a process group over a file store in a
temporary directory, so parallel runs never share a port) and compares their parameters with the
single-process run. A subprocess keeps the spawn and the process group out of the pytest process
and lets the test time out.
"""

from __future__ import annotations

import os
import sys
import tempfile
import traceback
from pathlib import Path

STEPS = 5
GLOBAL_BATCH = 16
CLASSES = 3
WORLD = 2


def _data(torch):
    """The same global batches, steps, and initial model on every process (fixed seeds)."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(STEPS, GLOBAL_BATCH, 4, generator=g, dtype=torch.float64)
    y = torch.randn(STEPS, GLOBAL_BATCH, 1, generator=g, dtype=torch.float64)
    labels = torch.randint(0, CLASSES, (STEPS, GLOBAL_BATCH), generator=g)
    return x, y, labels


def _model(torch):
    torch.manual_seed(1)
    return torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1 + CLASSES)).to(
        torch.float64
    )


def _train(model, x, y, labels, fused):
    """``STEPS`` steps of lossbridge mse + cross-entropy with lossbridge's Adam; returns the losses."""
    import torch

    import lossbridge

    mse = lossbridge.get("mse", backend="torch")
    cross_entropy = lossbridge.get("CrossEntropyLoss", backend="torch", convention="torch")
    Adam = lossbridge.get("adam", backend="torch")
    opt = Adam(model.parameters(), lr=0.05, fused=fused)
    losses = []
    for k in range(STEPS):
        opt.zero_grad()
        out = model(x[k])
        loss = mse(out[:, :1], y[k]) + cross_entropy(out[:, 1:], labels[k])
        loss.backward()
        opt.step()
        losses.append(loss.detach())
    return torch.stack(losses), opt


ENGINES = (None, False)  # fused: the verified fused kernel where it applies / the spec's own update


def _worker(rank, store, out):
    import torch
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel as DDP

    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=WORLD)
    try:
        x, y, labels = _data(torch)
        half = GLOBAL_BATCH // WORLD
        local = slice(rank * half, (rank + 1) * half)
        results = {}
        for fused in ENGINES:
            model = DDP(_model(torch))
            _, opt = _train(model, x[:, local], y[:, local], labels[:, local], fused)
            assert type(opt).__module__.startswith("lossbridge_torch"), type(opt)
            gathered = [None] * WORLD
            dist.all_gather_object(gathered, [p.detach().clone() for p in model.module.parameters()])
            results[fused] = gathered
        if rank == 0:
            torch.save(results, out)
        dist.barrier()  # every rank done with its collectives before any tears the group down
    except BaseException:
        # printed here: a rank that fails may then die of SIGABRT tearing gloo down, and spawn
        # would report only the signal
        traceback.print_exc()
        sys.stderr.flush()
        raise
    finally:
        dist.destroy_process_group()


def main(out_dir: str) -> None:
    import torch
    import torch.multiprocessing as mp

    out = os.path.join(out_dir, "params.pt")
    mp.spawn(_worker, args=(os.path.join(out_dir, "store"), out), nprocs=WORLD, join=True)
    results = torch.load(out)
    for fused in ENGINES:
        ranks = results[fused]
        x, y, labels = _data(torch)
        single = _model(torch)
        _train(single, x, y, labels, fused)
        expected = [p.detach() for p in single.parameters()]
        for rank, params in enumerate(ranks):
            for got, want in zip(params, expected, strict=True):
                err = float((got - want).abs().max() / want.abs().max())
                assert err <= 1e-12, (f"fused={fused}", rank, err)
        assert all(torch.equal(a, b) for a, b in zip(ranks[0], ranks[1], strict=True)), "ranks differ"
        moved = max(float((p - q).abs().max()) for p, q in zip(expected, _model(torch).parameters(), strict=True))
        assert moved > 1e-3, "the parameters did not train"
    print("ddp ok")


def test_ddp_two_processes_match_one_process():
    from ._launch import require, run_child

    require("torch", "lossbridge_torch")
    with tempfile.TemporaryDirectory() as tmp:
        run_child([str(Path(__file__)), tmp], "ddp ok", GLOO_SOCKET_IFNAME="lo", OMP_NUM_THREADS="1")


if __name__ == "__main__":
    main(sys.argv[1])
