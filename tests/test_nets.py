"""The networks' two speed devices compute exactly what the plain layers would."""

import numpy as np
import paddle
import paddle.nn.functional as F

from infogan.nets import Discriminator, conv, deconv

paddle.enable_static()


def run(build, feed):
    """Build one Program's fetches with `build()` and run it once from a fresh seed-0 initialisation."""
    program, startup = paddle.static.Program(), paddle.static.Program()
    with paddle.static.program_guard(program, startup):
        fetches = build()
    exe = paddle.static.Executor(paddle.CPUPlace())
    with paddle.static.scope_guard(paddle.static.Scope()):
        paddle.seed(0)
        exe.run(startup)
        return exe.run(program, feed=feed, fetch_list=fetches)


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


def test_stacked_batches_are_batch_normalised_each_on_its_own():
    rng = np.random.default_rng(0)
    real, fake = rng.random((6, 1, 28, 28), dtype=np.float32), rng.random((6, 1, 28, 28), dtype=np.float32) * 0.3

    def build():
        a, b = paddle.static.data("a", [6, 1, 28, 28], "float32"), paddle.static.data("b", [6, 1, 28, 28], "float32")
        disc = Discriminator()
        stacked_logits, stacked_features = disc(paddle.concat([a, b]), groups=2)
        (a_logits, a_features), (b_logits, b_features) = disc(a), disc(b)
        together_logits, _ = disc(paddle.concat([a, b]))
        return [stacked_logits, stacked_features, a_logits, b_logits, a_features, b_features, together_logits]

    stacked, stacked_feat, a_logits, b_logits, a_feat, b_feat, together = run(build, {"a": real, "b": fake})
    np.testing.assert_allclose(stacked, np.concatenate([a_logits, b_logits]), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(stacked_feat, np.concatenate([a_feat, b_feat]), rtol=1e-4, atol=1e-5)
    assert np.abs(together - stacked).max() > 1e-3  # one shared batch norm would be another network
