"""What a benchmark worker process times (see benchmarks.step): each function builds one configuration
and returns a callable that runs one iteration of it, or, for `matmul`, the machine's fp32 GFLOP/s.

`python -m benchmarks.workers JOB` runs one job (JSON) and prints its timings as JSON on the last line.
"""

import json
import sys
import time

import numpy as np

MATMUL_N = 1024
TRAIN_IMAGES = 4500  # as many as the offline sample trains on
# The convolutions --layers times one by one: (layer, operation, input shape, weight shape), the paper's MNIST nets'.
CONVOLUTIONS = [
    ("conv1", "conv", (1, 28, 28), (64, 1, 4, 4)),
    ("conv2", "conv", (64, 14, 14), (128, 64, 4, 4)),
    ("deconv1", "deconv", (128, 7, 7), (128, 64, 4, 4)),
    ("deconv2", "deconv", (64, 14, 14), (64, 1, 4, 4)),
]


class Setting:
    """The job's settings, compute options and networks, and an endless feed of random real batches."""

    def __init__(self, job):
        import paddle

        from infogan.config import TrainConfig
        from infogan.data import batches
        from infogan.data.neighbours import nearest
        from infogan.latent import LatentSpec
        from infogan.nets import Compute, NetSpec

        paddle.enable_static()
        paddle.seed(0)
        self.cfg = TrainConfig.from_flags(dict(job["config"], batch_size=job["batch"]))
        self.spec = LatentSpec.from_config(self.cfg)
        self.compute = Compute(**job.get("compute", {}))
        self.net = NetSpec.from_config(self.cfg, self.spec, self.compute)
        shape = (TRAIN_IMAGES, *self.cfg.image_shape)
        images = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
        table = nearest(images, self.cfg.neighbours) if self.cfg.neighbours else None
        batched = batches(images, self.cfg.batch_size, 0, 0, self.net.value_range, table)
        self.real = lambda: next(batched)  # (the batch, its images' neighbours or None), as the trainer's


def train(job):
    """One training iteration (G+Q step, then D step), as scripts/train.py runs it; under
    paddle.distributed.launch, as each of its ranks runs it."""
    import paddle

    from infogan.distributed import broadcast_parameters, connect, world
    from infogan.programs import build_train_programs
    from infogan.trainer import TrainingStep

    s = Setting(job)
    ranks = world()
    connect(ranks, gpu=False)
    programs = build_train_programs(s.cfg, s.spec, s.compute, ranks)
    exe = paddle.static.Executor(paddle.CPUPlace())
    exe.run(programs.startup)
    broadcast_parameters(programs, exe, ranks)
    step = TrainingStep(s.cfg, s.spec, programs, exe, s.net.value_range, ranks)
    fetch = not job.get("no_stats", False)
    count = iter(range(10**9))

    def iteration():
        real, near = s.real()
        return step(next(count), real, fetch, neighbours=near)

    return iteration


def all_reduce(job):
    """The training step's communication alone: one all-reduce of as many floats as both Programs'
    gradients, as each rank runs it."""
    import paddle

    from infogan.distributed import connect, world
    from infogan.programs import build_train_programs, trainable

    s = Setting(job)
    ranks = world()
    connect(ranks, gpu=False)
    programs = build_train_programs(s.cfg, s.spec, s.compute)
    floats = sum(
        int(np.prod(p.shape))
        for step, prefixes in ((programs.d_step, ("D_", "Q_")), (programs.gq_step, ("G_", "Q_")))
        for p in trainable(step.program, prefixes)
    )
    program, startup = paddle.static.Program(), paddle.static.Program()
    with paddle.static.program_guard(program, startup):
        buffer = paddle.static.data("buffer", [floats], "float32")
        paddle.distributed.all_reduce(buffer)
        total = paddle.sum(buffer)
    exe = paddle.static.Executor(paddle.CPUPlace())
    feed = {"buffer": np.ones(floats, np.float32)}
    return lambda: exe.run(program, feed=feed, fetch_list=[total])


def reader(job):
    """What feeds one iteration: a shuffled batch of real images, converted, the latent codes and, with
    the clustering term, its augmented views."""
    from infogan.objective import clustering_views

    s = Setting(job)
    rng = np.random.default_rng(0)

    def feed():
        real, near = s.real()
        return real, s.spec.sample(rng, s.cfg.batch_size), clustering_views(s.cfg, real, rng, s.net.value_range, near)

    return feed


def one_program(job):
    """Both updates in ONE Program: G's fakes feed D's loss inside it, both optimizers in it (the paper's
    objective)."""
    import paddle

    from infogan import objective
    from infogan.programs import adam, image_feed, latent_feeds, trainable

    s = Setting(job)
    cfg, spec, net = s.cfg, s.spec, s.net
    program, startup = paddle.static.Program(), paddle.static.Program()
    with paddle.static.program_guard(program, startup):
        real = image_feed("real", net.image_shape)
        codes, latent = latent_feeds(spec)
        fake = net.generator()(latent)
        disc = net.discriminator()
        d_logits, _ = disc(paddle.concat([real, fake.detach()]), groups=2, track=True)
        real_logit, fake_logit_d = paddle.split(d_logits, 2)
        fake_logit, features = disc(fake)
        d_loss, _ = objective.d_step_loss(cfg, spec, real_logit, fake_logit_d)
        g_loss, _ = objective.gq_step_loss(cfg, spec, fake_logit, net.q_head(disc.features)(features), codes)
        adam(cfg, cfg.lr_d, s.compute).minimize(d_loss, parameters=trainable(program, "D_"))
        adam(cfg, cfg.lr_g, s.compute).minimize(g_loss, parameters=trainable(program, ("G_", "Q_")))
    exe = paddle.static.Executor(paddle.CPUPlace())
    exe.run(startup)
    rng = np.random.default_rng(0)

    def step():
        feed = dict(spec.sample(rng, cfg.batch_size), real=s.real()[0])
        exe.run(program, feed=feed, fetch_list=[d_loss, g_loss])

    return step


def torch(job):
    """The paper's MNIST networks, losses and Adam settings in PyTorch eager, alternating the same two steps."""
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    torch.manual_seed(0)
    torch.set_num_threads(job["threads"])
    lrelu = lambda: nn.LeakyReLU(0.1)  # noqa: E731
    latent_dim = 74
    gen = nn.Sequential(
        nn.Linear(latent_dim, 1024, bias=False), nn.BatchNorm1d(1024), nn.ReLU(),
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

    return step


def layer(job):
    """One convolution of the MNIST networks, forward and both gradients, in a static Program of its own:
    with Paddle's kernel, or with `batched`, the project's."""
    import paddle
    import paddle.nn.functional as F

    from infogan.ops import batched_conv

    paddle.enable_static()
    batched = job.get("batched")
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

    torch.set_num_threads(job["threads"])
    shape, weight_shape, convolve = _layer(job, F.conv2d, F.conv_transpose2d)
    x = torch.rand(job["batch"], *shape, requires_grad=True)
    weight = torch.rand(*weight_shape, requires_grad=True)
    return lambda: convolve(x, weight, stride=2, padding=1).sum().backward()


def _layer(job, conv, deconv):
    """(input shape, weight shape, the library's function for it) of the job's layer."""
    _, operation, shape, weight_shape = next(c for c in CONVOLUTIONS if c[0] == job["layer"])
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


def main(job):
    from infogan.device import apply_thread_settings

    apply_thread_settings()  # before Paddle's import, as the scripts do; the job's environment wins
    made = globals()[job["kind"]](job)
    values = made if job["kind"] == "matmul" else seconds(made, job["steps"], job["warmup"])
    print(json.dumps({"values": values}))


if __name__ == "__main__":
    try:
        job = json.loads(sys.argv[1]) if len(sys.argv) == 2 else None
    except json.JSONDecodeError:
        job = None
    if not isinstance(job, dict):
        print(
            "error: benchmarks.workers runs a job (JSON) of benchmarks.train_step or .data_parallel: run those",
            file=sys.stderr,
        )
        sys.exit(2)
    main(job)
