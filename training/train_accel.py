"""Train the default model on a lent accelerator within a wall-clock budget (train.py's recipe, GPU-fed).

A lent GPU machine comes for minutes, bare, without ../shared: it reads a pack
(training.pack), makes its batches on the device (training.torch_batch: the same
augmentation presets and exact labels as the CPU path) and sizes the cosine schedule to the
budget: it times the first SPEED_STEPS steps, then fixes the total so the run ends inside
``--minutes``. Loss (train.py's weighted ‖p̂ − p‖₂ with the landmark read-out weight), AdamW,
warm-up, yaw-stratified epochs, weight average and seed are train.py's; what differs is set by
flags and recorded in the log: input size, width, batch, peak LR, and an augmentation that may
narrow for the last part of the run (``--final-augmentation``, run 12's finding on the CPU).

The weight average is evaluated on the pack's dev crops ``--evals`` times (one pass and
flip-averaged, read-out only, as train.py logs per epoch) and written each time to ``--out`` as
fp16 parts of its state dict, each under ``--max-part-mib`` (the largest file the machine returns);
``assemble`` joins the parts into a bundle on this machine.

Run there: ``python -m training.train_accel --pack .gpu/pack --out $OUT --minutes 8``;
here: ``python -m training.train_accel assemble OUT --bundle-out runs/gpu1/bundle``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from engine.bundle import save_bundle, stored_state_dict
from engine.layout import default_layout
from engine.model import PositionMapNet

from .dataset import AUGMENTATIONS
from .ema import WeightAverage
from .evaluate import evaluate_model
from .pack import load_pack
from .sampling import epoch_order, sampling_probabilities
from .torch_batch import TorchBatcher
from .train import (
    BUNDLE_METADATA,
    EMA_DECAY,
    LANDMARK_WEIGHT,
    MEAN_SAMPLES,
    OUTPUT_SCALE,
    SEED,
    WEIGHT_DECAY,
    landmark_weighted,
    lr_at,
    mean_map_buffer,
)

SPEED_STEPS = (100, 300)  # steps timed (after the first ones' autotuning) before the schedule's total is fixed,
# inside the 500-step warm-up
RESERVE_S = 40.0  # seconds of the budget kept for the evaluations and the last export
PART_PATTERN = "ema_part_{}.pt"  # the weight average's parts, numbered from 0
MAX_PART_MIB = 16.0  # default part size: the largest file a lent machine returns
LOG = "log.jsonl"


def save_parts(model: torch.nn.Module, out: Path, max_part_mib: float = MAX_PART_MIB) -> list[Path]:
    """The state dict as a bundle stores it (engine.bundle.stored_state_dict) in as few files as
    keep each under ``max_part_mib`` of tensor bytes (a tensor larger than that gets a file of its
    own), each written atomically; parts of an earlier save beyond the new count are removed."""
    state = stored_state_dict(model)
    limit = max_part_mib * 2**20
    parts: list[list[str]] = [[]]
    used = 0.0
    for key, value in state.items():
        size = value.numel() * value.element_size()
        if parts[-1] and used + size > limit:
            parts.append([])
            used = 0.0
        parts[-1].append(key)
        used += size
    paths = []
    for i, keys in enumerate(parts):
        path = out / PART_PATTERN.format(i)
        tmp = path.with_name(path.name + ".tmp")
        torch.save({k: state[k] for k in keys}, tmp)
        tmp.replace(path)
        paths.append(path)
    for stale in part_files(out)[len(parts) :]:
        stale.unlink()
    return paths


def part_files(folder: Path) -> list[Path]:
    """The weight-average parts in ``folder``, in order."""
    found = sorted(folder.glob(PART_PATTERN.format("*")), key=lambda p: int(p.stem.rsplit("_", 1)[1]))
    return [p for p in found if p.stem.rsplit("_", 1)[1].isdigit()]


def train(args: argparse.Namespace) -> int:
    t0 = time.time()
    device = torch.device(args.device)
    torch.manual_seed(args.seed)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        print(f"device: {torch.cuda.get_device_name(device)}", flush=True)
    pack = load_pack(args.pack)
    lb = pack.label_basis
    args.out.mkdir(parents=True, exist_ok=True)
    batcher = TorchBatcher(pack.crops_rgb, pack.params, lb, device, args.seed)
    draw_p = sampling_probabilities(pack.yaw, tuple(args.bin_shares))
    n = len(pack.params)
    steps_per_epoch = n // args.batch
    print(f"pack: {n} crops, output {lb.size}, loaded in {time.time() - t0:.0f} s", flush=True)

    model = PositionMapNet(input_size=lb.size, width=args.width, output_kind="mean_residual", output_scale=OUTPUT_SCALE)
    mean_rng = np.random.default_rng(args.seed)
    ids = torch.from_numpy(mean_rng.choice(n, size=min(MEAN_SAMPLES, n), replace=False))
    with torch.no_grad():
        mean_label = sum(batcher.batch(chunk, None)[1].sum(0) for chunk in ids.split(250)) / len(ids)
    model.mean_map.copy_(mean_map_buffer(mean_label.cpu().numpy(), lb))
    model.init_near_mean()
    model = model.to(device, memory_format=torch.channels_last).train()
    ema = WeightAverage(model, args.ema_decay)
    opt = torch.optim.AdamW(model.parameters(), lr=args.peak_lr, weight_decay=WEIGHT_DECAY)
    weights = torch.from_numpy(landmark_weighted(lb.weights, args.landmark_weight)).to(device)
    layout = default_layout()
    log = open(args.out / LOG, "a", encoding="utf-8")
    log.write(json.dumps({"config": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}}) + "\n")

    def evaluate_and_save(step: int, total: int, loss: float) -> None:
        net = ema.module
        figures = {
            "step": step,
            "total": total,
            "epoch": round(step / steps_per_epoch, 2),
            "loss_px": round(loss, 4),
            "minutes": round((time.time() - t0) / 60, 2),
            **evaluate_model(net, pack.dev, layout),
            "flip_average": evaluate_model(net, pack.dev, layout, flip_average=True),
        }
        log.write(json.dumps(figures) + "\n")
        log.flush()
        print(json.dumps(figures), flush=True)
        save_parts(net, args.out, args.max_part_mib)

    budget = args.minutes * 60.0
    total = None  # fixed after SPEED_STEPS timed steps
    step, losses, order = 0, [], None
    t_timed = None
    while total is None or step < total:
        if time.time() - t0 > budget + 60:  # the timing was off: stop rather than be killed unsaved
            print("stopping: over budget", flush=True)
            evaluate_and_save(step, total or step, float("nan"))
            break
        epoch, i = divmod(step, steps_per_epoch)
        if i == 0 or order is None:
            order = torch.from_numpy(epoch_order(draw_p, args.seed + epoch)).to(device)
        late = total is not None and step >= (1 - args.final_fraction) * total
        augment = AUGMENTATIONS[args.final_augmentation if late else args.augmentation]
        idx = order[i * args.batch : (i + 1) * args.batch]
        images, targets = batcher.batch(idx, augment)
        x = images.div_(255.0).contiguous(memory_format=torch.channels_last)
        for g in opt.param_groups:
            g["lr"] = lr_at(step, total or 10**9, args.peak_lr)
        with torch.autocast(device.type, dtype=torch.bfloat16):
            pred = model(x)
        err = torch.linalg.vector_norm(pred.float().permute(0, 2, 3, 1) - targets, dim=-1)
        loss = (err * weights).sum() / (weights.sum() * len(idx))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        ema.update(model)
        losses.append(loss.detach())
        step += 1
        if step in SPEED_STEPS:
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            if step == SPEED_STEPS[0]:
                t_timed = time.time()
                continue
            rate = (SPEED_STEPS[1] - SPEED_STEPS[0]) / (time.time() - t_timed)
            left = budget - (time.time() - t0) - RESERVE_S
            total = min(step + max(0, int(left * rate)), max(args.max_steps, step))
            print(f"{rate:.1f} steps/s: total {total} steps = {total / steps_per_epoch:.1f} epochs", flush=True)
        if step % 200 == 0:
            mean_loss = torch.stack(losses).mean().item()
            losses = []
            print(
                f"step {step}/{total} loss {mean_loss:.3f} px lr {lr_at(step, total or 10**9, args.peak_lr):.2e} "
                f"{time.time() - t0:.0f} s",
                flush=True,
            )
        if total is not None and (step % max(1, total // args.evals) == 0 or step == total):
            evaluate_and_save(step, total, float(torch.stack(losses).mean()) if losses else float("nan"))
    log.close()
    return 0


def assemble(folder: Path, bundle_out: Path) -> None:
    """The parts from a lent machine → a bundle (strict load of the joined state dict); the input size
    is the mean map's side, the width the run's logged config."""
    state = {}
    for path in part_files(folder):
        state.update(torch.load(path, map_location="cpu", weights_only=True))
    records = [json.loads(line) for line in (folder / LOG).read_text().splitlines()]
    config = records[0]["config"]
    last = records[-1]
    model = PositionMapNet(
        input_size=state["mean_map"].shape[-1],
        width=config["width"],
        output_kind="mean_residual",
        output_scale=OUTPUT_SCALE,
    )
    model.load_state_dict({k: v.float() for k, v in state.items()}, strict=True)
    save_bundle(
        bundle_out,
        name="prnet-blender-default",
        model=model,
        layout=default_layout(),
        metadata={
            **BUNDLE_METADATA,
            "training": {
                "runner": "training.train_accel (lent GPU)",
                **{
                    k: config[k]
                    for k in (
                        "batch",
                        "peak_lr",
                        "bin_shares",
                        "ema_decay",
                        "landmark_weight",
                        "augmentation",
                        "final_augmentation",
                        "final_fraction",
                        "seed",
                    )
                },
                "epochs_done": last["epoch"],
                "steps": last["step"],
                "gpu_minutes": last["minutes"],
            },
            "metrics": {"aflw2000_dev_roi_readout_webp90": {k: last[k] for k in ("nme_2d", "nme_3d", "flip_average")}},
        },
    )


def main(argv: list[str] | None = None) -> int:
    if argv is None:
        import sys

        argv = sys.argv[1:]
    if argv[:1] == ["assemble"]:
        ap = argparse.ArgumentParser(description="join a lent run's weight parts into a bundle")
        ap.add_argument("folder", type=Path)
        ap.add_argument("--bundle-out", type=Path, required=True)
        a = ap.parse_args(argv[1:])
        assemble(a.folder, a.bundle_out)
        return 0
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pack", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--minutes", type=float, required=True, help="wall-clock budget, loading and evaluations included")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--width", type=float, default=1.0)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--peak-lr", type=float, default=1.5e-3)
    ap.add_argument("--bin-shares", type=float, nargs=3, default=[0.25, 0.20, 0.55])
    ap.add_argument("--augmentation", choices=tuple(AUGMENTATIONS), default="mild")
    ap.add_argument("--final-augmentation", choices=tuple(AUGMENTATIONS), default="light")
    ap.add_argument("--final-fraction", type=float, default=0.3, help="share of the steps at the final augmentation")
    ap.add_argument("--landmark-weight", type=float, default=LANDMARK_WEIGHT)
    ap.add_argument("--ema-decay", type=float, default=EMA_DECAY)
    ap.add_argument("--evals", type=int, default=10)
    ap.add_argument("--max-steps", type=int, default=10**9, help="cap on the schedule's length (smoke runs)")
    ap.add_argument("--seed", type=int, default=SEED)
    ap.add_argument("--max-part-mib", type=float, default=MAX_PART_MIB, help="largest weight file to write, MiB")
    return train(ap.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
