"""The unsupervised metrics, the GAN-baseline switch, the MLP architecture and the comparison plot."""

import os

import numpy as np
import pytest
from test_programs import Setup, changed, trainable
from test_scripts import script, train

from infogan.config import TrainConfig
from infogan.metrics import accuracy, nmi
from infogan.trainer import li_to_g


def test_permuted_labels_score_perfectly():
    labels = np.repeat(np.arange(10), 30)
    permutation = np.random.default_rng(0).permutation(10)
    acc, mapping = accuracy(permutation[labels], labels, 10)
    assert acc == 1.0
    assert all(mapping[permutation[k]] == k for k in range(10))
    assert nmi(permutation[labels], labels) == pytest.approx(1.0)


def test_constant_prediction_scores_chance():
    labels = np.repeat(np.arange(10), 30)
    acc, _ = accuracy(np.zeros_like(labels), labels, 10)
    assert acc == pytest.approx(0.1)
    assert nmi(np.zeros_like(labels), labels) == pytest.approx(0.0)


def test_merged_pair_costs_one_class():
    labels = np.repeat(np.arange(10), 10)
    pred = labels.copy()
    pred[labels == 9] = 4  # 4 and 9 in one category, as a failed run merges them
    assert accuracy(pred, labels, 10)[0] == pytest.approx(0.9)


def one_gq_step(cfg, step=0):
    s = Setup(cfg)
    before = s.values()
    s.gq_step(step)
    return before, s.values()


def test_gan_baseline_keeps_l_i_out_of_g_but_trains_q():
    base_before, baseline = one_gq_step(TrainConfig(gan_baseline=True))
    _, no_info = one_gq_step(TrainConfig(lambda_cat=0.0, lambda_cont=0.0))
    _, infogan = one_gq_step(TrainConfig(li_warmup=0))
    g_names = trainable(baseline, "G_")
    for name in g_names:  # G moved exactly as by the GAN loss alone
        np.testing.assert_array_equal(baseline[name], no_info[name])
    assert any(not np.array_equal(infogan[n], baseline[n]) for n in g_names)
    assert trainable(base_before, "Q_") <= changed(base_before, baseline)


def test_li_warmup_grows_l_i_in_g_from_none_to_all():
    _, no_info = one_gq_step(TrainConfig(lambda_cat=0.0, lambda_cont=0.0))
    _, infogan = one_gq_step(TrainConfig(li_warmup=0))
    warmup = TrainConfig(li_warmup=100)
    first, halfway, after = (one_gq_step(warmup, step)[1] for step in (0, 50, 100))
    g_names = trainable(infogan, "G_")
    for name in g_names:
        np.testing.assert_array_equal(first[name], no_info[name])  # step 0: G as by the GAN loss alone
        np.testing.assert_array_equal(after[name], infogan[name])  # from step 100: the whole of L_I
    assert any(not np.array_equal(halfway[n], first[n]) and not np.array_equal(halfway[n], after[n]) for n in g_names)
    for name in trainable(infogan, "Q_"):  # Q learns from L_I whatever the share
        np.testing.assert_array_equal(first[name], infogan[name])


def test_li_delay_keeps_l_i_from_g_then_warms_up():
    delayed = TrainConfig(li_delay=100, li_warmup=50)
    assert [li_to_g(delayed, step) for step in (0, 99, 100, 125, 150, 10**6)] == [0, 0, 0, 0.5, 1, 1]
    at_once = TrainConfig(li_delay=10, li_warmup=0)
    assert (li_to_g(at_once, 9), li_to_g(at_once, 10)) == (0, 1)
    assert li_to_g(TrainConfig(li_delay=0, li_warmup=0, gan_baseline=True), 10**6) == 0


def test_mlp_architecture_programs():
    s = Setup(TrainConfig(arch="mlp"))
    names = s.names()
    assert "G_mlp1.w" in names and "D_mlp1.w" in names and not any("conv" in n for n in names)
    fake = s.gq_step()[0]
    assert fake.shape == (8, 1, 28, 28)
    assert np.isfinite(s.d_step(fake)[0])


def test_mlp_run_and_plot_runs(tiny_mnist, tmp_path):
    runs = [str(tmp_path / "mlp"), str(tmp_path / "baseline")]
    assert train(tiny_mnist, runs[0], "--iterations", "4", "--arch", "mlp").returncode == 0
    assert train(tiny_mnist, runs[1], "--iterations", "4", "--gan-baseline", "--eval-every", "2").returncode == 0
    out = str(tmp_path / "cmp.png")
    result = script("plot_runs.py", *runs, "--labels", "MLP", "GAN", "--out", out)
    assert result.returncode == 0, result.stderr
    assert os.path.getsize(out) > 10_000
    mismatch = script("plot_runs.py", *runs, "--labels", "one")
    assert mismatch.returncode == 2 and "2 runs" in mismatch.stderr


def test_evaluate_script(tiny_mnist, tmp_path):
    run_dir = str(tmp_path / "run")
    assert train(tiny_mnist, run_dir, "--iterations", "3").returncode == 0
    test_only = tmp_path / "test_only"
    test_only.mkdir()
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        os.link(os.path.join(tiny_mnist, name), test_only / name)
    result = script("evaluate.py", run_dir, "--data-dir", str(test_only))
    assert result.returncode == 0, result.stderr
    assert "accuracy" in result.stdout and "(20 images)" in result.stdout
    assert os.path.getsize(os.path.join(run_dir, "confusion.png")) > 10_000
    assert os.path.isfile(os.path.join(run_dir, "metrics.json"))
    bad = script("evaluate.py", run_dir, "--data-dir", str(tmp_path))
    assert bad.returncode == 2 and "lacks the test pair" in bad.stderr


def test_bad_config_combinations():
    from infogan import InfoGANError

    with pytest.raises(InfoGANError, match="cannot be combined with --q-in-d-step"):
        TrainConfig(gan_baseline=True, q_in_d_step=True).validate()
    with pytest.raises(InfoGANError, match="--arch 'resnet' is not known"):
        TrainConfig(arch="resnet").validate()
