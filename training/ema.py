"""An exponential moving average of a network's weights, kept beside the trained one.

With batch 16 on this CPU, each step's weights carry noise from the last few batches; the average
over the last ≈1/(1 − decay) steps is a smoother point of the same trajectory (Polyak averaging).
It is evaluated beside the raw network each epoch (docs/training-journal.md has the measurement), and is
what the run exports when it is on.

Floating-point parameters and buffers (BatchNorm's running mean and variance) are averaged; other
buffers (BatchNorm's integer step count) are copied.
"""

from __future__ import annotations

import copy

import torch


class WeightAverage:
    """``avg ← decay · avg + (1 − decay) · current`` after every :meth:`update`.

    The average starts as a copy of ``model`` (a trained bundle when a run continues one), so it
    needs no warm-up correction.
    """

    def __init__(self, model: torch.nn.Module, decay: float) -> None:
        if not 0.0 < decay < 1.0:
            raise ValueError(f"EMA decay must lie in (0, 1), got {decay}")
        self.decay = decay
        self.module = copy.deepcopy(model).eval()
        for p in self.module.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        current = dict(model.state_dict())
        avgs, curs = [], []
        for name, avg in self.module.state_dict().items():
            cur = current[name].detach()
            if avg.is_floating_point():
                avgs.append(avg)
                curs.append(cur.to(avg.dtype))
            else:
                avg.copy_(cur)
        # one fused update for all tensors: on a GPU a per-tensor loop costs ~300 kernel launches a step
        torch._foreach_lerp_(avgs, curs, 1.0 - self.decay)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return self.module.state_dict()

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.module.load_state_dict(state, strict=True)
