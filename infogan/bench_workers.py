"""What a benchmark worker times (see infogan.benchmark): each function builds one configuration and returns
a callable that runs one training iteration of it, or, for `matmul`, the machine's fp32 GFLOP/s."""

import time

import numpy as np

from infogan.benchmark import CONVOLUTIONS, LATENT, MATMUL_N

TRAIN_IMAGES = 4500  # as many as the offline sample trains on


def _paddle_setup(job):
    import paddle

    from infogan.config import TrainConfig
    from infogan.data import batches
    from infogan.latent import LatentSpec

    paddle.enable_static()
    paddle.seed(0)
    # The paper's iteration, which the PyTorch twin runs too; the "clustering_term" option adds the default term.
    clustering = TrainConfig.lambda_real if job["options"].get("clustering_term") else 0.0
    cfg = TrainConfig(batch_size=job["batch"], lambda_real=clustering)
    images = np.random.default_rng(0).random((TRAIN_IMAGES, 1, 28, 28), dtype=np.float32)
    return paddle, cfg, LatentSpec.from_config(cfg), batches(images, cfg.batch_size, 0, 0)


def paddle(job):
    """The project's training iteration: the two step Programs, run as scripts/train.py runs them."""
    paddle, cfg, spec, reader = _paddle_setup(job)
    from infogan import programs as programs_module
    from infogan.trainer import alternate, clustering_views

    options = job["options"]
    if options.get("adam_per_parameter"):
        adam = programs_module._adam
        programs_module._adam = lambda hp, lr: adam(hp, lr, multi_tensor=False)
    if options.get("separate_d_passes"):
        _separate_d_passes(paddle)
    if options.get("broadcast_bias"):
        from infogan.nets import ChannelBias

        ChannelBias.forward = lambda self, x: self.layer(x) + self.bias.reshape([1, -1, 1, 1])
    programs = programs_module.build_train_programs(spec, cfg)
    exe = paddle.static.Executor(paddle.CPUPlace())
    exe.run(programs.startup)
    rng = np.random.default_rng(0)
    stats = not options.get("no_stats", False)

    def iteration():
        real = next(reader)
        real_aug = clustering_views(cfg, real, rng)
        return alternate(exe, programs, spec.sample(rng, cfg.batch_size), real, False, stats, real_aug=real_aug)

    return iteration


def _separate_d_passes(paddle):
    """The D step as it was: the real and the fake batch through D one after the other, so that each of
    D's weights gets two gradients, summed."""
    from infogan.nets import TrunkAndHead

    stacked = TrunkAndHead.forward

    def separate(self, images, groups=1):
        passes = [stacked(self, part) for part in paddle.split(images, groups)]
        return tuple(paddle.concat(parts) for parts in zip(*passes, strict=True))

    TrunkAndHead.forward = separate


def reader(job):
    """What feeds one iteration: a shuffled batch of real images and a batch of latent codes."""
    _, cfg, spec, reader = _paddle_setup(job)
    rng = np.random.default_rng(0)
    return lambda: (next(reader), spec.sample(rng, cfg.batch_size))


def paddle_one_program(job):
    """Both updates in ONE Program: G's fakes feed D's loss inside it, both optimizers in it."""
    paddle, cfg, spec, reader = _paddle_setup(job)
    from infogan.nets import Discriminator, Generator, QHead
    from infogan.programs import _adam, _bce, _image_feed, _latent_feeds, _trainable

    program, startup = paddle.static.Program(), paddle.static.Program()
    with paddle.static.program_guard(program, startup):
        real = _image_feed("real")
        z, c_cat, c_cont = _latent_feeds(spec)
        fake = Generator(spec.input_dim)(paddle.concat([z, c_cat, c_cont], axis=1))
        disc = Discriminator()
        d_logits, _ = disc(paddle.concat([real, fake.detach()]), groups=2)  # as the D step: one stacked pass
        real_logit, fake_logit_d = paddle.split(d_logits, 2)
        fake_logit, features = disc(fake)
        li_cat, li_cont = spec.logli(c_cat, c_cont, QHead(spec.q_dim, disc.features)(features))
        d_loss = _bce(real_logit, 1.0) + _bce(fake_logit_d, 0.0)
        g_loss = _bce(fake_logit, 1.0) - cfg.lambda_cat * li_cat - cfg.lambda_cont * li_cont
        _adam(cfg, cfg.lr_d).minimize(d_loss, parameters=_trainable(program, "D_"))
        _adam(cfg, cfg.lr_g).minimize(g_loss, parameters=_trainable(program, ("G_", "Q_")))
    exe = paddle.static.Executor(paddle.CPUPlace())
    exe.run(startup)
    rng = np.random.default_rng(0)

    def step():
        feed = dict(spec.sample(rng, cfg.batch_size), real=next(reader))
        exe.run(program, feed=feed, fetch_list=[d_loss, g_loss])

    return step


def torch(job):
    """The same networks, losses and Adam settings in PyTorch eager, alternating the same two steps."""
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    torch.manual_seed(0)
    lrelu = lambda: nn.LeakyReLU(0.1)  # noqa: E731
    gen = nn.Sequential(
        nn.Linear(LATENT, 1024, bias=False), nn.BatchNorm1d(1024), nn.ReLU(),
        nn.Linear(1024, 6272, bias=False), nn.BatchNorm1d(6272), nn.ReLU(), nn.Unflatten(1, (128, 7, 7)),
        nn.ConvTranspose2d(128, 64, 4, 2, 1, bias=False), nn.BatchNorm2d(64), nn.ReLU(),
        nn.ConvTranspose2d(64, 1, 4, 2, 1), nn.Sigmoid(),
    )  # fmt: skip
    trunk = nn.Sequential(
        nn.Conv2d(1, 64, 4, 2, 1), lrelu(), nn.Conv2d(64, 128, 4, 2, 1, bias=False), nn.BatchNorm2d(128), lrelu(),
        nn.Flatten(), nn.Linear(6272, 1024, bias=False), nn.BatchNorm1d(1024), lrelu(),
    )  # fmt: skip
    d_head = nn.Linear(1024, 1)
    q_head = nn.Sequential(nn.Linear(1024, 128, bias=False), nn.BatchNorm1d(128), lrelu(), nn.Linear(128, 12))
    d_params = list(trunk.parameters()) + list(d_head.parameters())
    opt_d = torch.optim.Adam(d_params, lr=2e-4, betas=(0.5, 0.999))
    opt_g = torch.optim.Adam(list(gen.parameters()) + list(q_head.parameters()), lr=1e-3, betas=(0.5, 0.999))
    b = job["batch"]
    real = torch.rand(TRAIN_IMAGES, 1, 28, 28)
    bce = F.binary_cross_entropy_with_logits
    ones, zeros = torch.ones(b, 1), torch.zeros(b, 1)

    def step():
        idx = torch.randint(0, TRAIN_IMAGES, (b,))
        cat = torch.randint(0, 10, (b,))
        cont = torch.rand(b, 2) * 2 - 1
        latent = torch.cat([torch.rand(b, 62) * 2 - 1, F.one_hot(cat, 10).float(), cont], 1)
        for p in d_params:
            p.requires_grad_(False)
        fake = gen(latent)
        features = trunk(fake)
        q = q_head(features)
        li = -F.cross_entropy(q[:, :10], cat) - 0.5 * ((q[:, 10:] - cont) ** 2).sum(1).mean()
        opt_g.zero_grad()
        (bce(d_head(features), ones) - li).backward()
        opt_g.step()
        for p in d_params:
            p.requires_grad_(True)
        fake = fake.detach()
        d_loss = bce(d_head(trunk(real[idx])), ones) + bce(d_head(trunk(fake)), zeros)
        opt_d.zero_grad()
        d_loss.backward()
        opt_d.step()

    torch.set_num_threads(job["options"]["threads"])
    return step


def paddle_layer(job):
    """One convolution of the networks, forward and both gradients, in a static Program of its own: with
    Paddle's kernel, or with the option `batched`, with infogan.batched_conv's."""
    import paddle
    import paddle.nn.functional as F

    from infogan import batched_conv

    paddle.enable_static()
    batched = job["options"].get("batched")
    kernels = (batched_conv.conv2d, batched_conv.conv2d_transpose) if batched else (F.conv2d, F.conv2d_transpose)
    shape, weight_shape, convolve = _layer(job, *kernels)
    program, startup = paddle.static.Program(), paddle.static.Program()
    with paddle.static.program_guard(program, startup):
        x = paddle.static.data("x", [job["batch"], *shape], "float32")
        x.stop_gradient = False
        loss = paddle.sum(convolve(x, paddle.create_parameter(list(weight_shape), "float32"), stride=2, padding=1))
        paddle.static.gradients([loss], [x])  # and the weight's: a program runs every op it holds
    exe = paddle.static.Executor(paddle.CPUPlace())
    exe.run(startup)
    feed = {"x": np.random.default_rng(0).random((job["batch"], *shape), dtype=np.float32)}
    return lambda: exe.run(program, feed=feed, fetch_list=[loss])


def torch_layer(job):
    """The same convolution in PyTorch eager: forward, then backward to the input and the weight."""
    import torch
    import torch.nn.functional as F

    torch.set_num_threads(job["options"]["threads"])
    shape, weight_shape, convolve = _layer(job, F.conv2d, F.conv_transpose2d)
    x = torch.rand(job["batch"], *shape, requires_grad=True)
    weight = torch.rand(*weight_shape, requires_grad=True)
    return lambda: convolve(x, weight, stride=2, padding=1).sum().backward()


def _layer(job, conv, deconv):
    """(input shape, weight shape, the library's function for it) of the job's layer."""
    _, operation, shape, weight_shape = next(c for c in CONVOLUTIONS if c[0] == job["options"]["layer"])
    return shape, weight_shape, conv if operation == "conv" else deconv


def matmul(job):
    """fp32 GFLOP/s of numpy's and of Paddle's matmul, each timed in a loop of its own (a library's idle
    threads spin for a while after a call and would slow the other), per call the better of the two."""
    import paddle

    a = np.random.default_rng(0).random((MATMUL_N, MATMUL_N), dtype=np.float32)
    x = paddle.to_tensor(a)
    rates = []
    for call in (lambda: a @ a, lambda: paddle.matmul(x, x).numpy()):
        rates.append([2 * MATMUL_N**3 / s / 1e9 for s in seconds(call, job["steps"], warmup=1)])
    return [max(pair) for pair in zip(*rates, strict=True)]


def seconds(call, n, warmup):
    """The wall time of each of n calls, after `warmup` untimed ones."""
    for _ in range(warmup):
        call()
    times = []
    for _ in range(n):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return times
