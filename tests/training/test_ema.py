"""The weight average: closed-form values after a few updates, BatchNorm buffers, bad decay."""

from __future__ import annotations

import pytest
import torch

from training.ema import WeightAverage


def _net() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))


def test_average_follows_the_closed_form():
    net = _net()
    start = net[0].weight.detach().clone()
    ema = WeightAverage(net, decay=0.9)
    values = [start + k for k in (1.0, 2.0, 3.0)]
    expected = start.clone()
    for v in values:
        with torch.no_grad():
            net[0].weight.copy_(v)
        ema.update(net)
        expected = 0.9 * expected + 0.1 * v
    torch.testing.assert_close(ema.module[0].weight, expected)
    # the average is its own copy: the trained network keeps its last value
    torch.testing.assert_close(net[0].weight, values[-1])


def test_batchnorm_statistics_are_averaged_and_the_step_count_copied():
    net = _net().train()
    ema = WeightAverage(net, decay=0.5)
    mean0 = ema.module[1].running_mean.clone()
    net(torch.randn(8, 3, 6, 6) + 3.0)  # moves the running mean toward ≈3·kernel sum
    ema.update(net)
    torch.testing.assert_close(ema.module[1].running_mean, 0.5 * mean0 + 0.5 * net[1].running_mean)
    assert ema.module[1].num_batches_tracked.item() == 1
    assert not ema.module.training
    assert not any(p.requires_grad for p in ema.module.parameters())


def test_state_round_trips_strictly():
    net = _net()
    a = WeightAverage(net, decay=0.99)
    with torch.no_grad():
        net[0].weight.add_(1.0)
    a.update(net)
    b = WeightAverage(_net(), decay=0.99)
    b.load_state_dict(a.state_dict())
    torch.testing.assert_close(b.module[0].weight, a.module[0].weight)
    with pytest.raises(RuntimeError):
        b.load_state_dict({"0.weight": a.state_dict()["0.weight"]})


@pytest.mark.parametrize("decay", [0.0, 1.0, -0.1, 1.5])
def test_decay_outside_the_open_unit_interval_is_refused(decay):
    with pytest.raises(ValueError, match="decay"):
        WeightAverage(_net(), decay)
