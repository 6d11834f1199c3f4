"""Forward pass: our jitted forward against PyTorch's, same weights, same cores, same batches.

Run: ``WORKBENCH_DATA=... python benchmarks/bench_forward.py [--models lenet1,lenet5]
[--batch-size 1000] [--repeats 5] [--layers lenet5]``. PyTorch is optional (``pip install -e
.[bench]``); without it only our times are printed.

Subject: the zoo's LeNet-1, -4, -5 (DeepXplore) and two of DeepFault's MLPs with fresh weights
(``models.create(name, seed=0)``), copied into an equivalent ``torch.nn.Sequential`` (NCHW,
the first dense layer's rows permuted so the logits agree); the 10,000 MNIST test images, in
batches of ``--batch-size``. Each side gets the images in its own layout (NHWC for us, NCHW for
PyTorch), converted before timing; our times include ``device_put`` of each batch and the logits
back to host memory, PyTorch's run under ``torch.inference_mode()`` with its default threads
(one per core), on ``--torch-device`` (``cpu``; ``cuda`` beside JAX on a GPU). Times are the
best of ``--repeats`` after one warm-up run (compilation).

``--layers`` times one model layer by layer on the same inputs: each layer alone, jitted (us)
and eager (PyTorch), fed the previous layer's real outputs: where the time goes.
"""

import argparse
import os
import time

import jax
import jax.numpy as jnp
import numpy as np

from workbench import activations, data, models

try:
    import torch
except ImportError:  # the optional "bench" extra
    torch = None


def best(fn, repeats: int) -> float:
    fn()  # compile / warm up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def ours(model, images, batch_size):
    """Our forward pass over fixed-size batches, logits in host memory."""
    graphdef, state = activations.split(model)
    forward = jax.jit(lambda state, x: activations.forward(graphdef, state, x))

    def run():
        return np.concatenate([np.asarray(forward(state, jax.device_put(images[i:i + batch_size])))
                               for i in range(0, len(images), batch_size)])

    return run


def torch_model(model):
    """An equivalent ``torch.nn.Sequential`` with the same weights (NCHW inputs)."""
    params = {name: {k: np.asarray(v) for k, v in layer.items()}
              for name, layer in jax.tree.map(np.asarray, _pure(model)).items()}
    act = {"relu": torch.nn.ReLU, "leaky": lambda: torch.nn.LeakyReLU(0.01)}
    layers, (height, width, channels), flat = [], model.input_shape, False
    for layer, name, spec in zip(model.plan, model.names, model.layer_activations):
        if layer[0] == "conv":
            _, filters, kernel, padding = layer[:4]
            conv = torch.nn.Conv2d(channels, filters, kernel, padding=padding.lower())
            conv.weight.data = torch.from_numpy(params[name]["kernel"].transpose(3, 2, 0, 1).copy())
            conv.bias.data = torch.from_numpy(params[name]["bias"].copy())
            layers += [conv, act[spec]()]
            if padding == "VALID":
                height, width = height - kernel + 1, width - kernel + 1
            channels = filters
        elif layer[0] == "pool":
            layers.append(torch.nn.MaxPool2d(2))
            height, width = height // 2, width // 2
        elif layer[0] == "dense":
            kernel = params[name]["kernel"]
            if not flat:
                layers.append(torch.nn.Flatten())
                # our rows are (h, w, c) row-major, PyTorch's flatten is (c, h, w)
                kernel = kernel.reshape(height, width, channels, -1).transpose(2, 0, 1, 3)
                kernel = kernel.reshape(height * width * channels, -1)
                flat = True
            dense = torch.nn.Linear(*kernel.shape, bias="bias" in params[name])
            dense.weight.data = torch.from_numpy(kernel.T.copy())
            if "bias" in params[name]:
                dense.bias.data = torch.from_numpy(params[name]["bias"].copy())
            layers.append(dense)
            if spec is not None:
                layers.append(act[spec]())
    return torch.nn.Sequential(*layers).eval()


def _pure(model):
    from flax import nnx  # benchmarks may use Flax; the package keeps it in the model layer

    return nnx.to_pure_dict(nnx.state(model, nnx.Param))


def theirs(net, images_nchw, batch_size, device="cpu"):
    net = net.to(device)
    images_nchw = images_nchw.to(device)

    def run():
        with torch.inference_mode():
            return np.concatenate([net(images_nchw[i:i + batch_size]).cpu().numpy()
                                   for i in range(0, len(images_nchw), batch_size)])

    return run


def by_layer(model, images, batch_size, repeats):
    """Each layer of ``model`` timed alone on the previous layer's outputs, ours and PyTorch's."""
    graphdef, state = activations.split(model)
    net = torch_model(model) if torch is not None else None
    # our layers as functions of (weights, h), applied through the merged model's submodules
    steps = []
    for layer, name, spec in zip(model.plan, model.names, model.layer_activations):
        if layer[0] in ("conv", "dense"):
            steps.append((name, spec, layer[0]))
        elif layer[0] == "pool":
            steps.append((name, None, "pool"))

    def apply(state, h, name, spec, op):
        m = activations.merge(graphdef, state)
        if op == "pool":
            return models._max_pool_2x2(h)
        if op == "dense" and h.ndim > 2:
            h = h.reshape(h.shape[0], -1)
        z = getattr(m, name)(h)
        return z if spec is None else models._activate(spec, z)

    print(f"\n{model.__class__.__name__} layer by layer, {len(images):,} images, batch "
          f"{batch_size} (seconds)")
    print(f"   {'layer':8s} {'ours':>7s} {'torch':>7s} {'ratio':>6s}")
    h = [images[i:i + batch_size] for i in range(0, len(images), batch_size)]
    t_modules = list(net) if net is not None else []
    t_h = [torch.from_numpy(np.ascontiguousarray(b.transpose(0, 3, 1, 2))) for b in h] \
        if net is not None else []
    t_index = 0
    for name, spec, op in steps:
        fn = jax.jit(lambda s, x, name=name, spec=spec, op=op: apply(s, x, name, spec, op))
        inputs = [jnp.asarray(b) for b in h]
        t_ours = best(lambda fn=fn, inputs=inputs: [fn(state, b).block_until_ready()
                                                    for b in inputs], repeats)
        h = [np.asarray(fn(state, b)) for b in inputs]
        t_theirs = float("nan")
        if net is not None:
            mods = []
            while t_index < len(t_modules):
                mod = t_modules[t_index]
                t_index += 1
                mods.append(mod)
                if isinstance(mod, (torch.nn.ReLU, torch.nn.LeakyReLU, torch.nn.MaxPool2d)):
                    break
                if isinstance(mod, torch.nn.Linear) and spec is None:
                    break
            seq = torch.nn.Sequential(*mods)

            def run_t(seq=seq, xs=t_h):
                with torch.inference_mode():
                    return [seq(b) for b in xs]

            t_theirs = best(run_t, repeats)
            t_h = run_t()
        print(f"   {name:8s} {t_ours:7.3f} {t_theirs:7.3f} {t_ours / t_theirs:6.2f}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="lenet1,lenet4,lenet5,deepfault_3x50_relu,"
                                            "deepfault_8x20_leaky")
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--torch-device", default="cpu", help="PyTorch's device (cuda on a GPU)")
    parser.add_argument("--layers", default="lenet5", help="a model to time layer by layer, "
                        "or '' for none")
    args = parser.parse_args()

    print(f"JAX {jax.__version__} on {jax.device_count()} x {jax.devices()[0].platform}, "
          f"{os.cpu_count()} cores; XLA_FLAGS={os.environ.get('XLA_FLAGS', '')!r}")
    if torch is None:
        print("PyTorch not installed (pip install -e .[bench]): timing ours only")
    else:
        print(f"PyTorch {torch.__version__}, {torch.get_num_threads()} threads")
    images = data.load("mnist", "test").images
    images_nchw = None if torch is None else torch.from_numpy(
        np.ascontiguousarray(images.transpose(0, 3, 1, 2)))
    print(f"\nforward pass, {len(images):,} MNIST test images, batch {args.batch_size} (seconds)")
    print(f"   {'model':22s} {'ours':>7s} {'torch':>7s} {'ratio':>6s} {'max |diff|':>10s}")
    for name in args.models.split(","):
        model = models.create(name, seed=0)
        model.eval()
        run = ours(model, images, args.batch_size)
        t_ours = best(run, args.repeats)
        t_theirs, diff = float("nan"), float("nan")
        if torch is not None:
            run_t = theirs(torch_model(model), images_nchw, args.batch_size, args.torch_device)
            t_theirs = best(run_t, args.repeats)
            diff = float(np.max(np.abs(run() - run_t())))
        print(f"   {name:22s} {t_ours:7.3f} {t_theirs:7.3f} {t_ours / t_theirs:6.2f} "
              f"{diff:10.1e}")
    if args.layers and args.torch_device == "cpu":
        model = models.create(args.layers, seed=0)
        model.eval()
        by_layer(model, images, args.batch_size, args.repeats)


if __name__ == "__main__":
    main()
