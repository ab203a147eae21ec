"""The three Programs share parameters by name: each step changes its own, the others see the change."""

import numpy as np
import paddle
import pytest

from infogan.config import TrainConfig
from infogan.latent import LatentSpec
from infogan.programs import build_generate, build_train_programs
from infogan.runtime import load_state, save_checkpoint
from infogan.sampling import generate
from infogan.trainer import clustering_views, gq_feed, li_to_g

paddle.enable_static()
BATCH = 8


class Setup:
    """Programs, an executor and a fresh scope, initialised once from seed 0."""

    def __init__(self, cfg=None):
        self.cfg = cfg or TrainConfig(li_warmup=0)  # step 0 of a warm-up would keep L_I from G
        self.spec = LatentSpec.from_config(self.cfg)
        self.scope = paddle.static.Scope()
        self.exe = paddle.static.Executor(paddle.CPUPlace())
        paddle.seed(0)
        self.programs = build_train_programs(self.spec, self.cfg)
        with paddle.static.scope_guard(self.scope):
            self.exe.run(self.programs.startup)
        rng = np.random.default_rng(0)
        self.real = rng.random((BATCH, 1, 28, 28), dtype=np.float32)
        self.latent = self.spec.sample(rng, BATCH)

    def names(self):
        blocks = (s.program.global_block() for s in (self.programs.d_step, self.programs.gq_step))
        return sorted({p.name for block in blocks for p in block.all_parameters()})

    def values(self):
        return {n: np.array(self.scope.find_var(n).get_tensor()) for n in self.names()}

    def set_values(self, values):
        for name, value in values.items():
            self.scope.find_var(name).get_tensor().set(value, paddle.CPUPlace())

    def run(self, step, feed, names):
        with paddle.static.scope_guard(self.scope):
            return self.exe.run(step.program, feed=feed, fetch_list=[step.fetches[n] for n in names])

    def gq_step(self, step=0):
        feed = gq_feed(self.latent, li_to_g(self.cfg, step))
        return self.run(self.programs.gq_step, feed, ["fake", "g_loss", "li_cat"])

    def d_step(self, fake, fetch=("d_loss",)):
        feed = {"real": self.real, "fake": fake}
        if self.cfg.lambda_real:
            feed["real_aug"] = clustering_views(self.cfg, self.real, np.random.default_rng(1))
        return self.run(self.programs.d_step, feed, list(fetch))

    def generate(self, latent=None):
        with paddle.static.scope_guard(self.scope):
            return generate(self.exe, self.programs.generate, latent or self.latent)


def changed(before, after):
    return {n for n in before if not np.array_equal(before[n], after[n])}


def trainable(names, prefix):
    return {n for n in names if n.startswith(prefix) and not n.endswith(("_mean", "_variance"))}


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
    assert not {n for n in moved if not n.startswith("D_")}, "the D step touched G or Q"
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


def test_each_view_is_paired_with_its_own_image():
    # Two views that are exact copies of the batch carry what one copy does: the same I(c; c'), which
    # rows paired out of order (or a view mixed into another view's batch norm) would change.
    info = []
    for views in (1, 2):
        s = Setup(TrainConfig(views=views))
        view = s.real[::-1]  # each image's view is another image, so that the pairing shows
        feed = {"real": s.real, "fake": s.generate(), "real_aug": np.tile(view, (views, 1, 1, 1))}
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


def test_generate_program_sees_trained_g_and_uses_inference_batch_norm(setup):
    before = setup.generate()
    for _ in range(2):
        setup.d_step(setup.gq_step()[0])
    after = setup.generate()
    assert np.abs(after - before).max() > 1e-4
    single = {k: v[:1] for k, v in setup.latent.items()}
    np.testing.assert_allclose(setup.generate(single)[0], after[0], atol=1e-5)  # no batch statistics
    assert after.shape == (BATCH, 1, 28, 28) and 0 <= after.min() and after.max() <= 1


def test_checkpoint_reproduces_the_trained_generator(setup, tmp_path):
    for _ in range(2):
        setup.d_step(setup.gq_step()[0])
    expected = setup.generate()
    with paddle.static.scope_guard(setup.scope):
        checkpoint = save_checkpoint(str(tmp_path), setup.programs, step=2, keep=1)
    startup = paddle.static.Program()
    generate_step = build_generate(setup.spec, setup.cfg, startup)
    exe = paddle.static.Executor(paddle.CPUPlace())
    with paddle.static.scope_guard(paddle.static.Scope()):
        exe.run(startup)
        load_state(checkpoint, generate_step.program)
        np.testing.assert_array_equal(generate(exe, generate_step, setup.latent), expected)


def op_names(step):
    return {op.name() for op in step.program.global_block().ops}


def test_programs_hold_only_their_own_work(setup):
    p = setup.programs
    assert not any(n.startswith("G_") for n in (v.name for v in p.d_step.program.global_block().all_parameters()))
    assert "pd_op.conv2d_transpose" not in op_names(p.d_step)  # no copy of G in the D step
    gen_params = {v.name for v in p.generate.program.global_block().all_parameters()}
    assert gen_params and all(n.startswith("G_") for n in gen_params)
    assert not {n for n in op_names(p.generate) if "adam" in n or n.endswith("_grad")}
    d_grads_in_gq = [n for n in op_names(p.gq_step) if "adam" in n]
    assert d_grads_in_gq  # G and Q are optimised there
