"""The L_I terms against closed forms, computed by the very Paddle ops the G+Q program uses."""

import math

import numpy as np
import paddle
import pytest
from scipy.stats import norm

from infogan.latent import MIN_STD, CategoricalCode, ContinuousCode, LatentSpec

paddle.enable_static()


def run_logli(code, c, q_params):
    """code.logli(c, q_params) built into a static Program, run on numpy inputs."""
    program, startup = paddle.static.Program(), paddle.static.Program()
    with paddle.static.program_guard(program, startup):
        c_in = paddle.static.data("c", list(c.shape), "float32")
        q_in = paddle.static.data("q", list(q_params.shape), "float32")
        out = code.logli(c_in, q_in)
    exe = paddle.static.Executor(paddle.CPUPlace())
    return exe.run(program, feed={"c": c, "q": q_params}, fetch_list=[out])[0]


def test_categorical_logli_is_minus_cross_entropy():
    rng = np.random.default_rng(0)
    code = CategoricalCode(10)
    c = code.sample_prior(rng, 8)
    logits = rng.normal(size=(8, 10)).astype("float32") * 3
    log_probs = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    expected = log_probs[np.arange(8), c.argmax(axis=1)]
    np.testing.assert_allclose(run_logli(code, c, logits), expected, rtol=1e-5, atol=1e-5)


def test_categorical_logli_bounds():
    code = CategoricalCode(10)
    c = np.eye(10, dtype="float32")
    uniform = run_logli(code, c, np.zeros((10, 10), dtype="float32"))
    np.testing.assert_allclose(uniform, -math.log(10), rtol=1e-6)
    confident = run_logli(code, c, 50 * np.eye(10, dtype="float32"))
    np.testing.assert_allclose(confident, 0.0, atol=1e-5)


def test_continuous_logli_fixed_std_is_unit_gaussian():
    rng = np.random.default_rng(1)
    code = ContinuousCode(3, fixed_std=True)
    c = code.sample_prior(rng, 16)
    mean = rng.normal(size=(16, 3)).astype("float32")
    expected = norm.logpdf(c, loc=mean, scale=1.0).sum(axis=1)
    np.testing.assert_allclose(run_logli(code, c, mean), expected, rtol=1e-5)


def test_continuous_logli_learned_std_matches_scipy():
    rng = np.random.default_rng(2)
    code = ContinuousCode(2, fixed_std=False)
    c = code.sample_prior(rng, 16)
    mean = rng.normal(size=(16, 2)).astype("float32")
    raw_std = rng.normal(size=(16, 2)).astype("float32")
    std = np.log1p(np.exp(raw_std)) + MIN_STD  # softplus, as ContinuousCode.mean_std
    expected = norm.logpdf(c, loc=mean, scale=std).sum(axis=1)
    q_params = np.concatenate([mean, raw_std], axis=1)
    np.testing.assert_allclose(run_logli(code, c, q_params), expected, rtol=1e-4)


@pytest.mark.parametrize("fixed_std, q_dim", [(True, 2), (False, 4)])
def test_spec_sizes(fixed_std, q_dim):
    spec = LatentSpec(noise_dim=62, categorical=[10], continuous=2, fixed_std=fixed_std)
    assert spec.input_dim == 74
    assert spec.q_dim == 10 + q_dim
    svhn = LatentSpec(noise_dim=124, categorical=[10] * 4, continuous=4)
    assert svhn.input_dim == 168 and svhn.q_dim == 44  # the paper's SVHN generator input, 168
    celeba = LatentSpec(noise_dim=128, categorical=[10] * 10, continuous=0)
    assert celeba.input_dim == 228 and [name for name, _ in celeba.feeds] == ["z", "c_cat"]
    faces = LatentSpec(noise_dim=128, categorical=[], continuous=5)
    assert faces.input_dim == 133 and [name for name, _ in faces.feeds] == ["z", "c_cont"]


def test_prior_samples():
    spec = LatentSpec()
    batch = spec.sample(np.random.default_rng(0), 5000)
    assert batch["z"].shape == (5000, 62) and batch["z"].dtype == np.float32
    assert -1 <= batch["z"].min() < -0.99 and 0.99 < batch["z"].max() <= 1
    cat = batch["c_cat"]
    assert cat.shape == (5000, 10) and set(np.unique(cat)) == {0.0, 1.0}
    np.testing.assert_array_equal(cat.sum(axis=1), 1)
    counts = cat.sum(axis=0)
    assert counts.min() > 400 and counts.max() < 600  # 500 expected each; 4.5 sigma either way
    assert batch["c_cont"].shape == (5000, 2) and np.abs(batch["c_cont"]).max() <= 1


def test_entropies():
    assert CategoricalCode(10).entropy() == pytest.approx(math.log(10))
    assert ContinuousCode(2, True).entropy() == pytest.approx(2 * math.log(2))
    assert LatentSpec(categorical=[10, 20], continuous=3).entropies() == pytest.approx((math.log(200), 3 * math.log(2)))


def run_spec_logli(spec, codes, q_out):
    program, startup = paddle.static.Program(), paddle.static.Program()
    with paddle.static.program_guard(program, startup):
        fed = {name: paddle.static.data(name, list(value.shape), "float32") for name, value in codes.items()}
        q = paddle.static.data("q", list(q_out.shape), "float32")
        li_cat, li_cont = spec.logli(fed, q)
    exe = paddle.static.Executor(paddle.CPUPlace())
    return exe.run(program, feed=dict(codes, q=q_out), fetch_list=[li_cat, li_cont])


def test_several_codes_sum_their_terms_each_against_its_own_block():
    rng = np.random.default_rng(4)
    spec = LatentSpec(noise_dim=3, categorical=[3, 5, 2], continuous=2)
    codes = {k: v for k, v in spec.sample(rng, 6).items() if k != "z"}
    q_out = rng.normal(size=(6, spec.q_dim)).astype("float32")
    li_cat, li_cont = run_spec_logli(spec, codes, q_out)
    expected, start = 0.0, 0
    for k in (3, 5, 2):
        logits = q_out[:, start : start + k]
        log_probs = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
        expected += np.mean(log_probs[np.arange(6), codes["c_cat"][:, start : start + k].argmax(axis=1)])
        start += k
    assert li_cat == pytest.approx(expected, rel=1e-5)
    cont_expected = norm.logpdf(codes["c_cont"], loc=q_out[:, 10:12], scale=1.0).sum(axis=1).mean()
    assert li_cont == pytest.approx(cont_expected, rel=1e-5)


def test_a_spec_without_continuous_or_categorical_codes_scores_zero_for_them():
    rng = np.random.default_rng(5)
    only_cat = LatentSpec(noise_dim=2, categorical=[4], continuous=0)
    codes = {"c_cat": only_cat.sample(rng, 3)["c_cat"]}
    assert run_spec_logli(only_cat, codes, np.zeros((3, 4), "float32")) == pytest.approx([-math.log(4), 0.0])
    only_cont = LatentSpec(noise_dim=2, categorical=[], continuous=1)
    codes = {"c_cont": np.zeros((3, 1), "float32")}
    assert run_spec_logli(only_cont, codes, np.zeros((3, 1), "float32")) == pytest.approx(
        [0.0, -0.5 * math.log(2 * math.pi)]
    )
