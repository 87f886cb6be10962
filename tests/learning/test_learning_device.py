"""The training objectives follow the batch's device: every objective's draws and per-sample loss, and
the loss's gradient, computed for a network and a batch on a second device (``_foreign``: another
device's tensors with the CPU's values, checked as CUDA checks them) are the CPU's bit for bit, there
(the training times stay on the CPU, as ``losses._shared`` draws them)."""

from __future__ import annotations

import pytest
import torch

from _foreign import FOREIGN, assert_same_on_foreign, on_both, to_foreign
from scoredyn.core.fields import network_field
from scoredyn.core.registry import resolve_process
from scoredyn.core.targets import mog6
from scoredyn.learning.losses import OBJECTIVES, make_objective
from scoredyn.learning.nets import build_net


@pytest.mark.parametrize("name", list(OBJECTIVES))
def test_objectives_follow_the_batch(name):
    process = resolve_process("ddpm" if name == "vlb" else "edm")
    objective = make_objective(name, process, probes=2)
    x0 = mog6().sample(8, torch.Generator().manual_seed(0))
    y = torch.arange(8) % 3

    def run(move):
        torch.manual_seed(1)
        net = build_net("mlp", 2, num_classes=3, hidden=16, depth=1, emb_dim=8)
        torch.nn.init.normal_(net.out.weight) if hasattr(net, "out") else None  # a read-out that is not 0
        net = net.to(FOREIGN) if move is to_foreign else net
        field = network_field(net, process, objective.default_parameterization)
        draws = objective.draw(move(x0), torch.Generator().manual_seed(2))
        loss = objective.loss(field, move(x0), move(y), draws)
        grads = torch.autograd.grad(loss.mean(), list(net.parameters()))
        times = [draws.pop(k).tolist() for k in ("t", "w")]  # times and their weights are drawn on the CPU
        return loss, draws, times, *grads

    assert_same_on_foreign(*on_both(run), name)
