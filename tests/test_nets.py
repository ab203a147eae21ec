"""The networks' speed devices compute what the plain layers would; batch norm per group."""

import contextlib
import functools
import os
import shutil
import subprocess
import sys

import numpy as np
import paddle
import paddle.nn.functional as F
import pytest
from conftest import ROOT

from infogan import nets
from infogan.config import ARCH_SIDE_MULTIPLE
from infogan.nets import ARCHITECTURES, Compute, NetSpec
from infogan.ops import batched_conv

paddle.enable_static()
MNIST_NET = NetSpec("mnist", (1, 28, 28), latent_dim=74, q_dim=12)


def conv(name, c_in, c_out, bias=True, compute=None):
    return NetSpec("mnist", (1, 28, 28), 74, 12, compute=compute or Compute()).conv(name, c_in, c_out, bias)


def deconv(name, c_in, c_out, bias=True, compute=None):
    return NetSpec("mnist", (1, 28, 28), 74, 12, compute=compute or Compute()).deconv(name, c_in, c_out, bias)


def run(build, feed, ops_seen=None):
    """Build one Program's fetches with `build()` and run it once from a fresh seed-0 initialisation;
    the names of the program's operators are added to `ops_seen`."""
    program, startup = paddle.static.Program(), paddle.static.Program()
    with paddle.static.program_guard(program, startup):
        fetches = build()
    if ops_seen is not None:
        ops_seen.update(op.name() for op in program.global_block().ops)
    exe = paddle.static.Executor(paddle.CPUPlace())
    with paddle.static.scope_guard(paddle.static.Scope()):
        paddle.seed(0)
        exe.run(startup)
        return exe.run(program, feed=feed, fetch_list=fetches)


@pytest.mark.parametrize("arch", sorted(ARCH_SIDE_MULTIPLE))
def test_each_network_draws_and_reads_images_at_the_smallest_side_its_rule_allows(arch):
    """config's side rule and nets' networks name the same architectures, and at the smallest allowed side
    (SVHN's G then starts at 1x1) G draws images of that side and D's gradient reaches them, batched kernels
    and all."""
    assert set(ARCHITECTURES) == set(ARCH_SIDE_MULTIPLE)
    side = max(8, ARCH_SIDE_MULTIPLE[arch])
    net = NetSpec(arch, (3, side, side), latent_dim=10, q_dim=4)

    def build():
        latent = paddle.static.data("latent", [4, 10], "float32")
        latent.stop_gradient = False
        images = net.generator()(latent)
        logit, _ = net.discriminator()(images)
        return [images, *paddle.static.gradients([paddle.sum(logit)], [latent])]

    images, grad = run(build, {"latent": np.random.default_rng(0).standard_normal((4, 10)).astype(np.float32)})
    assert images.shape == (4, 3, side, side) and np.isfinite(images).all()
    assert np.isfinite(grad).all() and np.abs(grad).max() > 0


def test_channel_bias_matches_paddles_own_biased_convolutions():
    x = np.random.default_rng(0).standard_normal((3, 4, 6, 6)).astype(np.float32)
    bias = np.arange(5, dtype=np.float32) - 2

    def build():
        images = paddle.static.data("x", [None, 4, 6, 6], "float32")
        outputs = []
        for make, reference in ((conv, F.conv2d), (deconv, F.conv2d_transpose)):
            layer = make(f"T_{make.__name__}", 4, 5)
            paddle.assign(bias, layer.bias)
            kernel = layer.layer.weight
            outputs += [layer(images), reference(images, kernel, paddle.to_tensor(bias), stride=2, padding=1)]
        return outputs

    conv_out, conv_ref, deconv_out, deconv_ref = run(build, {"x": x})
    assert conv_out.shape == (3, 5, 3, 3) and deconv_out.shape == (3, 5, 12, 12)
    np.testing.assert_allclose(conv_out, conv_ref, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(deconv_out, deconv_ref, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("batched", [False, True])
@pytest.mark.parametrize("halved", [False, True])
def test_a_convolution_built_with_a_bias_adds_it_on_every_path(batched, halved):
    """nets.Conv2D/Conv2DTranspose built with their own bias (not a ChannelBias) equal Paddle's biased
    kernels, whether run batched or by Paddle and whether their weight is normalised (as by SpectralNorm)."""
    x = np.random.default_rng(0).standard_normal((3, 4, 6, 6)).astype(np.float32)
    bias = np.arange(5, dtype=np.float32) - 2

    def build():
        images = paddle.static.data("x", [3, 4, 6, 6], "float32")
        outputs = []
        for cls, reference in ((nets.Conv2D, F.conv2d), (nets.Conv2DTranspose, F.conv2d_transpose)):
            layer = cls(4, 5, 4, 2, 1)
            layer.batched = batched
            normalised = halved and cls is nets.Conv2D  # only Conv2D takes a normalised weight
            if normalised:
                layer.normalise = lambda w: w * 0.5
            paddle.assign(bias, layer.bias)
            kernel = layer.weight * 0.5 if normalised else layer.weight
            outputs += [layer(images), reference(images, kernel, paddle.to_tensor(bias), stride=2, padding=1)]
        return outputs

    ops = set()
    conv_out, conv_ref, deconv_out, deconv_ref = run(build, {"x": x}, ops)
    assert any(name.startswith("custom_op.batched") for name in ops) == batched
    np.testing.assert_allclose(conv_out, conv_ref, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(deconv_out, deconv_ref, rtol=1e-5, atol=1e-5)


def test_stacked_batches_are_batch_normalised_each_on_its_own():
    rng = np.random.default_rng(0)
    real, fake = rng.random((6, 1, 28, 28), dtype=np.float32), rng.random((6, 1, 28, 28), dtype=np.float32) * 0.3

    def build():
        a, b = paddle.static.data("a", [6, 1, 28, 28], "float32"), paddle.static.data("b", [6, 1, 28, 28], "float32")
        disc = MNIST_NET.discriminator()
        stacked_logits, stacked_features = disc(paddle.concat([a, b]), groups=2)
        (a_logits, a_features), (b_logits, b_features) = disc(a), disc(b)
        together_logits, _ = disc(paddle.concat([a, b]))
        return [stacked_logits, stacked_features, a_logits, b_logits, a_features, b_features, together_logits]

    stacked, stacked_feat, a_logits, b_logits, a_feat, b_feat, together = run(build, {"a": real, "b": fake})
    np.testing.assert_allclose(stacked, np.concatenate([a_logits, b_logits]), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(stacked_feat, np.concatenate([a_feat, b_feat]), rtol=1e-4, atol=1e-4)
    assert np.abs(together - stacked).max() > 1e-3  # one shared batch norm would be another network


def test_d_built_twice_differentiable_computes_what_d_does_and_its_gradients_gradient():
    # R1's own gradient differentiates D's input gradient: built inside twice_differentiable(), D must give
    # the same logits and input gradient by ops that have a double gradient (neither the batched
    # convolutions nor Paddle's batch norm kernel, nor flatten, has a usable one).
    x = np.random.default_rng(0).random((6, 1, 28, 28), dtype=np.float32)

    def build():
        images = paddle.static.data("x", [6, 1, 28, 28], "float32")
        images.stop_gradient = False
        disc = MNIST_NET.discriminator()
        fetches = []
        for twice in (False, True):
            with nets.twice_differentiable() if twice else contextlib.nullcontext():
                logits = disc(images)[0]
            fetches += [logits, paddle.static.gradients([paddle.sum(logits)], [images])[0]]
        penalty = paddle.sum(paddle.square(fetches[-1]))
        return [*fetches, paddle.static.gradients([penalty], [disc.conv1.layer.weight])[0]]

    ops = set()
    logits, grad, twice_logits, twice_grad, grad_of_grad = run(build, {"x": x}, ops)
    assert any(name.startswith("custom_op.batched") for name in ops)  # the first D: the usual kernels
    np.testing.assert_allclose(twice_logits, logits, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(twice_grad, grad, rtol=1e-3, atol=1e-6)
    assert np.isfinite(grad_of_grad).all() and np.abs(grad_of_grad).max() > 0
    assert not nets._twice_differentiable  # the switch is off again after its block


def batched_and_paddles_own(
    make, reference, side, weight_trains=True, input_trains=True, channels=(4, 5), compute=None
):
    """A batched layer and Paddle's kernel on the same weight: outputs, the gradients that are wanted (the
    input's where it trains, the weight's where it trains), and the operators the program ran."""
    rng = np.random.default_rng(1)
    c_in, c_out = channels
    x = rng.standard_normal((3, c_in, side, side)).astype(np.float32)
    out_side = side // 2 if make is conv else side * 2
    upstream = rng.standard_normal((3, c_out, out_side, out_side)).astype(np.float32)

    def build():
        images = paddle.static.data("x", [3, c_in, side, side], "float32")
        images.stop_gradient = not input_trains
        layer = make(f"T_batched_{make.__name__}", c_in, c_out, bias=False, compute=compute)
        layer.weight.stop_gradient = not weight_trains
        wrt = [v for v, trains in ((images, input_trains), (layer.weight, weight_trains)) if trains]
        fetches = []
        for out in (layer(images), reference(images, layer.weight, stride=2, padding=1)):
            fetches += [out, *paddle.static.gradients([paddle.sum(out * paddle.to_tensor(upstream))], wrt)]
        return fetches

    ops = set()
    values = run(build, {"x": x}, ops)
    half = len(values) // 2
    return values[:half], values[half:], ops


@pytest.mark.parametrize(
    "weight_trains, input_trains, channels",
    [
        (True, True, (4, 5)),
        (False, True, (4, 5)),  # D's weights in the G+Q step
        (True, False, (4, 5)),  # D's first layer in the D step, which reads fed images
        (True, True, (1, 5)),  # one channel in: D's conv1
        (True, True, (5, 1)),  # one channel out: G's deconv2
    ],
)
def test_batched_convolutions_match_paddles_kernels_forward_and_backward(weight_trains, input_trains, channels):
    # Sides down to a kernel tap past the image's edge at every output position (conv 2 -> 1, deconv 1 -> 2:
    # SVHN's G at --image-size 16 starts at 1x1), where a tap's last position rounds down, not towards 0.
    for make, reference, side, op in (
        (conv, F.conv2d, 8, "conv2d"),
        (conv, F.conv2d, 3, "conv2d"),
        (conv, F.conv2d, 2, "conv2d"),
        (deconv, F.conv2d_transpose, 4, "conv2d_transpose"),
        (deconv, F.conv2d_transpose, 2, "conv2d_transpose"),
        (deconv, F.conv2d_transpose, 1, "conv2d_transpose"),
    ):
        batched, own, ops = batched_and_paddles_own(make, reference, side, weight_trains, input_trains, channels)
        assert f"custom_op.batched_{op}" in ops and f"custom_op.batched_{op}_grad" in ops
        assert len(batched) == 1 + weight_trains + input_trains
        for got, want in zip(batched, own, strict=True):
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_batched_layers_use_paddles_kernels_when_told_or_off_the_cpu(monkeypatch):
    *_, ops = batched_and_paddles_own(conv, F.conv2d, 8, compute=Compute(batched_conv=False))
    assert not any(name.startswith("custom_op") for name in ops) and "pd_op.conv2d" in ops
    assert batched_conv.ops() is not None
    monkeypatch.setattr(paddle, "get_device", lambda: "gpu:0")
    assert batched_conv.ops() is None


def test_a_failed_build_warns_once_and_falls_back(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setenv("CXX", "/bin/false")
    monkeypatch.setenv("CC", "/bin/false")
    monkeypatch.setattr(batched_conv, "_built", functools.cache(batched_conv._built.__wrapped__))  # not yet built
    assert batched_conv.ops() is None and batched_conv.ops() is None  # tried once, warned once
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("warning: batched CPU convolutions not built (")


def test_a_built_library_loads_without_a_build_process_until_its_source_changes(tmp_path):
    """And where the cache's file system has no file locks (an NFS mount without its lock service)."""
    assert batched_conv.ops() is not None  # built (or loaded) in the suite's cache
    name = f"batched_conv-paddle{paddle.__version__}"
    shutil.copytree(os.path.join(os.environ["XDG_CACHE_HOME"], "infogan", name), tmp_path / "infogan" / name)
    # The build, which starts a build process, replaced by one that fails: only the cached library can load.
    code = (
        "from infogan.ops import batched_conv as b\n"
        "def refuse(*args): raise RuntimeError('build process started')\n"
        "b._compile = refuse; print(b.ops() is not None and callable(b.ops().batched_conv2d))"
    )
    no_locks = (
        "import errno, fcntl\n"
        "def no_locks(fd, operation): raise OSError(errno.ENOLCK, 'No locks available')\n"
        "fcntl.flock = no_locks\n"
    )
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path)}
    for prelude in ("", no_locks):
        loaded = subprocess.run(
            [sys.executable, "-c", prelude + code], capture_output=True, text=True, env=env, cwd=ROOT
        )
        assert loaded.stdout.strip() == "True", loaded.stderr
    stamp = tmp_path / "infogan" / name / "built.json"
    stamp.write_text(stamp.read_text().replace('"source_sha256": "', '"source_sha256": "0'))  # another source
    rebuilt = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT)
    assert rebuilt.stdout.strip() == "False" and "build process started" in rebuilt.stderr


def test_no_posix_locks_falls_back_too(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setitem(sys.modules, "fcntl", None)  # as on Windows
    assert batched_conv._built.__wrapped__() is None
    assert "import of fcntl halted" in capsys.readouterr().err


@pytest.mark.parametrize("bias_init", ["zero", "uniform"])
def test_with_zero_biases_d_is_blind_to_contrast_and_uniform_biases_break_that(bias_init):
    """D's first layer and leaky ReLU are positively homogeneous with a zero bias, and the batch norm
    after the next layer removes scale: D(a x) = D(x) for a > 0, so at the start D cannot tell G's
    near-blank samples from full-contrast ones. U(+-1/sqrt(fan-in)) biases break the symmetry."""
    net = NetSpec("svhn", (3, 32, 32), 136, 44, bias_init=bias_init)
    x = np.random.default_rng(0).uniform(-1, 1, (8, 3, 32, 32)).astype(np.float32)

    def build():
        images = paddle.static.data("x", [None, 3, 32, 32], "float32")
        disc = net.discriminator()
        return [disc(images)[0], disc(0.05 * images)[0], disc.conv1.bias]

    full, faint, bias = run(build, {"x": x})
    bound = 1 / np.sqrt(3 * 16)
    if bias_init == "zero":
        assert not bias.any()
        np.testing.assert_allclose(faint, full, rtol=1e-3, atol=1e-3)
    else:
        assert np.abs(bias).max() <= bound and np.abs(bias).std() > bound / 4
        assert np.abs(faint - full).max() > 0.1
