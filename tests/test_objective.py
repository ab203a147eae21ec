"""The objective's pieces against closed forms: the clustering term's information, the L_I schedule,
and the augmented views it compares."""

import math

import numpy as np
import paddle
import pytest

from infogan import objective
from infogan.config import TrainConfig

paddle.enable_static()


def run_paired_information(logits, logits_other):
    program, startup = paddle.static.Program(), paddle.static.Program()
    with paddle.static.program_guard(program, startup):
        a, b = (paddle.static.data(n, [None, logits.shape[1]], "float32") for n in "ab")
        out = objective.paired_information(a, b)
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


def test_squared_input_gradient_against_its_closed_form():
    # logit(x) = c sum(x^2) has gradient 2 c x: E ||grad||^2 = 4 c^2 E sum(x^2), the images' own sums.
    x = np.random.default_rng(0).normal(size=(5, 1, 4, 4)).astype("float32")
    program, startup = paddle.static.Program(), paddle.static.Program()
    with paddle.static.program_guard(program, startup):
        images = paddle.static.data("x", [None, 1, 4, 4], "float32")
        images.stop_gradient = False
        out = objective.squared_input_gradient(0.5 * paddle.sum(paddle.square(images), axis=[1, 2, 3]), images)
    value = paddle.static.Executor(paddle.CPUPlace()).run(program, feed={"x": x}, fetch_list=[out])[0]
    assert value == pytest.approx((x**2).sum(axis=(1, 2, 3)).mean(), rel=1e-5)


def test_li_to_g_delays_then_warms_up():
    delayed = TrainConfig(li_delay=100, li_warmup=50)
    assert [objective.li_to_g(delayed, step) for step in (0, 99, 100, 125, 150, 10**6)] == [0, 0, 0, 0.5, 1, 1]
    at_once = TrainConfig(li_delay=10, li_warmup=0)
    assert (objective.li_to_g(at_once, 9), objective.li_to_g(at_once, 10)) == (0, 1)
    assert objective.li_to_g(TrainConfig(li_delay=0, li_warmup=0, gan_baseline=True), 10**6) == 0


def test_the_clustering_terms_weight_fades_linearly_between_its_two_steps():
    faded = TrainConfig(lambda_real=3.0, lambda_real_fade=[100, 300])
    weights = [objective.real_weight(faded, step) for step in (0, 100, 150, 200, 300, 10**6)]
    assert weights == pytest.approx([3.0, 3.0, 2.25, 1.5, 0.0, 0.0])
    assert objective.real_weight(TrainConfig(lambda_real=3.0), 10**6) == 3.0


def test_augmented_views_are_the_same_digits_moved():
    images = np.zeros((3, 1, 28, 28), np.float32)
    images[:, 0, 10:18, 12:16] = 1.0
    still = {"max_degrees": 0, "scale": (1, 1), "max_shift": 0, "max_shear": 0}
    unchanged = objective.augment(images, np.random.default_rng(0), **still, thicken=0)
    np.testing.assert_allclose(unchanged, images, atol=1e-6)
    bold = objective.augment(images, np.random.default_rng(0), **still, thicken=1)
    assert (bold >= images).all() and bold.sum() > 1.4 * images.sum()  # one pixel wider and taller
    views = objective.augment(images, np.random.default_rng(0))
    assert views.shape == images.shape and views.dtype == np.float32
    assert not np.allclose(views, images) and 0.0 <= views.min() and views.max() <= 1.0
    assert 0.5 * images.sum() < views.sum() < 2.5 * images.sum()  # moved, resized, made bolder, not lost
    np.testing.assert_array_equal(views, objective.augment(images, np.random.default_rng(0)))


def test_colour_views_move_every_channel_alike_and_fill_with_the_background():
    rng = np.random.default_rng(2)
    plane = np.zeros((2, 1, 32, 32), np.float32) - 1.0
    plane[:, :, 8:24, 12:20] = 1.0
    colour = np.concatenate([plane, plane, plane], axis=1)
    views = objective.augment(colour, rng, background=-1.0, thicken=0)
    assert views.shape == colour.shape
    np.testing.assert_array_equal(views[:, 0], views[:, 1])
    np.testing.assert_array_equal(views[:, 0], views[:, 2])
    assert views[:, :, 0, 0].max() == -1.0  # a corner the image moved away from holds the background


def test_shear_slants_an_upright_stroke_both_ways():
    bar = np.zeros((1, 1, 28, 28), np.float32)
    bar[0, 0, 4:24, 13:15] = 1.0
    only_shear = {"max_degrees": 0, "scale": (1, 1), "max_shift": 0, "max_shear": 0.3, "thicken": 0}
    views = objective.augment(bar, np.random.default_rng(0), 16, **only_shear)[:, 0]
    columns = np.arange(28)

    def centre(rows):  # the stroke's mean column over those rows
        return (rows * columns).sum(axis=(1, 2)) / rows.sum(axis=(1, 2))

    lean = centre(views[:, 4:10]) - centre(views[:, 18:24])  # top minus bottom: > 0 leans right
    assert lean.min() < -1.0 and lean.max() > 1.0  # up to 0.3 * 14 = 4.2 columns either way
    np.testing.assert_allclose(views.sum(axis=(1, 2)), bar.sum(), rtol=0.05)  # slanted, not lost


def test_several_views_come_copy_after_copy_each_drawn_anew():
    images = np.random.default_rng(1).random((4, 1, 28, 28), dtype=np.float32)
    still = {"max_degrees": 0, "scale": (1, 1), "max_shift": 0, "max_shear": 0, "thicken": 0}
    np.testing.assert_allclose(
        objective.augment(images, np.random.default_rng(0), 3, **still), np.tile(images, (3, 1, 1, 1)), atol=1e-6
    )
    first, second = np.split(objective.augment(images, np.random.default_rng(0), 2), 2)
    assert not np.allclose(first, second)  # two views of one image differ


@pytest.mark.parametrize("channels, background", [(1, 0.0), (3, -1.0)])
def test_views_in_the_graph_are_augments_views_and_pass_gradients_back(channels, background):
    # The same draws moved in numpy (scipy) and in the graph (affine_grid, grid_sample, max_pool2d).
    images = np.full((6, channels, 28, 28), background, np.float32)
    images[:, :, 8:20, 12:16] = 1.0
    images[:, :, 6:9, 8:22] = 0.3
    program, startup = paddle.static.Program(), paddle.static.Program()
    with paddle.static.program_guard(program, startup):
        x = paddle.static.data("x", [None, channels, 28, 28], "float32")
        x.stop_gradient = False
        theta = paddle.static.data("view_theta", [None, 2, 3], "float32")
        bold = paddle.static.data("view_bold", [None, 1, 1, 1], "float32")
        moved = objective.view(x, theta, bold, background)
        grad = paddle.static.gradients([paddle.sum(moved)], [x])[0]
    feed = objective.sample_views(np.random.default_rng(5), len(images), 28)
    assert 0 < feed["view_bold"].sum() < len(images)  # both kinds of stroke checked
    exe = paddle.static.Executor(paddle.CPUPlace())
    in_graph, grad = exe.run(program, feed={"x": images, **feed}, fetch_list=[moved, grad])
    expected = objective.augment(images, np.random.default_rng(5), background=background)
    np.testing.assert_allclose(in_graph, expected, atol=1e-5)
    assert np.abs(grad).sum() > 0


def test_with_neighbours_the_last_view_is_of_one_of_each_images_neighbours():
    # Flat images keep their value at the centre whatever the view does: image i is 0.9, its two
    # neighbours 0.1 + 0.2 i and 0.2 + 0.2 i.
    real = np.full((4, 1, 28, 28), 0.9, np.float32)
    near = np.stack(
        [
            np.full((4, 1, 28, 28), 0.1 + 0.1 * j, np.float32) + 0.2 * np.arange(4)[:, None, None, None]
            for j in range(2)
        ],
        axis=1,
    )
    centre = (slice(None), 0, 14, 14)
    picked = []
    for seed in range(8):
        views = objective.clustering_views(
            TrainConfig(neighbours=2), real, np.random.default_rng(seed), neighbours=near
        )
        own, of_neighbours = np.split(views, 2)
        np.testing.assert_allclose(own[centre], 0.9, atol=1e-6)
        picked.append(np.round((of_neighbours[centre] - 0.1 - 0.2 * np.arange(4)) / 0.1))
    assert set(np.concatenate(picked)) == {0.0, 1.0}  # either neighbour of each image, and no other image
    alone = objective.clustering_views(
        TrainConfig(neighbours=2, views=1), real, np.random.default_rng(0), neighbours=near
    )
    assert alone.shape == real.shape and (alone[centre] < 0.9).all()
    with pytest.raises(ValueError, match="--neighbours 3: the views need each real image's nearest"):
        objective.clustering_views(TrainConfig(), real, np.random.default_rng(0))  # the defaults pair neighbours
