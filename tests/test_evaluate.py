"""The unsupervised metrics against closed forms."""

import os
import shutil
import subprocess
import sys
import uuid

import numpy as np
import pytest
from conftest import ROOT, aged

from infogan.metrics import accuracy, nmi
from infogan.scoring import score


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
    scored = score(pred, labels, 10)
    assert scored["per_label_accuracy"][9] == 0.0 and scored["per_label_accuracy"][4] == 1.0
    assert np.array(scored["confusion"]).sum() == 100


def test_nmi_of_independent_halves_is_zero_and_of_a_coarsening_its_closed_form():
    labels = np.repeat(np.arange(4), 24)
    assert nmi(np.tile([0, 1], 48), labels) == pytest.approx(0.0, abs=1e-12)
    coarse = labels // 2  # I = ln 2, H(pred) = ln 2, H(labels) = ln 4: NMI = ln 2 / (1.5 ln 2)
    assert nmi(coarse, labels) == pytest.approx(2 / 3)


def test_classifier_score_against_its_closed_form():
    from infogan.quality import classifier_score

    assert classifier_score(np.full((50, 10), 0.1)) == pytest.approx(1.0)  # no sample tells anything
    sure_and_even = np.eye(10)[np.arange(100) % 10]
    assert classifier_score(sure_and_even) == pytest.approx(10.0, rel=1e-6)  # each sure, all labels alike
    sure_of_one = np.eye(10)[np.zeros(40, int)]
    assert classifier_score(sure_of_one) == pytest.approx(1.0)  # sure, but always the same label
    half = np.tile([[0.5, 0.5, 0, 0], [0, 0, 0.5, 0.5]], (10, 1))  # KL = ln 2 for every sample
    assert classifier_score(half) == pytest.approx(2.0, rel=1e-6)


@pytest.mark.filterwarnings("error::DeprecationWarning")  # SciPy 1.18 removes what 1.16 deprecates
def test_frechet_distance_against_gaussians_with_known_statistics():
    from infogan.quality import frechet_distance

    rng = np.random.default_rng(0)
    a = rng.standard_normal((20000, 3))
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-9)
    shifted = a + np.array([1.0, 2.0, 0.0])
    assert frechet_distance(a, shifted) == pytest.approx(5.0, rel=1e-6)  # |mu_a - mu_b|^2, same covariance
    scaled = rng.standard_normal((20000, 3)) * 2.0  # covariance 4 I: Tr(I + 4I - 2 * 2I) = 3
    assert frechet_distance(a, scaled) == pytest.approx(3.0, rel=0.05)


def test_pixel_spread_is_zero_for_one_image_and_its_closed_form_for_two():
    from infogan.quality import pixel_spread

    rng = np.random.default_rng(0)
    one = np.repeat(rng.random((1, 3, 4, 4)), 50, axis=0)
    assert pixel_spread(one) == pytest.approx(0.0, abs=1e-12)  # a collapsed G: every sample the same
    halves = np.concatenate([np.zeros((5, 3, 4, 4)), np.ones((5, 3, 4, 4))])
    assert pixel_spread(halves) == pytest.approx(0.5)  # each pixel 0 or 1 half the time: std 1/2
    half_image = halves.copy()
    half_image[:, :, :2] = 0.0  # half the pixels never vary
    assert pixel_spread(half_image) == pytest.approx(0.25)


def test_spread_within_labels_against_its_closed_form():
    from infogan.quality import spread_within_labels

    # Label 0: two points at +-1 on each of 3 axes (variance 2 per axis with ddof 1: trace 6); label 1: four
    # copies of one point (trace 0); label 2: a single image, too few for a covariance, left out.
    features = np.array([[1, 1, 1], [-1, -1, -1], [5, 0, 2], [5, 0, 2], [5, 0, 2], [5, 0, 2], [9, 9, 9]])
    labels = np.array([0, 0, 1, 1, 1, 1, 2])
    assert spread_within_labels(features, labels) == pytest.approx(3.0)  # (6 + 0) / 2
    one_feature = spread_within_labels(np.array([[0.0], [2.0], [4.0]]), np.zeros(3))  # variance 4 (ddof 1)
    assert one_feature == pytest.approx(4.0)
    rng = np.random.default_rng(0)
    real = rng.normal(0, 2, (4000, 5)) + np.repeat(np.eye(5) * 10, 800, axis=0)  # five labels, variance 4 each
    alike = rng.normal(0, 1, (4000, 5)) + np.repeat(np.eye(5) * 10, 800, axis=0)  # the same labels, drawn alike
    labels = np.repeat(np.arange(5), 800)
    assert spread_within_labels(real, labels) == pytest.approx(20.0, rel=0.05)
    assert spread_within_labels(alike, labels) == pytest.approx(5.0, rel=0.05)


def test_purity_within_groups_against_counts():
    from infogan.quality import purity_within

    labels = np.array([4, 4, 9, 9, 9, 4])
    assert purity_within(labels, np.zeros(6)) == 0.5  # one group: the three 4s or the three 9s
    assert purity_within(labels, np.array([0, 0, 1, 1, 1, 0])) == 1.0  # the sign that picks the digit
    assert purity_within(labels, np.array([0, 1, 0, 1, 0, 1])) == 4 / 6  # a split that does not


def test_even_labels_draws_as_many_of_each_label_and_no_image_twice():
    from infogan.quality import even_labels

    labels = np.array([0] * 50 + [1] * 30 + [2] * 20)
    picked = even_labels(labels, 45, np.random.default_rng(0))
    assert np.bincount(labels[picked]).tolist() == [15, 15, 15]
    assert len(set(picked.tolist())) == 45 and np.all(np.diff(picked) > 0)
    picked = even_labels(labels, 90, np.random.default_rng(0))  # 30 of each asked, only 20 2s: 20 of each
    assert np.bincount(labels[picked]).tolist() == [20, 20, 20]


def test_code_purity_and_coverage():
    from infogan.quality import code_purity

    purity, covered = code_purity([np.array([3, 3, 3, 1]), np.array([1, 1]), np.array([3, 0, 3, 0, 3])])
    assert purity == pytest.approx([0.75, 1.0, 0.6]) and covered == [1, 3]


def toy_judging(monkeypatch):
    """Toy labelled digits, and the judge's training cut to a few steps on them."""
    from types import SimpleNamespace

    from infogan import quality

    for name, value in (("EPOCHS", 1), ("MAX_EPOCHS", 1), ("MIN_STEPS", 1), ("BATCH", 32)):
        monkeypatch.setattr(quality, name, value)
    images = np.random.default_rng(0).integers(0, 256, (96, 1, 28, 28)).astype(np.uint8)
    labels = np.arange(96) % 10
    return SimpleNamespace(
        source="toy", train_images=images[:64], train_labels=labels[:64], val_images=images[64:], val_labels=labels[64:]
    )


def test_a_cached_judge_is_read_whole_or_trained_again_and_one_that_moved_in_meanwhile_is_kept(
    monkeypatch, tmp_path, capsys
):
    """Evaluations started together each train the judge: it is saved beside its folder and renamed in,
    so a reader never meets one half-written; a damaged one is trained again and replaced."""
    import paddle

    from infogan import quality
    from infogan.data import to_input

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    data = toy_judging(monkeypatch)
    exe = paddle.static.Executor(paddle.CPUPlace())
    images = to_input(data.val_images, (0.0, 1.0))
    expected = quality.trained_classifier(data, (0.0, 1.0), exe).predict(images)[0]
    (folder,) = (tmp_path / "infogan" / "classifiers").iterdir()
    weights = folder / "classifier.pdparams"
    whole = weights.read_bytes()
    weights.write_bytes(whole[: len(whole) // 2])  # as a disk that filled up under an earlier version
    capsys.readouterr()
    again = quality.trained_classifier(data, (0.0, 1.0), exe).predict(images)[0]
    assert "is damaged" in capsys.readouterr().err
    np.testing.assert_array_equal(again, expected)
    assert weights.read_bytes() == whole

    shutil.rmtree(folder)
    fit = quality.Classifier.fit

    def another_process_caches_it_meanwhile(self, *args):
        fit(self, *args)
        shutil.copytree(tmp_path / "theirs", folder)

    os.makedirs(tmp_path / "theirs")
    (tmp_path / "theirs" / "classifier.json").write_text("{}")
    (tmp_path / "theirs" / "classifier.pdparams").write_bytes(whole)
    monkeypatch.setattr(quality.Classifier, "fit", another_process_caches_it_meanwhile)
    quality.trained_classifier(data, (0.0, 1.0), exe)
    assert (folder / "classifier.json").read_text() == "{}"  # theirs, kept
    assert os.listdir(folder.parent) == [folder.name]  # and nothing of this one's left beside it


def test_a_judge_that_cannot_be_cached_is_a_warning_and_what_a_killed_saver_left_is_removed(
    monkeypatch, tmp_path, capsys
):
    """A cache that cannot be written (here under a file; read-only or full alike) costs the next evaluation
    the judge's training again, not this one its result; a staging folder left by a saver killed a while ago
    is removed by the next one to save there."""
    import paddle

    from infogan import quality
    from infogan.data import to_input

    data = toy_judging(monkeypatch)
    exe = paddle.static.Executor(paddle.CPUPlace())
    images = to_input(data.val_images, (0.0, 1.0))
    (tmp_path / "a file").write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "a file"))
    assert quality.trained_classifier(data, (0.0, 1.0), exe).predict(images)[0].shape == (len(images), 10)
    assert "could not be cached in" in capsys.readouterr().err

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    left = tmp_path / "infogan" / "classifiers" / f".tmp-{uuid.uuid4().hex}-0123456789abcdef"
    os.makedirs(left)
    (left / "classifier.pdparams").write_bytes(b"half a judge")
    aged(left)
    quality.trained_classifier(data, (0.0, 1.0), exe)
    (entry,) = os.listdir(left.parent)
    assert os.path.isfile(left.parent / entry / "classifier.pdparams") and not entry.startswith(".")


def test_the_judging_classifier_is_the_same_whatever_the_callers_generator_and_leaves_it_be(monkeypatch, tmp_path):
    """Two caches train the same judge, though Paddle's generator is left elsewhere by the caller each
    time; and training the judge leaves the caller's generator where it was."""
    import paddle

    from infogan import quality
    from infogan.data import to_input

    def draw():  # the next weights Paddle's generator gives
        main, startup = paddle.static.Program(), paddle.static.Program()
        with paddle.static.program_guard(main, startup):
            paddle.create_parameter([4, 4], "float32", name="draw_test.w")
        scope = paddle.static.Scope()
        with paddle.static.scope_guard(scope):
            exe.run(startup)
        return np.array(scope.find_var("draw_test.w").get_tensor())

    data = toy_judging(monkeypatch)
    exe = paddle.static.Executor(paddle.CPUPlace())
    judged = []
    for seed, machine in enumerate("ab"):
        monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / machine))
        paddle.seed(seed)
        judge = quality.trained_classifier(data, (0.0, 1.0), exe)
        after = draw()
        paddle.seed(seed)
        np.testing.assert_array_equal(after, draw())
        judged.append(judge.predict(to_input(data.val_images, (0.0, 1.0))))
    assert [len(list(tmp_path.glob(f"{m}/infogan/classifiers/*/classifier.json"))) for m in "ab"] == [1, 1]
    np.testing.assert_array_equal(judged[0][0], judged[1][0])
    np.testing.assert_array_equal(judged[0][1], judged[1][1])


# Trains a judge on toy digits and saves its weights; run under the scripts' thread settings, where two of
# MKL's threads sum in another order than one (without infogan.device.threads(1) in its training, the two
# judges below differ).
TRAIN_A_JUDGE = """
import sys
from infogan.device import apply_thread_settings
apply_thread_settings()
import numpy as np
from infogan import quality
from infogan.device import executor
rng = np.random.default_rng(0)
judge = quality.Classifier((1, 28, 28), 10, executor("cpu"), seed=0)
quality.MIN_STEPS, quality.EPOCHS = 4, 1  # four steps: enough for two threads to sum otherwise
judge.fit(rng.random((512, 1, 28, 28), dtype=np.float32), np.arange(512) % 10)
weights = [np.array(judge.scope.find_var(name).get_tensor()).ravel() for name in ("C_conv1.w", "C_fc.w", "C_out.w")]
np.save(sys.argv[1], np.concatenate(weights))
"""


def test_the_judging_classifier_is_the_same_at_one_thread_and_at_two(tmp_path):
    weights = []
    for n in ("1", "2"):
        env = dict(os.environ, OMP_NUM_THREADS=n, MKL_NUM_THREADS=n, PYTHONPATH=ROOT)
        result = subprocess.run(
            [sys.executable, "-c", TRAIN_A_JUDGE, str(tmp_path / n)], env=env, capture_output=True, text=True
        )
        assert result.returncode == 0, result.stderr
        weights.append(np.load(tmp_path / f"{n}.npy"))
    np.testing.assert_array_equal(weights[0], weights[1])


def test_summarize_gives_each_run_and_the_mean_and_spread(tmp_path):
    import json

    from infogan import InfoGANError
    from infogan.scoring import summarize_runs

    runs = []
    for i, acc in enumerate((0.90, 0.96)):
        run = tmp_path / f"run{i}"
        run.mkdir()
        metrics = {
            "accuracy": acc,
            "nmi": 0.8,
            "per_label_accuracy": {"0": acc, "1": 0.5},
            "training": {"L_I_cat_last": 2.0},
        }
        (run / "metrics.json").write_text(json.dumps(metrics))
        runs.append(str(run))
    table = summarize_runs(runs).splitlines()
    assert table[2].startswith("| run0 | 90.0% | 0.800 | 50.0% | 2.000 |")
    assert table[-1].startswith("| mean +- std (2) | 93.0% +- 4.2% | 0.800 +- 0.000 |")
    assert "classifier score" not in table[0]  # no run has it
    spread = {"spread_within_labels": 60.0, "spread_within_labels_of_real_images": 100.0}
    (tmp_path / "run1" / "metrics.json").write_text(json.dumps(dict(metrics, sample_quality=spread)))
    table = summarize_runs(runs).splitlines()
    assert "| spread within labels / real |" in table[0] and table[3].endswith("| 0.60 |")
    unlabelled = tmp_path / "faces"
    unlabelled.mkdir()
    (unlabelled / "metrics.json").write_text(json.dumps({"sample_spread": {"sample_spread": 0.2}, "training": {}}))
    alone = summarize_runs([str(unlabelled)]).splitlines()
    assert alone[0] == "| run | pixel spread |" and alone[-1] == "| mean +- std (1) | 0.200 +- 0 |"
    mixed = summarize_runs([runs[0], str(unlabelled)]).splitlines()
    assert mixed[0] == "| run | accuracy | NMI | worst label | L_I cat. | pixel spread |"
    assert mixed[-1] == "| mean +- std (2) |" + "  |" * 5  # a mean only of columns every run has
    with pytest.raises(InfoGANError, match="has no metrics.json"):
        summarize_runs([str(tmp_path)])
    with pytest.raises(InfoGANError, match=r"run1/ is given twice \(as .*run1 too\): each run counts once"):
        summarize_runs([runs[1], runs[0], runs[1] + "/"])
    for damaged in ('{"accuracy": ', "[1]", '{"accuracy": 0.5}'):  # cut short; not an object; no "training"
        (tmp_path / "run1" / "metrics.json").write_text(damaged)
        with pytest.raises(InfoGANError, match="run1/metrics.json cannot be read .*: run python scripts/evaluate.py"):
            summarize_runs(runs)
    (tmp_path / "run0" / "checkpoints" / "step_0000020").mkdir(parents=True)  # trained on after evaluate.py
    (tmp_path / "run0" / "metrics.json").write_text(json.dumps(dict(metrics, checkpoint="step_0000010")))
    with pytest.raises(InfoGANError, match="run0/metrics.json scores step_0000010, but the run has trained on to "):
        summarize_runs(runs[:1])
    (tmp_path / "run0" / "metrics.json").write_text(json.dumps(dict(metrics, checkpoint="step_0000020")))
    assert summarize_runs(runs[:1]).splitlines()[2].startswith("| run0 | 96.0% |")


def test_plot_runs_gives_runs_under_one_label_one_colour_and_one_legend_entry(monkeypatch, tmp_path):
    from infogan import figures

    drawn = {}
    monkeypatch.setattr(figures, "_save", lambda fig, path: drawn.update(fig=fig))
    log = [{"step": s, "L_I_cat": 2.0, **({"accuracy": 0.5} if s % 2 else {})} for s in range(1, 5)]
    figures.plot_runs([("defaults", log), ("paper", log), ("defaults", log)], str(tmp_path / "x.png"), 2.303)
    ax_li, ax_acc = drawn["fig"].axes
    for ax in (ax_li, ax_acc):
        assert len(ax.lines) - (ax is ax_li) == 3  # every run drawn (and the H(c) line)
        assert [t.get_text() for t in ax.get_legend().get_texts()][:2] == ["defaults", "paper"]
        assert len(ax.get_legend().get_texts()) == 2 + (ax is ax_li)
        runs = [line for line in ax.lines if not line.get_label().startswith("H(c)")]
        assert runs[0].get_color() == runs[2].get_color() != runs[1].get_color()


def test_a_machines_first_figure_after_paddles_import_prints_nothing(tmp_path):
    code = (
        "import numpy as np, paddle; from infogan.figures import save_grid;"
        f"save_grid(np.zeros((2, 3, 1, 4, 4)), {str(tmp_path / 'grid.png')!r}, 'title')"
    )
    env = dict(os.environ, MPLCONFIGDIR=str(tmp_path / "empty"))  # no font cache: matplotlib builds one
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=env)
    assert done.returncode == 0, done.stderr
    assert "fontManager" not in done.stderr and (tmp_path / "grid.png").is_file()
    assert os.listdir(tmp_path / "empty"), "matplotlib built no font cache there: the test tests nothing"
