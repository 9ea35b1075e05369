"""Train the default model: ResFCN on refined teacher labels, built for a 2-core CPU.

Recipe (see docs/training-journal.md for the measured effect of each choice):
* output parameterised as a residual to the mean training label, last BN gain started small,
  so step 0 already predicts about the mean face;
* loss = Σ w·‖p̂ − p‖₂ / Σ w over the output map (w = 16/4/3/0, paper Fig. 4), the un-squared
  distance, which is what NME measures;
* each epoch draws its crops yaw-stratified (training.sampling: 40/30/30 % of the steps for
  the |yaw| bins [0,30], (30,60], (60,90]) since run 6; ``--sampling uniform`` is runs 1–5's order;
* AdamW, linear warm-up then cosine decay over the planned epochs; bf16 autocast, in the memory
  format that is fastest for training on this CPU (:func:`training_memory_format`); data made in
  the main process from crops held in RAM (no worker competes for the 2 cores);
* an exponential moving average of the weights (training.ema, decay EMA_DECAY) is kept
  since run 7, evaluated beside the raw network each epoch and exported when on;
* resumable: a checkpoint every CHECKPOINT_EVERY steps and at every epoch end; ``--resume`` continues
  from it with the same schedule; the dev NME (one pass, and flip-averaged as shipped) is logged per
  epoch and a bundle exported each time.

Run: ``python -m training.train --run runs/default --epochs 12`` (then ``--resume``).
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
import torch
from scipy import ndimage

from engine.bundle import save_bundle
from engine.device import cpu_flags, cpu_has_native_bf16
from engine.layout import default_layout
from engine.model import ARCHITECTURES, PositionMapNet, crops_to_input
from engine.readout import W_LANDMARK

from .bfm import load_basis, load_topology
from .dataset import AUGMENTATIONS, FLIP_PROB, build_label_basis, make_batch
from .ema import WeightAverage
from .evaluate import DevSet, evaluate_model
from .labels import read_label_record
from .paths import default_cache_dir, shared_data_dir
from .sampling import BIN_SHARES, epoch_order, sampling_probabilities
from .widen import widen

SEED = 20261125
DEFAULT_NAME = "prnet-blender-default"
FAST_NAME = "prnet-blender-fast"  # a LightFCN bundle (the fast model)
INPUT_SIZE = 128  # the training crops are 120 px: a 256 input would only see upsampled pixels
WIDTH = 0.5  # measured ≈1.8× faster per step than width 1 (Intel AMX: 17 vs 30 ms/image; AMD Zen 4: 27 vs 45)
OUTPUT_SCALE = 2.0  # residual span = ±1.0 × S around the mean: rotations of ±45° stay in range
BATCH = 16
PEAK_LR = 1e-3
WARMUP_STEPS = 500
FINAL_LR_FRACTION = 0.01
WEIGHT_DECAY = 1e-4
# Loss weight of the 2×2 read-out pixels of each of the 68 landmarks: 256 gives them 65 % of the loss
# (the paper's 16: 10.6 %, though the NME measures nothing else); docs/training-journal.md, run 23.
LANDMARK_WEIGHT = 256.0
# The exported model's crop: the plain roi (engine.crop); a tighter crop helps only on boxes drawn
# from true landmarks, not on the detector path users get (docs/decisions.md, "Crop zoom").
CROP_ZOOM = 1.0
AUGMENTATION = "mild"  # training.dataset.AUGMENTATIONS
EMA_DECAY = 0.999  # averages the last ≈1000 steps, about one epoch of 16-crop batches
CHECKPOINT_EVERY = 400  # steps (≈2 min)
MEAN_SAMPLES = 2000  # training labels averaged into the mean map
BUNDLE_METADATA = {
    "licence": "research / non-commercial use only (trained from AFLW, AFLW2000-3D-protocol labels, "
    "the Basel Face Model via 3DDFA_V2; see weights/README.md)",
    "training_data": "aflw_train: 19,080 AFLW crops; labels = 3DDFA_V2 MobileNet-0.5 teacher fits refined "
    "toward the 21 AFLW human points",
    "input": "RGB crop of the square roi box, values / 255",
    # trained on column-flipped maps, so the mirrored crop's map is as good as the direct one; shift
    # averaging (engine.passes.SHIFT_FRACTION) lowers the error of every bundle measured
    "inference": {"flip_average": FLIP_PROB > 0, "crop_zoom": CROP_ZOOM, "shift_average": True},
}


class ThreadTuner:
    """Pick torch's intra-op thread count by measurement, again every RETUNE_EVERY steps.

    On 2 cores, 2 threads are ≈1.7× faster than 1 when training runs alone, but ≈7× slower when any
    other busy process takes a core (the OpenMP threads wait on each other), so the best choice
    changes while a session works beside a run.
    """

    RETUNE_EVERY = 200  # steps (≈1 min): other processes come and go quickly
    PROBE_STEPS = 4  # timed steps per candidate (the first is discarded)

    def __init__(self, max_threads: int) -> None:
        self.candidates = sorted({1, max_threads})
        self.times: dict[int, list[float]] = {}
        self.current = max_threads

    def before_step(self, step: int) -> None:
        phase = step % self.RETUNE_EVERY
        probe_len = self.PROBE_STEPS * len(self.candidates)
        if phase < probe_len:
            if phase == 0 or not self.times:  # a resumed run may start inside a probe window
                self.times = {c: [] for c in self.candidates}
            self.current = self.candidates[phase // self.PROBE_STEPS]
        elif phase == probe_len and self.times:
            self.current = min(self.times, key=lambda c: float(np.median(self.times[c][1:] or [1e9])))
        torch.set_num_threads(self.current)

    def after_step(self, step: int, seconds: float) -> None:
        if step % self.RETUNE_EVERY < self.PROBE_STEPS * len(self.candidates):
            self.times[self.current].append(seconds)


def training_precision(cpuinfo: str | None = None) -> torch.dtype | None:
    """bf16 autocast where the CPU computes bf16 natively (engine.device.cpu_has_native_bf16), else
    None (fp32): on an Intel Ice Lake without it, bf16 autocast made a LightFCN step 1.7× slower."""
    return torch.bfloat16 if cpu_has_native_bf16(cpuinfo) else None


def training_memory_format(cpuinfo: str | None = None) -> torch.memory_format:
    """channels_last where the CPU has AMX or training runs in fp32, NCHW elsewhere — all measured,
    for training steps.

    Intel with AMX-bf16: channels_last is many times faster (NCHW falls off oneDNN's fast path).
    AMD Zen 4 (AVX-512 bf16, no AMX), torch 2.13: NCHW is ≈1.2× faster per bf16 training step, and the
    channels_last backward of a strided 1×1 conv with 8 input channels (width 0.5's first block)
    corrupts the heap. Intel Ice Lake (fp32): channels_last ≈1.5× faster (LightFCN). Inference is
    faster in channels_last on all three (engine.bundle uses it).
    """
    flags = cpu_flags(cpuinfo)
    if "amx_bf16" in flags or training_precision(cpuinfo) is None:
        return torch.channels_last
    return torch.contiguous_format


def lr_at(step: int, total: int, peak: float = PEAK_LR) -> float:
    if step < WARMUP_STEPS:
        return peak * (step + 1) / WARMUP_STEPS
    t = min(1.0, (step - WARMUP_STEPS) / max(1, total - WARMUP_STEPS))
    return peak * (FINAL_LR_FRACTION + (1 - FINAL_LR_FRACTION) * 0.5 * (1 + math.cos(math.pi * t)))


def landmark_weighted(weights: np.ndarray, landmark_weight: float) -> np.ndarray:
    """(s, s) loss weights with the landmark read-out pixels (weight W_LANDMARK) set to ``landmark_weight``."""
    if not landmark_weight > 0:
        raise ValueError(f"landmark weight must be positive, got {landmark_weight}")
    return np.where(weights == W_LANDMARK, np.float32(landmark_weight), weights).astype(np.float32)


def at_input_size(model: PositionMapNet, size: int) -> PositionMapNet:
    """The same (fully convolutional) network for ``size``² crops: every weight of ``model``, and a
    zero mean map at the new size for the caller to fill (the residual's span scales with the size)."""
    out = PositionMapNet(
        input_size=size,
        width=model.net.width,
        output_kind=model.output_kind,
        output_scale=model.output_scale,
        arch=model.arch,
    )
    state = {k: v for k, v in model.state_dict().items() if k != "mean_map"}
    missing, unexpected = out.load_state_dict(state, strict=False)
    if unexpected or set(missing) != {"mean_map"}:
        raise ValueError(f"cannot move the network to input {size}: missing {missing}, unexpected {unexpected}")
    return out.train(model.training)


def mean_map(crops: np.ndarray, params: np.ndarray, lb, rng: np.random.Generator) -> torch.Tensor:
    idx = rng.choice(len(params), size=min(MEAN_SAMPLES, len(params)), replace=False)
    _, targets = make_batch(crops[idx], params[idx], lb, rng, augment=None)
    return mean_map_buffer(targets.mean(axis=0), lb)


def mean_map_buffer(mean_label: np.ndarray, lb) -> torch.Tensor:
    """(s, s, 3) mean training label → the model's (1, 3, s, s) ``mean_map``: outside the labelled
    pixels the nearest labelled value (smooth, never read)."""
    _, (r, c) = ndimage.distance_transform_edt(~(lb.weights > 0), return_indices=True)
    m = mean_label[r, c]
    return torch.from_numpy(np.ascontiguousarray(m.transpose(2, 0, 1)))[None].float()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", type=Path, required=True, help="run folder (checkpoints, log)")
    ap.add_argument("--epochs", type=int, default=12, help="planned epochs: the LR schedule spans them")
    ap.add_argument("--stop-after-min", type=float, default=1e9, help="leave after this many minutes (resumable)")
    ap.add_argument("--labels", type=Path, default=default_cache_dir() / "labels")
    ap.add_argument("--train-data", type=Path, default=shared_data_dir() / "aflw_train", help="for yaw.npy")
    ap.add_argument(
        "--sampling",
        choices=("yaw", "uniform"),
        default="yaw",
        help="yaw: each epoch draws its crops so the |yaw| bins take --bin-shares of the steps "
        "(training.sampling); uniform: a permutation of all crops (runs 1–5)",
    )
    ap.add_argument(
        "--bin-shares",
        type=float,
        nargs=3,
        default=list(BIN_SHARES),
        metavar=("FRONTAL", "HALF", "PROFILE"),
        help=f"with --sampling yaw: share of the draws for |yaw| [0,30], (30,60], (60,90] (default {BIN_SHARES})",
    )
    ap.add_argument("--dev", type=Path, default=shared_data_dir() / "aflw2000_dev")
    ap.add_argument("--bundle-out", type=Path, default=None, help="export a bundle here after each epoch")
    ap.add_argument("--peak-lr", type=float, default=PEAK_LR, help="peak learning rate (lower for a warm restart)")
    ap.add_argument("--resume", action="store_true", help="continue runs/…/checkpoint.pt (optimizer included)")
    ap.add_argument(
        "--init-from",
        type=Path,
        default=None,
        help="start from a bundle's weights (e.g. weights/default) with a fresh optimizer and schedule",
    )
    ap.add_argument(
        "--arch",
        choices=tuple(ARCHITECTURES),
        default=None,
        help="network of a new run (default ResFCN; LightFCN: the fast model, engine.light_network)",
    )
    ap.add_argument(
        "--name",
        default=None,
        help=f"exported bundle's name (default {DEFAULT_NAME!r}, or {FAST_NAME!r} for a LightFCN)",
    )
    ap.add_argument(
        "--width",
        type=float,
        default=None,
        help=f"channel width of a new network (default {WIDTH}); with --init-from, a larger width than "
        "the bundle's widens its network without changing its output (training.widen)",
    )
    ap.add_argument(
        "--input-size",
        type=int,
        default=None,
        help=f"input (= output map) size of a new network (default {INPUT_SIZE}); with --init-from, another "
        "size than the bundle's starts a network of that size from its weights (fully convolutional; the "
        "mean map is made anew at that size)",
    )
    ap.add_argument(
        "--ema-decay",
        type=float,
        default=EMA_DECAY,
        help="decay of the weight average that is evaluated and exported (0: off, export the raw network)",
    )
    ap.add_argument(
        "--landmark-weight",
        type=float,
        default=LANDMARK_WEIGHT,
        help=f"loss weight of the landmark read-out pixels (paper: {W_LANDMARK:g}; eyes/nose/mouth 4, face 3)",
    )
    ap.add_argument(
        "--augmentation",
        choices=tuple(AUGMENTATIONS),
        default=AUGMENTATION,
        help="strength of the crop augmentation (training.dataset.AUGMENTATIONS: paper = runs 1–2, "
        f"mild = runs 3–11, light = run 12, narrow = run 13, light-stretch = run 16; default {AUGMENTATION})",
    )
    ap.add_argument("--threads", type=int, default=torch.get_num_threads(), help="most intra-op threads to use")
    args = ap.parse_args(argv)
    t_start = time.time()
    torch.manual_seed(SEED)
    rng = np.random.default_rng(SEED)
    args.run.mkdir(parents=True, exist_ok=True)

    keep = np.flatnonzero(np.load(args.labels / "keep.npy"))
    crops = np.load(args.labels / "crops_bgr.npy")[keep][..., ::-1]  # BGR → RGB view, trusted labels only
    params = np.load(args.labels / "params_refined.npy")[keep]
    label_record = read_label_record(args.labels)
    if args.sampling == "yaw":
        draw_p = sampling_probabilities(np.load(args.train_data / "yaw.npy")[keep], tuple(args.bin_shares))

    def order_for(epoch: int) -> np.ndarray:
        if args.sampling == "yaw":
            return epoch_order(draw_p, SEED + epoch)
        return np.random.default_rng(SEED + epoch).permutation(len(params))

    layout = default_layout()
    ckpt_path = args.run / "checkpoint.pt"
    ck = None
    resized = False  # a bundle's network moved to another input size: its mean map is made anew
    if args.resume and ckpt_path.is_file():
        ck = torch.load(ckpt_path, map_location="cpu", weights_only=False)  # our own file: optimizer + rng
    if ck is None and args.init_from is not None:
        from engine.bundle import load_bundle

        model = load_bundle(args.init_from).build_model("cpu").train()  # its width, its input size
        if args.width is not None and args.width != model.net.width:
            if model.arch != "ResFCN":
                raise SystemExit(f"--width widens a ResFCN only; {args.init_from} holds a {model.arch}")
            model = widen(model, args.width)
        resized = args.input_size is not None and args.input_size != model.input_size
        if resized:
            model = at_input_size(model, args.input_size)
    else:
        arch = ck.get("arch", "ResFCN") if ck else (args.arch or "ResFCN")
        model = PositionMapNet(
            input_size=ck.get("input_size", INPUT_SIZE) if ck else (args.input_size or INPUT_SIZE),
            width=ck.get("width", WIDTH) if ck else (args.width or (WIDTH if arch == "ResFCN" else 1.0)),
            output_kind="mean_residual",
            output_scale=OUTPUT_SCALE,
            arch=arch,
        )
    lb = build_label_basis(load_topology(), load_basis(), layout, model.input_size)
    weights = torch.from_numpy(landmark_weighted(lb.weights, args.landmark_weight))
    dev = DevSet.load(args.dev, model.input_size, CROP_ZOOM)
    opt = torch.optim.AdamW(model.parameters(), lr=PEAK_LR, weight_decay=WEIGHT_DECAY)
    steps_per_epoch = len(params) // BATCH
    total = steps_per_epoch * args.epochs
    step, cpu_seconds = 0, 0.0
    if ck is not None:
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["opt"])
        step, cpu_seconds = ck["step"], ck["cpu_seconds"]
        rng.bit_generator.state = ck["rng"]
        torch.set_rng_state(ck["torch_rng"])
    elif args.init_from is None:
        model.mean_map.copy_(mean_map(np.asarray(crops), params, lb, rng))
        model.init_near_mean()
    elif resized:
        model.mean_map.copy_(mean_map(np.asarray(crops), params, lb, rng))
    memory_format = training_memory_format()
    amp_dtype = training_precision()
    fast = model.arch == "LightFCN"
    name = args.name or (FAST_NAME if fast else DEFAULT_NAME)
    inference = {**BUNDLE_METADATA["inference"], "shift_average": not fast}
    model = model.to(memory_format=memory_format).train()
    ema = WeightAverage(model, args.ema_decay) if args.ema_decay > 0 else None
    if ema is not None and ck is not None and "ema" in ck:
        ema.load_state_dict(ck["ema"])

    def dev_figures(net: torch.nn.Module) -> dict:
        """Dev NME of one pass, with the flip-averaged figures (as shipped) under "flip_average"."""
        figures = evaluate_model(net, dev, layout)
        figures["flip_average"] = evaluate_model(net, dev, layout, flip_average=True)
        return figures

    def save_checkpoint() -> None:
        tmp = ckpt_path.with_suffix(".tmp")
        torch.save(
            {
                "model": model.state_dict(),
                "opt": opt.state_dict(),
                "step": step,
                "cpu_seconds": cpu_seconds + time.time() - t_start,
                "rng": rng.bit_generator.state,
                "torch_rng": torch.get_rng_state(),
                "epochs": args.epochs,
                "width": model.net.width,
                "input_size": model.input_size,
                "arch": model.arch,
                **({"ema": ema.state_dict()} if ema is not None else {}),
            },
            tmp,
        )
        tmp.replace(ckpt_path)

    augmentation = AUGMENTATIONS[args.augmentation]
    tuner = ThreadTuner(args.threads)
    log = open(args.run / "log.jsonl", "a", encoding="utf-8")
    order = order_for(step // steps_per_epoch)
    running = []
    while step < total:
        epoch, i = divmod(step, steps_per_epoch)
        if i == 0:
            order = order_for(epoch)
        tuner.before_step(step)
        t_step = time.perf_counter()
        idx = np.sort(order[i * BATCH : (i + 1) * BATCH])
        images, targets = make_batch(np.asarray(crops[idx]), params[idx], lb, rng, augment=augmentation)
        for g in opt.param_groups:
            g["lr"] = lr_at(step, total, args.peak_lr)
        with torch.autocast("cpu", dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None):
            pred = model(crops_to_input(images, memory_format=memory_format))
        # NHWC on both sides: the gradient then reaches a channels_last network channels_last
        err = torch.linalg.vector_norm(pred.float().permute(0, 2, 3, 1) - torch.from_numpy(targets), dim=-1)
        loss = (err * weights).sum() / (weights.sum() * len(images))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if ema is not None:
            ema.update(model)
        running.append(loss.item())
        tuner.after_step(step, time.perf_counter() - t_step)
        step += 1
        if step % 100 == 0:
            print(
                f"step {step}/{total} epoch {epoch} loss {np.mean(running[-100:]):.3f} px "
                f"lr {lr_at(step, total, args.peak_lr):.2e} threads {tuner.current} {time.time() - t_start:.0f} s",
                flush=True,
            )
        out_of_time = (time.time() - t_start) / 60 > args.stop_after_min
        if step % CHECKPOINT_EVERY == 0 or step % steps_per_epoch == 0 or out_of_time:
            save_checkpoint()
        if step % steps_per_epoch == 0:
            model.eval()
            metrics = dev_figures(model)
            model.train()
            if ema is not None:
                metrics["ema"] = dev_figures(ema.module)
            rec = {
                "epoch": step // steps_per_epoch,
                "step": step,
                "loss_px": float(np.mean(running)),
                "cpu_minutes": (cpu_seconds + time.time() - t_start) / 60,
                **metrics,
            }
            running = []
            log.write(json.dumps(rec) + "\n")
            log.flush()
            print(json.dumps(rec), flush=True)
            if args.bundle_out:
                save_bundle(
                    args.bundle_out,
                    name=name,
                    model=ema.module if ema is not None else model,
                    layout=layout,
                    metadata={
                        **BUNDLE_METADATA,
                        "inference": inference,
                        "training": {
                            "sampling": args.sampling,
                            "bin_shares": list(args.bin_shares),
                            "ema_decay": args.ema_decay,
                            "landmark_weight": args.landmark_weight,
                            "augmentation": args.augmentation,
                            "precision": "bf16" if amp_dtype is not None else "fp32",
                            "epochs_done": rec["epoch"],
                            "steps": step,
                            "cpu_minutes": round(rec["cpu_minutes"], 1),
                        },
                        "metrics": {"aflw2000_dev_roi": metrics["ema"] if ema is not None else metrics},
                        **({"labels": label_record} if label_record is not None else {}),
                    },
                )
        if out_of_time:
            print("stopping: time budget reached (resume with --resume)", flush=True)
            break
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
