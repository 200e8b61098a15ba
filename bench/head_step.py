"""Where a cached-feature trial's time goes: the head's per-step kernels, and the floor they set.

    python bench/head_step.py [--features 32000 --batch 64 --train 2000 --validation 1000
        --epochs 20 --units 64 128 256 512 --out FILE.json]

A feature-extraction trial on cached features is Flatten -> Dense(units) -> Dense(1) trained in
`batch`-image steps. Each step needs the forward matmul, the weight-gradient matmul and the
optimizer update over all first-layer weights; each validation batch needs the forward matmul.
Their sum over a trial is what the trial costs with no framework overhead at all.

Cost: 4 kernels x 21 calls for each of --units, each call growing with features x units (x batch
for the matmuls); --train, --validation and --epochs only scale the computed floor, not the run.
"""

from __future__ import annotations

import time

from _common import EPOCHS, OPTIONAL, add_common, make_parser, write_json


def ms(fn, reps: int = 20) -> float:
    fn()
    start = time.perf_counter()
    for _ in range(reps):
        fn()
    return (time.perf_counter() - start) / reps * 1e3


def kernels(features: int, batch: int, units: int) -> dict:
    import keras
    import tensorflow as tf

    from harness.training._optimizers import FusedAdam

    x, delta = tf.random.normal((batch, features)), tf.random.normal((batch, units))
    w = keras.Variable(tf.random.normal((features, units)) * 0.01)
    grad = tf.random.normal((features, units)) * 1e-3
    fused, plain = FusedAdam(learning_rate=1e-4), keras.optimizers.Adam(learning_rate=1e-4)
    fused.build([w])
    plain.build([w])
    return {"forward_ms": ms(tf.function(lambda: tf.matmul(x, w))),
            "weight_grad_ms": ms(tf.function(lambda: tf.matmul(x, delta, transpose_a=True))),
            "fused_adam_ms": ms(tf.function(lambda: fused.apply([grad], [w]))),
            "keras_adam_ms": ms(tf.function(lambda: plain.apply([grad], [w])))}


def main(argv=None) -> dict:
    p = make_parser(__doc__)
    p.add_argument("--features", type=int, default=32000, help="MobileNetV2 at 150 px: 5 x 5 x 1280")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--train", type=int, default=2000)
    p.add_argument("--validation", type=int, default=1000)
    add_common(p, epochs=EPOCHS)
    p.add_argument("--units", type=int, nargs="+", default=[64, 128, 256, 512])
    add_common(p, out=OPTIONAL)
    args = p.parse_args(argv)
    steps, val_steps = -(-args.train // args.batch), -(-args.validation // args.batch)
    report = {}
    for units in args.units:
        k = kernels(args.features, args.batch, units)
        step = k["forward_ms"] + k["weight_grad_ms"] + k["fused_adam_ms"]
        k["trial_floor_s"] = args.epochs * (steps * step + val_steps * k["forward_ms"]) / 1e3
        report[units] = k
        print(f"units {units:>4}: forward {k['forward_ms']:.1f} ms, weight gradient {k['weight_grad_ms']:.1f} ms, "
              f"Adam fused {k['fused_adam_ms']:.1f} ms (Keras {k['keras_adam_ms']:.1f} ms) per step; "
              f"{args.epochs}-epoch trial floor {k['trial_floor_s']:.1f} s")
    if args.out:
        write_json(args.out, report)
    return report


if __name__ == "__main__":
    main()
