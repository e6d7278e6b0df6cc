"""The seed example on PyTorch: an ``nn.Module`` trained with lossbridge's loss and optimizer class."""

from __future__ import annotations

import time
from typing import Any

import torch

import lossbridge

__all__ = ["train_digits"]


def _model(init: dict[str, Any]) -> torch.nn.Module:
    """Dense(64, relu) -> Dense(10), starting from the shared weights (torch stores W transposed)."""
    model = torch.nn.Sequential(torch.nn.Linear(64, 64), torch.nn.ReLU(), torch.nn.Linear(64, 10))
    with torch.no_grad():
        for layer, w, b in ((model[0], "w1", "b1"), (model[2], "w2", "b2")):
            layer.weight.copy_(torch.as_tensor(init[w]).T)
            layer.bias.copy_(torch.as_tensor(init[b]))
    return model


def train_digits(data: Any, *, backend: str = "torch") -> Any:
    """Train on ``data`` (a :class:`lossbridge.demo.DigitsData`) the way a torch user would."""
    from lossbridge.demo import TrainingResult

    start = time.perf_counter()
    model = _model(data.init)
    loss_fn = lossbridge.get("sparse_categorical_crossentropy", backend=backend, from_logits=True)
    Adam = lossbridge.get("adam", backend=backend, lr=data.lr)
    opt = Adam(model.parameters())
    x, y = torch.as_tensor(data.x_train), torch.as_tensor(data.y_train)
    result = TrainingResult(backend=backend)
    for epoch in range(data.epochs):
        losses = []
        for idx in data.batches(epoch):
            batch = torch.as_tensor(idx)
            opt.zero_grad()
            loss = loss_fn(model(x[batch]), y[batch])
            loss.backward()
            opt.step()
            losses.append(float(loss.detach()))
        result.train_loss.append(sum(losses) / len(losses))
    with torch.no_grad():
        predicted = model(torch.as_tensor(data.x_val)).argmax(dim=-1)
    result.val_accuracy = float((predicted == torch.as_tensor(data.y_val)).double().mean())
    result.seconds = time.perf_counter() - start
    return result
