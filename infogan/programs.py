"""InfoGAN's static Programs, two training steps and two inference programs, sharing parameters by
their global names through one scope.

  d_step     D's loss on a real batch and a fed fake batch; Adam on the D_ parameters.
             With lambda_real (the default), also - lambda_real I(c; c') of Q's categories for the real
             batch and fed augmented views of it, `views` of each image, each view paired with its image
             (trainer.clustering_views; latent.CategoricalCode.paired_information);
             with q_in_d_step, also - lambda L_I on the fakes; either way Adam on the Q_ parameters too.
  gq_step    G(z, c) -> D and Q: G's non-saturating loss - lambda_cat L_I(cat) - lambda_cont L_I(cont);
             Adam on the G_ and Q_ parameters only. Its fake batch is fetched and fed to the next D step,
             so the D step holds no copy of G (a program runs every op it holds). A fed `li_to_g` sets
             how much of L_I's gradient reaches G: none in a plain GAN (--gan-baseline), where L_I only
             trains Q, so that Q measures what a plain GAN's images say about c.
  generate   G alone, batch norm in inference mode: (z, c) -> images.
  encode     D's trunk and Q alone, batch norm in inference mode: images -> Q's categorical
             probabilities and continuous-code means (for evaluation; not one of the training steps).

All of them are initialised by ONE startup program, run once: a startup per program would re-initialise
the parameters they share. Each program is built under its own unique-name prefix, so the optimizers'
learning-rate variables do not collide (both would otherwise be `learning_rate_0`).
"""

from dataclasses import dataclass

import paddle
import paddle.nn.functional as F
from paddle.static import Program, data, program_guard
from paddle.utils import unique_name

from infogan.nets import ARCHITECTURES, IMAGE_SHAPE, QHead


@dataclass
class Step:
    """A program and the named values it can fetch."""

    program: Program
    fetches: dict


@dataclass
class TrainPrograms:
    startup: Program
    d_step: Step
    gq_step: Step
    generate: Step
    encode: Step


def _image_feed(name):
    return data(name, [None, *IMAGE_SHAPE], "float32")


def _code_feeds(spec):
    return data("c_cat", [None, spec.cat.dim], "float32"), data("c_cont", [None, spec.cont.dim], "float32")


def _latent_feeds(spec):
    return (data("z", [None, spec.noise.dim], "float32"), *_code_feeds(spec))


def _bce(logits, target):
    labels = paddle.full_like(logits, target)
    return F.binary_cross_entropy_with_logits(logits, labels)


def _trainable(program, prefixes):
    """Parameters to optimise: by name prefix, without batch norm's running statistics."""
    params = program.global_block().all_parameters()
    return [p for p in params if p.name.startswith(prefixes) and not p.stop_gradient]


def _adam(hp, lr, multi_tensor=True):
    # Multi-tensor: one fused update op for all the step's parameters, the same arithmetic (the same losses
    # to the last bit) and the same state names as one op per parameter; 4% faster timed in alternating
    # processes, level in scripts/benchmark.py's tables (README, Performance).
    return paddle.optimizer.Adam(lr, beta1=hp.beta1, beta2=0.999, use_multi_tensor=multi_tensor)


def build_d_step(spec, hp, startup):
    program = Program()
    with program_guard(program, startup), unique_name.guard("d_step_"):
        images = [_image_feed("real"), _image_feed("fake")]
        if hp.lambda_real:
            images.append(_image_feed("real_aug"))
        disc = ARCHITECTURES[hp.arch][1]()
        groups = 2 + hp.views if hp.lambda_real else 2  # real_aug holds `views` views of each real image
        logits, features = disc(paddle.concat(images), groups=groups)
        real_logit, fake_logit = paddle.split(logits, groups)[:2]
        real_features, fake_features, *aug_features = paddle.split(features, groups)
        d_loss = _bce(real_logit, 1.0) + _bce(fake_logit, 0.0)
        fetches = {
            "d_loss": d_loss,
            "d_real": paddle.mean(F.sigmoid(real_logit)),
            "d_fake": paddle.mean(F.sigmoid(fake_logit)),
        }
        loss, optimised = d_loss, "D_"
        if hp.q_in_d_step or hp.lambda_real:
            q_head, optimised = QHead(spec.q_dim, disc.features), ("D_", "Q_")
        if hp.q_in_d_step:  # as the InfoGAN authors' code: D's trunk and Q also maximise L_I on the fakes
            c_cat, c_cont = _code_feeds(spec)
            li_cat, li_cont = spec.logli(c_cat, c_cont, q_head(fake_features))
            loss = loss - hp.lambda_cat * li_cat - hp.lambda_cont * li_cont
        if hp.lambda_real:  # D's trunk and Q also give a real image and its augmented views one category
            real_logits = spec.split_q(q_head(real_features))[0]
            aug_logits = spec.split_q(q_head(paddle.concat(aug_features)))[0]
            real_logits = paddle.concat([real_logits] * hp.views)
            fetches["info_real"] = spec.cat.paired_information(real_logits, aug_logits)
            loss = loss - hp.lambda_real * fetches["info_real"]
        _adam(hp, hp.lr_d).minimize(loss, parameters=_trainable(program, optimised))
    return Step(program, fetches)


def build_gq_step(spec, hp, startup):
    program = Program()
    with program_guard(program, startup), unique_name.guard("gq_step_"):
        z, c_cat, c_cont = _latent_feeds(spec)
        gen_class, disc_class = ARCHITECTURES[hp.arch]
        fake = gen_class(spec.input_dim)(paddle.concat([z, c_cat, c_cont], axis=1))
        disc = disc_class()
        for p in disc.parameters():
            p.stop_gradient = True  # D is fixed here: no gradient for its weights, only through them to G
        fake_logit, features = disc(fake)
        # The same features, but only the fed share `li_to_g` of L_I's gradient flows back through them to
        # G (trainer.li_to_g: 0 in a plain GAN); Q's own gradient is whole.
        li_to_g = data("li_to_g", [1], "float32")
        features = li_to_g * features + (1.0 - li_to_g) * features.detach()
        li_cat, li_cont = spec.logli(c_cat, c_cont, QHead(spec.q_dim, disc.features)(features))
        g_loss = _bce(fake_logit, 1.0)
        loss = g_loss - hp.lambda_cat * li_cat - hp.lambda_cont * li_cont
        fetches = {"fake": fake, "g_loss": g_loss, "li_cat": li_cat, "li_cont": li_cont}
        _adam(hp, hp.lr_g).minimize(loss, parameters=_trainable(program, ("G_", "Q_")))
    return Step(program, fetches)


def build_generate(spec, hp, startup):
    program = Program()
    with program_guard(program, startup), unique_name.guard("generate_"):
        z, c_cat, c_cont = _latent_feeds(spec)
        gen = ARCHITECTURES[hp.arch][0](spec.input_dim)
        gen.eval()
        images = gen(paddle.concat([z, c_cat, c_cont], axis=1))
    return Step(program, {"images": images})


def build_encode(spec, hp, startup):
    program = Program()
    with program_guard(program, startup), unique_name.guard("encode_"):
        images = _image_feed("images")
        disc = ARCHITECTURES[hp.arch][1]()
        q_head = QHead(spec.q_dim, disc.features)
        disc.eval()
        q_head.eval()
        cat_logits, cont_params = spec.split_q(q_head(disc.trunk(images)))
        cont_mean, _ = spec.cont.mean_std(cont_params)
        fetches = {"cat_probs": F.softmax(cat_logits, axis=1), "cont_mean": cont_mean}
    return Step(program, fetches)


def build_train_programs(spec, hp):
    startup = Program()
    return TrainPrograms(
        startup=startup,
        d_step=build_d_step(spec, hp, startup),
        gq_step=build_gq_step(spec, hp, startup),
        generate=build_generate(spec, hp, startup),
        encode=build_encode(spec, hp, startup),
    )
