"""Dev check (not a test): does an imported PRNet checkpoint compute what TensorFlow computes?

Two steps in two Python environments, so that TensorFlow never enters the project's own venv:

1. ``build`` (a throwaway venv with ``tensorflow-cpu``, outside the repo) writes the official
   ``resfcn256`` graph from PRNet's ``predictor.py`` in ``tf.compat.v1`` — TF "SAME" padding, 4×4
   kernels, bias-free convs and transposed convs each followed by fused batch norm (ε = 1e-3) in
   inference mode, the residual blocks, a sigmoid head — with the official variable names, random
   weights and random batch-norm statistics; saves it with ``tf.compat.v1.train.Saver`` (format V2,
   as the official file) and stores a random input with TensorFlow's output and head logits.
2. ``compare`` (the project venv, no TensorFlow) imports that checkpoint with
   :mod:`engine.prnet_import`, runs our network on the same input and reports the largest absolute
   differences; it also reruns with every transposed-conv kernel flipped in space, to show the check
   would catch a flip convention error.

    /tmp/tfenv/bin/python -m training.tf_reference_check build --out /tmp/prnet_tf_check
    .venv/bin/python -m training.tf_reference_check compare --out /tmp/prnet_tf_check

The graph below is written from the paper/official code's description, not from engine.network,
so that the comparison tests our architecture as well as the weight import.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

PREFIX_NAME = "256_256_resfcn256_weight"
S, SIZE, SEED = 256, 16, 0  # input side; PRNet's base width `size`; random seed
BATCH = 2
ENCODER = [(2, 2), (2, 1), (4, 2), (4, 1), (8, 2), (8, 1), (16, 2), (16, 1), (32, 2), (32, 1)]  # (× size, stride)
DECODER = [
    (32, 1),
    (16, 2),
    (16, 1),
    (16, 1),
    (8, 2),
    (8, 1),
    (8, 1),
    (4, 2),
    (4, 1),
    (4, 1),
    (2, 2),
    (2, 1),
    (1, 2),
    (1, 1),
]  # then three 3-channel layers at stride 1
BN_EPS = 1e-3  # tf.contrib.layers.batch_norm default


def build(out: Path) -> None:
    import tensorflow as tf

    tf1 = tf.compat.v1
    tf1.disable_eager_execution()
    rng = np.random.default_rng(SEED)
    counts: dict[str, int] = {}

    def unique(base: str) -> str:  # TF-slim naming: Conv, Conv_1, Conv_2 … within one scope
        scope = tf1.get_variable_scope().name + "/" + base
        k = counts.get(scope, 0)
        counts[scope] = k + 1
        return base if k == 0 else f"{base}_{k}"

    def var(name: str, value: np.ndarray):
        return tf1.get_variable(name, initializer=tf.constant(value.astype(np.float32)))

    def batch_norm(x, channels: int):
        with tf1.variable_scope("BatchNorm"):
            beta = var("beta", rng.normal(0, 0.1, channels))
            gamma = var("gamma", rng.uniform(0.5, 1.5, channels))
            mean = var("moving_mean", rng.normal(0, 0.1, channels))
            variance = var("moving_variance", rng.uniform(0.5, 2.0, channels))
        y, _, _ = tf1.nn.fused_batch_norm(x, gamma, beta, mean, variance, epsilon=BN_EPS, is_training=False)
        return y

    def conv(x, cout: int, k: int, stride: int, *, bn: bool = True, act=tf.nn.relu, name: str = "Conv"):
        cin = int(x.shape[-1])
        with tf1.variable_scope(unique(name) if name == "Conv" else name):
            w = var("weights", rng.normal(0, np.sqrt(2.0 / (k * k * cin)), (k, k, cin, cout)))
            y = tf.nn.conv2d(x, w, strides=[1, stride, stride, 1], padding="SAME")
            if bn:
                y = batch_norm(y, cout)
        return act(y) if act is not None else y

    def deconv(x, cout: int, stride: int, act=tf.nn.relu):
        n, h, w_, cin = (int(d) if d is not None else d for d in x.shape)
        with tf1.variable_scope(unique("Conv2d_transpose")):
            w = var("weights", rng.normal(0, np.sqrt(2.0 / (16 * cin / stride**2)), (4, 4, cout, cin)))
            y = tf.nn.conv2d_transpose(
                x,
                w,
                output_shape=[BATCH, h * stride, w_ * stride, cout],
                strides=[1, stride, stride, 1],
                padding="SAME",
            )
            y = batch_norm(y, cout)
        return y if act is None else act(y)

    def res_block(x, cout: int, stride: int):
        with tf1.variable_scope(unique("resBlock")):
            shortcut = x
            if stride != 1 or int(x.shape[-1]) != cout:
                shortcut = conv(x, cout, 1, stride, bn=False, act=None, name="shortcut")
            y = conv(x, cout // 2, 1, 1)
            y = conv(y, cout // 2, 4, stride)
            y = conv(y, cout, 1, 1, bn=False, act=None)
            return tf.nn.relu(batch_norm(y + shortcut, cout))

    x = tf1.placeholder(tf.float32, [BATCH, S, S, 3])
    with tf1.variable_scope("resfcn256"):
        h = conv(x, SIZE, 4, 1)
        for mult, stride in ENCODER:
            h = res_block(h, mult * SIZE, stride)
        for mult, stride in DECODER:
            h = deconv(h, mult * SIZE, stride)
        h = deconv(deconv(h, 3, 1), 3, 1)
        logits = deconv(h, 3, 1, act=None)
        pos = tf.sigmoid(logits)
    image = rng.uniform(0, 1, (BATCH, S, S, 3)).astype(np.float32)
    out.mkdir(parents=True, exist_ok=True)
    with tf1.Session() as sess:
        sess.run(tf1.global_variables_initializer())
        tf1.train.Saver(tf1.global_variables()).save(sess, str(out / PREFIX_NAME), write_meta_graph=False)
        got_pos, got_logits = sess.run([pos, logits], {x: image})
    np.savez(out / "reference.npz", image=image, pos=got_pos, logits=got_logits)
    info = {
        "tensorflow": tf.__version__,
        "variables": len(tf1.global_variables()),
        "params": int(sum(np.prod(v.shape) for v in tf1.global_variables())),
    }
    (out / "build.json").write_text(json.dumps(info, indent=2))
    print(json.dumps(info))


def compare(out: Path) -> dict:
    import torch

    from engine.model import PositionMapNet
    from engine.prnet_import.importer import INPUT_SIZE, OUTPUT_SCALE, official_state_dict

    ref = np.load(out / "reference.npz")
    x = torch.from_numpy(ref["image"]).permute(0, 3, 1, 2).contiguous()
    state = official_state_dict(out / PREFIX_NAME)
    result = {}
    for label, flip in (("as_imported", False), ("deconv_kernels_flipped", True)):
        model = PositionMapNet(input_size=INPUT_SIZE, width=1.0, output_kind="sigmoid_scale", output_scale=OUTPUT_SCALE)
        model.load_state_dict(
            {k: (v.flip(-1, -2) if flip and k.endswith("deconv.weight") else v) for k, v in state.items()}, strict=True
        )
        net = model.eval().net
        with torch.no_grad():
            h = net.decoder[:-1](net.encoder(net.stem(x)))
            head = net.decoder[-1]
            logits = head[1](head[0](h))
            pos_px = model(x)
        ours_logits = logits.permute(0, 2, 3, 1).numpy()
        ours_sigmoid = (pos_px / (OUTPUT_SCALE * INPUT_SIZE)).permute(0, 2, 3, 1).numpy()
        result[label] = {
            "max_abs_diff_sigmoid": float(np.abs(ours_sigmoid - ref["pos"]).max()),
            "max_abs_diff_logits": float(np.abs(ours_logits - ref["logits"]).max()),
            "max_abs_diff_position_px": float(np.abs(ours_sigmoid - ref["pos"]).max() * OUTPUT_SCALE * INPUT_SIZE),
            "logit_range": [float(ref["logits"].min()), float(ref["logits"].max())],
            "sigmoid_std": float(ref["pos"].std()),
        }
    print(json.dumps(result, indent=2))
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("step", choices=("build", "compare"))
    ap.add_argument("--out", type=Path, default=Path("/tmp/prnet_tf_check"), help="scratch folder (outside the repo)")
    args = ap.parse_args(argv)
    build(args.out) if args.step == "build" else compare(args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
