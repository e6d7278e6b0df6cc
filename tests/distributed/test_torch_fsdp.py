"""FSDP2 (``torch.distributed.fsdp.fully_shard``) with a lossbridge optimizer on DTensor parameters.

Two CPU processes over gloo. Each parameter is a ``DTensor`` sharded on dim 0 across the ranks, so
the optimizer's state slots (``init`` of the spec on the sharded parameter) are sharded too. Checked
in float64, for the verified fused kernel (``adam``'s default) and the spec's own update
(``fused=False``), and for ``adamw`` under torch's convention:

* the full parameters after N steps equal one process training on the whole global batch;
* a sharded checkpoint with ``torch.distributed.checkpoint`` (model and optimizer state dicts from
  ``torch.distributed.checkpoint.state_dict``) taken after k steps, loaded into a fresh model and a
  fresh optimizer, continues bit for bit like the uninterrupted run.

The file is the launched program too (``python test_torch_fsdp.py DIR``; see test_torch_ddp.py).
"""

from __future__ import annotations

import os
import sys
import tempfile
import traceback
from pathlib import Path

STEPS = 6
RESUME_AT = 3
GLOBAL_BATCH = 8
CLASSES = 4
WORLD = 2
#: (name, convention, optimizer keywords): the fused kernel, the spec's own update, decoupled decay
CASES = (
    ("adam", None, {"lr": 0.05}),
    ("adam", None, {"lr": 0.05, "fused": False}),
    ("adamw", "torch", {"lr": 0.05, "weight_decay": 0.1}),
)


def _data(torch):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(STEPS, GLOBAL_BATCH, 6, generator=g, dtype=torch.float64)
    labels = torch.randint(0, CLASSES, (STEPS, GLOBAL_BATCH), generator=g)
    return x, labels


def _model(torch):
    torch.manual_seed(1)
    return torch.nn.Sequential(
        torch.nn.Linear(6, 8), torch.nn.Tanh(), torch.nn.Linear(8, 8), torch.nn.Tanh(), torch.nn.Linear(8, CLASSES)
    ).to(torch.float64)


def _optimizer(model, case):
    import lossbridge

    name, convention, kwargs = case
    return lossbridge.get(name, backend="torch", convention=convention)(model.parameters(), **kwargs)


def _steps(model, opt, x, labels, steps):
    import lossbridge

    loss_fn = lossbridge.get("CrossEntropyLoss", backend="torch", convention="torch")
    for k in steps:
        opt.zero_grad()
        loss_fn(model(x[k]), labels[k]).backward()
        opt.step()


def _sharded(torch, mesh):
    from torch.distributed.fsdp import fully_shard

    model = _model(torch)
    for layer in model:
        if isinstance(layer, torch.nn.Linear):
            fully_shard(layer, mesh=mesh)
    fully_shard(model, mesh=mesh)
    return model


def _full(model):
    return [p.full_tensor().detach().clone() for p in model.parameters()]


def _worker(rank, store, out_dir):
    import torch
    import torch.distributed as dist
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import (
        get_model_state_dict,
        get_optimizer_state_dict,
        set_model_state_dict,
        set_optimizer_state_dict,
    )
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.tensor import DTensor

    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=WORLD)
    try:
        mesh = init_device_mesh("cpu", (WORLD,))
        x, labels = _data(torch)
        half = GLOBAL_BATCH // WORLD
        x, labels = x[:, rank * half : (rank + 1) * half], labels[:, rank * half : (rank + 1) * half]
        results = {}
        for c, case in enumerate(CASES):
            # uninterrupted run
            model = _sharded(torch, mesh)
            opt = _optimizer(model, case)
            _steps(model, opt, x, labels, range(STEPS))
            for p in model.parameters():
                assert isinstance(p, DTensor), type(p)
                for slot, value in opt.state[p].items():
                    if slot != "step":
                        assert isinstance(value, DTensor) and value.placements == p.placements, (slot, value)
            uninterrupted = _full(model)

            # interrupted: k steps, sharded save, fresh model and optimizer, sharded load, the rest
            model = _sharded(torch, mesh)
            opt = _optimizer(model, case)
            _steps(model, opt, x, labels, range(RESUME_AT))
            path = os.path.join(out_dir, f"checkpoint-{c}")
            dcp.save(
                {"model": get_model_state_dict(model), "optim": get_optimizer_state_dict(model, opt)},
                checkpoint_id=path,
            )
            model = _sharded(torch, mesh)
            opt = _optimizer(model, case)
            state = {"model": get_model_state_dict(model), "optim": get_optimizer_state_dict(model, opt)}
            dcp.load(state, checkpoint_id=path)
            set_model_state_dict(model, state["model"])
            set_optimizer_state_dict(model, opt, state["optim"])
            _steps(model, opt, x, labels, range(RESUME_AT, STEPS))
            resumed = _full(model)
            results[c] = (uninterrupted, resumed)
        if rank == 0:
            torch.save(results, os.path.join(out_dir, "params.pt"))
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

    mp.spawn(_worker, args=(os.path.join(out_dir, "store"), out_dir), nprocs=WORLD, join=True)
    results = torch.load(os.path.join(out_dir, "params.pt"))
    x, labels = _data(torch)
    for c, case in enumerate(CASES):
        uninterrupted, resumed = results[c]
        single = _model(torch)
        _steps(single, _optimizer(single, case), x, labels, range(STEPS))
        for got, again, want in zip(uninterrupted, resumed, [p.detach() for p in single.parameters()], strict=True):
            err = float((got - want).abs().max() / want.abs().max())
            assert err <= 1e-12, (case, err)
            assert torch.equal(got, again), (case, "the resumed run differs", float((got - again).abs().max()))
    print("fsdp ok")


def test_fsdp2_matches_one_process_and_resumes_from_dcp():
    from ._launch import require, run_child

    require("torch", "lossbridge_torch")
    with tempfile.TemporaryDirectory() as tmp:
        run_child([str(Path(__file__)), tmp], "fsdp ok", GLOO_SOCKET_IFNAME="lo", OMP_NUM_THREADS="1")


if __name__ == "__main__":
    main(sys.argv[1])
