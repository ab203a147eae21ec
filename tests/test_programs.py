"""The Programs share parameters by name: each step changes its own, the others see the change; batch
norm records statistics of real images (D, Q) and of G's samples (G) only."""

import dataclasses

import numpy as np
import paddle
import pytest
from conftest import BATCH, Setup, changed, running_stats, trainable

from infogan import checkpoints, objective
from infogan.config import TrainConfig
from infogan.grids import generate
from infogan.programs import R1_IMAGES, build_inference

WEIGHT = {"lambda_real": np.full([1], 3.0, "float32")}  # the clustering term's, fed to the D step


@pytest.fixture(scope="module")
def setup():
    return Setup()


def test_papers_d_step_changes_d_only_by_its_learning_rate():
    s = Setup(TrainConfig(li_warmup=0, lambda_real=0.0))
    fake = s.generate()
    before = s.values()
    s.d_step(fake)
    after = s.values()
    moved = changed(before, after)
    assert trainable(before, "D_") <= moved
    assert not trainable(moved, "G_") and not trainable(moved, "Q_"), "the D step trained G or Q"
    # Adam's first step moves each weight by ~lr: D's rate, not G's (the learning-rate-name trap).
    step = max(np.abs(after[n] - before[n]).max() for n in trainable(before, "D_"))
    assert 0.5 * s.cfg.lr_d < step <= 1.01 * s.cfg.lr_d


def test_default_d_step_also_trains_q_on_real_views():
    s = Setup()
    fake = s.generate()
    before = s.values()
    info_real = s.d_step(fake, ["info_real"])[0]
    moved = changed(before, s.values())
    assert trainable(before, "D_") | trainable(before, "Q_") <= moved
    assert not trainable(moved, "G_"), "the D step trained G"
    assert 0.0 <= info_real <= np.log(10) + 1e-6


def test_a_faded_out_clustering_term_leaves_q_be_and_d_as_without_the_term():
    faded = Setup(TrainConfig(li_warmup=0, ema=0.0, lambda_real_fade=[0, 1]))
    without = Setup(TrainConfig(li_warmup=0, ema=0.0, lambda_real=0.0))
    fake = without.generate()
    before = faded.values()
    faded.d_step(fake, step=1)
    without.d_step(fake)
    after = faded.values()
    assert not trainable(changed(before, after), "Q_"), "a term of weight 0 trained Q"
    # D's batches stacked four deep (real, fake, two views) rather than two sum in another order: Adam's
    # first step (about +-lr for each weight) then differs by rounding alone, where the term on moves D's
    # trunk by up to 2 lr more.
    for name in trainable(before, "D_"):
        np.testing.assert_allclose(after[name], without.values()[name], rtol=0, atol=0.25 * without.cfg.lr_d)


def test_r1_is_the_closed_form_and_moves_d_alone_recording_no_statistics():
    # The article's MLP D, logit = relu(x W1 + b1) W2 + b2, has input gradient W1 (W2 * [x W1 + b1 > 0]);
    # R1 averages its square over the batch's first R1_IMAGES.
    mlp = Setup(TrainConfig(arch="mlp", li_warmup=0, ema=0.0, lambda_real=0.0, r1=10.0))
    rng = np.random.default_rng(1)
    mlp.real = rng.random((R1_IMAGES + 8, 1, 28, 28), dtype=np.float32)
    fake, v = mlp.generate(mlp.spec.sample(rng, R1_IMAGES + 8)), mlp.values()
    x = mlp.real[:R1_IMAGES].reshape(R1_IMAGES, -1)
    grad = ((x @ v["D_mlp1.w"] + v["D_mlp1.b"] > 0) * v["D_mlp_out.w"][:, 0]) @ v["D_mlp1.w"].T
    assert mlp.d_step(fake, ["r1"])[0] == pytest.approx((grad**2).sum(axis=1).mean(), rel=1e-4)

    with_r1 = Setup(TrainConfig(li_warmup=0, ema=0.0, lambda_real=0.0, r1=10.0))
    without = Setup(TrainConfig(li_warmup=0, ema=0.0, lambda_real=0.0))
    fake, before = without.generate(), with_r1.values()
    for s in (with_r1, without):
        s.d_step(fake)
    after, plain = with_r1.values(), without.values()
    moved = changed(before, after)
    assert trainable(before, "D_") <= moved and not trainable(moved, "G_") and not trainable(moved, "Q_")
    # The penalty's pass on the real batch records no statistics: they are those of the step without it.
    for name in running_stats(before):
        np.testing.assert_array_equal(after[name], plain[name], err_msg=name)
    assert max(np.abs(after[n] - plain[n]).max() for n in trainable(before, "D_")) > with_r1.cfg.lr_d


def test_authors_d_step_trains_d_and_q_on_l_i_and_their_g_step_only_g():
    s = Setup(TrainConfig(li_warmup=0, lambda_real=0.0, q_step="d"))
    before = s.values()
    fake = s.gq_step()[0]
    after_g = s.values()
    assert trainable(before, "G_") <= changed(before, after_g)
    assert not trainable(changed(before, after_g), "Q_"), "the authors' G step trained Q"
    s.d_step(fake)
    moved = changed(after_g, s.values())
    assert trainable(before, "D_") | trainable(before, "Q_") <= moved and not trainable(moved, "G_")


def test_each_view_is_paired_with_its_own_image():
    # Two views that are exact copies of the batch carry what one copy does: the same I(c; c'), which
    # rows paired out of order (or a view mixed into another view's batch norm) would change.
    info = []
    for views in (1, 2):
        s = Setup(TrainConfig(views=views))
        view = s.real[::-1]  # each image's view is another image, so that the pairing shows
        feed = {"real": s.real, "fake": s.generate(), "real_aug": np.tile(view, (views, 1, 1, 1)), **WEIGHT}
        info.append(s.run(s.programs.d_step, feed, ["info_real"])[0])
    np.testing.assert_allclose(info[0], info[1], rtol=1e-5)


def test_gq_step_changes_g_and_q_only_by_their_learning_rate():
    s = Setup()
    before = s.values()
    s.gq_step()
    after = s.values()
    moved = changed(before, after)
    assert trainable(before, "G_") | trainable(before, "Q_") <= moved
    assert not trainable(moved, "D_"), "the G+Q step trained D's weights"
    step = max(np.abs(after[n] - before[n]).max() for n in trainable(before, "G_") | trainable(before, "Q_"))
    assert 0.5 * s.cfg.lr_g < step <= 1.01 * s.cfg.lr_g


def test_gq_step_sees_the_new_d():
    trained, fresh = Setup(), Setup()
    trained.d_step(trained.generate())
    d_after = {n: v for n, v in trained.values().items() if n.startswith("D_")}
    g_loss_trained = trained.gq_step()[1]
    g_loss_fresh = fresh.gq_step()[1]
    assert g_loss_trained != g_loss_fresh  # the loss is computed before the update, from D's weights
    replay = Setup()
    replay.set_values(d_after)
    np.testing.assert_allclose(replay.gq_step()[1], g_loss_trained, rtol=1e-6)


@pytest.mark.parametrize("lambda_real", [3.0, 0.0])
def test_running_statistics_are_real_images_for_d_and_q_and_samples_for_g(lambda_real):
    cfg = TrainConfig(li_warmup=0, lambda_real=lambda_real)
    s = Setup(cfg)
    stats = running_stats(s.names())
    before = s.values()
    fake = s.gq_step()[0]
    after_gq = s.values()
    assert {n for n in stats if n.startswith("G_")} <= changed(before, after_gq), "G's statistics not recorded"
    assert not changed(before, after_gq) & stats - {n for n in stats if n.startswith("G_")}, "D or Q recorded fakes"
    s.d_step(fake)
    assert changed(after_gq, s.values()) & stats == {n for n in stats if n.startswith(("D_", "Q_"))}
    # Other fakes and other views leave the same statistics (only the real batch's enter them), but
    # other real images do not.
    other = Setup(cfg)
    other.gq_step()
    feed = {"real": other.real, "fake": np.zeros_like(fake)}
    if lambda_real:
        feed["real_aug"] = np.ones((cfg.views * len(other.real), *cfg.image_shape), np.float32)
        feed.update(WEIGHT)
    other.run(other.programs.d_step, feed, ["d_loss"])
    d_and_q = {n for n in stats if n.startswith(("D_", "Q_"))}
    for name in d_and_q:
        np.testing.assert_allclose(other.values()[name], s.values()[name], rtol=1e-5, atol=1e-7, err_msg=name)
    assert changed(other.values(), s.values()) - stats, "the weights should differ: the fakes differed"
    moved = Setup(cfg)
    moved.gq_step()
    moved.real = 1.0 - moved.real
    moved.d_step(np.zeros_like(fake))
    assert changed(moved.values(), s.values()) & d_and_q == d_and_q


def test_generate_program_sees_trained_g_and_uses_inference_batch_norm(setup):
    before = setup.generate()
    for _ in range(2):
        setup.d_step(setup.gq_step()[0])
    after = setup.generate()
    assert np.abs(after - before).max() > 1e-4
    single = {k: v[:1] for k, v in setup.latent.items()}
    np.testing.assert_allclose(setup.generate(single)[0], after[0], atol=1e-5)  # no batch statistics
    assert after.shape == (8, 1, 28, 28) and 0 <= after.min() and after.max() <= 1


def test_checkpoint_reproduces_the_trained_generator(setup, tmp_path):
    for _ in range(2):
        setup.d_step(setup.gq_step()[0])
    expected = setup.generate()
    (tmp_path / "checkpoints").mkdir()
    with paddle.static.scope_guard(setup.scope):
        checkpoint = checkpoints.save(str(tmp_path), setup.programs, step=2, keep=1)
    startup, generate_step, _ = build_inference(setup.cfg, setup.spec)
    exe = paddle.static.Executor(paddle.CPUPlace())
    with paddle.static.scope_guard(paddle.static.Scope()):
        exe.run(startup)
        checkpoints.load_inference_state(checkpoint, generate_step.program)
        np.testing.assert_array_equal(generate(exe, generate_step, setup.latent), expected)


def parameter_name(value):
    op = value.get_defining_op()
    return op.attrs()["parameter_name"] if op is not None and op.name() == "builtin.parameter" else None


def parameters_read(program):
    """The names of the parameters the program's ops read."""
    return {parameter_name(v) for op in program.global_block().ops for v in op.operands_source()} - {None}


def test_the_d_step_holds_no_generator_and_the_g_step_no_gradient_of_d(setup):
    p = setup.programs
    read = parameters_read(p.d_step.program)
    assert any(n.startswith("D_") for n in read) and not any(n.startswith("G_") for n in read), "the D step runs G"
    assert not any(n.startswith("G_") for n in (v.name for v in p.d_step.program.global_block().all_parameters()))
    gen_params = {v.name for v in p.generate.program.global_block().all_parameters()}
    assert gen_params and all(n.startswith("G_") for n in gen_params)
    ops = [op.name() for op in p.generate.program.global_block().ops]
    assert not [n for n in ops if "adam" in n or n.endswith("_grad")], "the generate program trains"
    # The G+Q step's gradient ops never produce a gradient for D's weights: each custom convolution's
    # gradient op is told to skip the weight's, and Adam updates no D parameter.
    conv_grads = [
        op for op in p.gq_step.program.global_block().ops if op.name().startswith("custom_op.batched_conv2d_grad")
    ]
    assert conv_grads and all(not op.attrs()["weight_grad"] for op in conv_grads)
    adam = [op for op in p.gq_step.program.global_block().ops if "adam" in op.name()]
    updated = {parameter_name(op.operands_source()[0]) for op in adam}
    assert updated and not any(n.startswith("D_") for n in updated) and any(n.startswith("G_") for n in updated)


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


def test_li_views_reads_the_categories_from_the_moved_fakes_and_the_continuous_codes_from_the_fakes():
    cfg = TrainConfig(li_warmup=0, ema=0.0, lambda_real=0.0, neighbours=0)
    fetch = ("g_loss", "li_cat", "li_cont")
    g_loss, li_cat, li_cont = Setup(cfg).gq_step(fetch=fetch)
    identity = {
        "view_theta": np.tile(np.array([[1, 0, 0], [0, 1, 0]], np.float32), (BATCH, 1, 1)),
        "view_bold": np.zeros((BATCH, 1, 1, 1), np.float32),
    }
    still, moved = (Setup(dataclasses.replace(cfg, li_views=True)) for _ in range(2))
    unmoved = still.gq_step(views=identity, fetch=fetch)
    np.testing.assert_allclose(unmoved, [g_loss, li_cat, li_cont], rtol=1e-5)  # unmoved copies: L_I as without
    views = objective.sample_views(np.random.default_rng(1), BATCH, 28)
    before = moved.values()
    g_moved, cat_moved, cont_moved = moved.gq_step(views=views, fetch=fetch)
    np.testing.assert_allclose([g_moved, cont_moved], [g_loss, li_cont], rtol=1e-5)
    assert abs(cat_moved - li_cat) > 1e-3
    assert not trainable(changed(before, moved.values()), "D_")  # D's trunk read the views, and stayed


def test_mlp_architecture_programs():
    s = Setup(TrainConfig(arch="mlp"))
    names = s.names()
    assert "G_mlp1.w" in names and "D_mlp1.w" in names and not any("conv" in n for n in names)
    fake = s.gq_step()[0]
    assert fake.shape == (8, 1, 28, 28)
    assert np.isfinite(s.d_step(fake)[0])


def test_the_moving_averages_follow_their_closed_form_and_inference_reads_them():
    from infogan.nets import AVERAGE

    s = Setup(TrainConfig(li_warmup=0, ema=0.9))
    names = [p.name for p in s.programs.ema.program.global_block().all_parameters() if p.name.startswith(AVERAGE)]
    assert names and all(n[1:] in s.names() for n in names)
    before = {n: np.array(s.scope.find_var(n).get_tensor()) for n in names}
    trained = s.values()
    s.run(s.programs.ema, {"ema_decay": np.full([1], 0.25, "float32")}, [])
    for name in names:  # E <- 0.25 E + 0.75 P
        after = np.array(s.scope.find_var(name).get_tensor())
        np.testing.assert_allclose(after, 0.25 * before[name] + 0.75 * trained[name[1:]], rtol=1e-5, atol=1e-6)
    s.run(s.programs.ema, {"ema_decay": np.zeros([1], "float32")}, [])
    reading = {
        p.name
        for step in (s.programs.generate, s.programs.encode)
        for p in step.program.global_block().all_parameters()
    }
    assert reading == set(names)  # the inference programs read the averages only
    np.testing.assert_allclose(s.generate(), s.generate(), atol=0)
    plain = Setup(TrainConfig(li_warmup=0, ema=0.0))
    np.testing.assert_allclose(s.generate(), plain.generate(), atol=1e-5)  # averages = weights: the same images


def test_cosine_decay_sets_each_steps_learning_rates():
    cfg = TrainConfig(li_warmup=0, lr_decay="cosine")
    assert [cfg.lr_factor(step, 100) for step in (0, 50, 100)] == pytest.approx([1.0, 0.5, 0.0], abs=1e-12)
    assert TrainConfig().lr_factor(77, 100) == 1.0
    s = Setup(cfg)
    s.step.total = 100
    with paddle.static.scope_guard(s.scope):
        s.step._schedule(50)
        rates = {name: float(np.array(s.scope.find_var(name).get_tensor())) for name, _ in s.step.rates}
    assert len(rates) == 2
    assert sorted(rates.values()) == pytest.approx([0.5 * cfg.lr_d, 0.5 * cfg.lr_g])


def test_spectral_norm_divides_ds_weights_by_their_largest_singular_value():
    s = Setup(TrainConfig(li_warmup=0, lambda_real=0.0, spectral_norm=True))
    vectors = [n for n in s.names() if n.endswith(".u")]
    assert sorted(vectors) == ["D_conv1.u", "D_conv2.u", "D_fc3.u", "D_out.u"]
    fake = s.generate()
    before = s.values()
    for _ in range(30):  # power iteration: u moves towards W's leading singular vector, one step a D step
        s.d_step(fake)
    after = s.values()
    assert all(not np.array_equal(before[n], after[n]) for n in vectors)
    weight = after["D_fc3.w"]  # Linear: [in, out], u over the rows
    u = after["D_fc3.u"] / np.linalg.norm(after["D_fc3.u"])
    v = u @ weight / np.linalg.norm(u @ weight)
    estimate = u @ weight @ v
    assert estimate == pytest.approx(np.linalg.svd(weight, compute_uv=False)[0], rel=0.02)
