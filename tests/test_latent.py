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


def run_paired_information(logits, logits_other):
    program, startup = paddle.static.Program(), paddle.static.Program()
    with paddle.static.program_guard(program, startup):
        a, b = (paddle.static.data(n, [None, logits.shape[1]], "float32") for n in "ab")
        out = CategoricalCode(logits.shape[1]).paired_information(a, b)
    exe = paddle.static.Executor(paddle.CPUPlace())
    return exe.run(program, feed={"a": logits, "b": logits_other}, fetch_list=[out])[0]


def test_paired_information_against_its_closed_form():
    sure_and_even = 50 * np.tile(np.eye(10, dtype="float32"), (3, 1))
    assert run_paired_information(sure_and_even, sure_and_even) == pytest.approx(math.log(10), abs=1e-4)
    many = np.tile(sure_and_even, (40, 1))
    disagreeing = many[np.random.default_rng(0).permutation(len(many))]  # views paired at random
    assert run_paired_information(many, disagreeing) < 0.1
    unsure = np.zeros((30, 10), dtype="float32")
    assert run_paired_information(unsure, sure_and_even) == pytest.approx(0.0, abs=1e-6)
    rng = np.random.default_rng(3)
    logits, other = (rng.normal(size=(16, 10)).astype("float32") * 2 for _ in range(2))
    q, q_other = (np.exp(v) / np.exp(v).sum(axis=1, keepdims=True) for v in (logits, other))
    joint = q.T @ q_other / 16
    joint = (joint + joint.T) / 2
    outer = joint.sum(axis=1, keepdims=True) * joint.sum(axis=0, keepdims=True)
    expected = (joint * np.log(joint / outer)).sum()
    assert run_paired_information(logits, other) == pytest.approx(expected, rel=1e-4)


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
    spec = LatentSpec(noise_dim=62, categories=10, continuous=2, fixed_std=fixed_std)
    assert spec.input_dim == 74
    assert spec.q_dim == 10 + q_dim


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
