"""InfoGAN's static Programs, two training steps and two inference programs, sharing parameters by
their global names through one scope. What each step's loss is lives in infogan.objective; this module
wires feeds, networks, losses and optimizers into Programs.

  d_step     real images and fakes through D (stacked, one pass); Adam on the D_ parameters, and on the
             Q_ parameters where the loss involves Q. The fakes are fed (the G+Q step's, fetched), so the D
             step holds no copy of G, unless --fresh-fakes, where it draws its own from fed codes.
  gq_step    G(z, c) -> D and Q; Adam on the G_ parameters (and Q_ with --q-step g or both). Its fake batch
             is fetched for the next D step. A fed `li_to_g` sets how much of L_I's gradient reaches G.
             With --li-views, D's trunk and Q also see a changed copy of each fake, moved as fed.
  generate   G alone, batch norm in inference mode: (z, c) -> images.
  encode     D's trunk and Q alone, batch norm in inference mode: images -> Q's categorical probabilities
             (the codes' blocks one after another) and continuous-code means.
  ema        with --ema, moves the weights the two inference programs read (E-prefixed copies) towards the
             trained ones, as a moving average; the training steps never read them.

All of them are initialised by ONE startup program, run once: a startup per program would re-initialise
the parameters they share. Each program is built under its own unique-name prefix, so the optimizers'
learning-rate variables do not collide (both would otherwise be `learning_rate_0`).
"""

from dataclasses import dataclass

import paddle
import paddle.nn.functional as F
from paddle.static import Program, data, program_guard
from paddle.utils import unique_name

from infogan import objective
from infogan.distributed import ALONE, average_gradients
from infogan.nets import AVERAGE, NetSpec, twice_differentiable

# Real images R1 is estimated on in each D step: its gradient's gradient is dear (docs/performance.md).
R1_IMAGES = 16


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
    ema: Step | None = None  # moves the averaged weights the inference programs read (with --ema)

    @property
    def saved(self):
        """The programs whose state a checkpoint holds, by name."""
        return {"d_step": self.d_step, "gq_step": self.gq_step} | ({"ema": self.ema} if self.ema else {})


def image_feed(name, image_shape):
    return data(name, [None, *image_shape], "float32")


def latent_feeds(spec):
    """The generator's fed inputs, by name, and their concatenation, G's input."""
    feeds = {name: data(name, [None, width], "float32") for name, width in spec.feeds}
    return feeds, paddle.concat(list(feeds.values()), axis=1)


def trainable(program, prefixes):
    """Parameters to optimise: by name prefix, without batch norm's running statistics."""
    params = program.global_block().all_parameters()
    return [p for p in params if p.name.startswith(prefixes) and not p.stop_gradient]


def adam(cfg, lr, compute):
    return paddle.optimizer.Adam(lr, beta1=cfg.beta1, beta2=0.999, use_multi_tensor=compute.multi_tensor_adam)


def optimise(optimizer, loss, parameters, startup, world, flags=None):
    """optimizer.minimize, with the gradients averaged across ranks where there are several (and the
    fed `flags` summed with them); returns the summed flags, or None."""
    if world.size == 1:
        optimizer.minimize(loss, parameters=parameters)
        return None
    params_grads = optimizer.backward(loss, startup_program=startup, parameters=parameters)
    params_grads, summed = average_gradients(params_grads, world, flags)
    optimizer.apply_gradients(params_grads)
    return summed


def freeze(layer):
    """No gradient for the layer's weights, only through them (D in the G+Q step, G in a D step)."""
    for p in layer.parameters():
        p.stop_gradient = True


def build_d_step(cfg, spec, net, startup, world=ALONE):
    program = Program()
    with program_guard(program, startup), unique_name.guard("d_step_"):
        real = image_feed("real", net.image_shape)
        codes = {}
        if cfg.fresh_fakes:
            codes, latent = latent_feeds(spec)
            generator = net.generator()
            freeze(generator)
            fake = generator(latent, track=False).detach()
        else:
            fake = image_feed("fake", net.image_shape)
        images = [real, fake]
        if cfg.lambda_real:
            images.append(image_feed("real_aug", net.image_shape))  # `views` views of each real image
        disc = net.discriminator()
        groups = 2 + cfg.views if cfg.lambda_real else 2
        logits, features = _discriminate(disc, images, groups, net.compute.stacked_d)
        real_logit, fake_logit = paddle.split(logits, groups)[:2]
        real_features, fake_features, *view_features = paddle.split(features, groups)
        q_head = net.q_head(disc.features)
        # Q on the real batch records the running statistics its inference uses, and serves the clustering term.
        real_q = q_head(real_features, track=True)
        q_fake, real_cat, view_cat, real_weight = None, None, None, None
        if cfg.q_step in ("d", "both"):  # as the InfoGAN authors' code: D's trunk and Q learn L_I in this step
            q_fake = q_head(fake_features)
            codes = codes or code_feeds(spec)
        if cfg.lambda_real:
            real_cat = paddle.concat([spec.split_q(real_q)[0][0]] * cfg.views)
            view_cat = spec.split_q(q_head(paddle.concat(view_features)))[0][0]
            real_weight = data("lambda_real", [1], "float32")  # objective.real_weight(cfg, step)
        r1 = None
        if cfg.r1:  # D again on the first R1_IMAGES real images alone, batch-normalised by their own statistics as
            # in the stacked pass, whose concat has a gradient but no working gradient of that under PIR
            some_real = real[:R1_IMAGES]
            some_real.stop_gradient = False  # R1 differentiates D's logit with respect to them
            with twice_differentiable():
                r1 = objective.squared_input_gradient(disc(some_real)[0], some_real)
        loss, fetches = objective.d_step_loss(
            cfg, spec, real_logit, fake_logit, q_fake, codes, real_cat, view_cat, real_weight, r1
        )
        optimised = ("D_", "Q_") if cfg.q_step != "g" or cfg.lambda_real else "D_"
        # With several ranks, each one's wish to stop (a signal) travels with the gradients: all stop together.
        stop = data("stop", [1], "float32") if world.size > 1 else None
        summed = optimise(adam(cfg, cfg.lr_d, net.compute), loss, trainable(program, optimised), startup, world, stop)
        if summed is not None:
            fetches["stop"] = summed
    return Step(program, fetches)


def code_feeds(spec):
    """The D step's fed codes of its fakes, where it does not draw the fakes itself."""
    return {name: data(name, [None, width], "float32") for name, width in spec.feeds if name != "z"}


def _discriminate(disc, images, groups, stacked):
    """D on the batches `images` (the real one first), as one stacked pass or one pass each."""
    if stacked:
        return disc(paddle.concat(images), groups=groups, track=True)
    passes = [disc(part, track=i == 0) for i, part in enumerate(paddle.split(paddle.concat(images), groups))]
    return tuple(paddle.concat(parts) for parts in zip(*passes, strict=True))


def build_gq_step(cfg, spec, net, startup, world=ALONE):
    program = Program()
    with program_guard(program, startup), unique_name.guard("gq_step_"):
        codes, latent = latent_feeds(spec)
        fake = net.generator()(latent)
        disc = net.discriminator()
        freeze(disc)
        fake_logit, features = disc(fake)
        # The same features, but only the fed share `li_to_g` of L_I's gradient flows back through them to
        # G (objective.li_to_g: 0 in a plain GAN); Q's own gradient is whole.
        li_to_g = data("li_to_g", [1], "float32")

        def to_q(values):
            return li_to_g * values + (1.0 - li_to_g) * values.detach()

        q_head = net.q_head(disc.features)
        if cfg.q_step == "d":
            freeze(q_head)  # the authors' G step trains G only; Q learns L_I in the D step
        q_views = None
        if cfg.li_views:  # Q reads the categories from changed copies: only what survives the change counts
            theta, bold = data("view_theta", [None, 2, 3], "float32"), data("view_bold", [None, 1, 1, 1], "float32")
            _, view_features = disc(objective.view(fake, theta, bold, net.value_range[0]))
            q_views = q_head(to_q(view_features))
        loss, fetches = objective.gq_step_loss(cfg, spec, fake_logit, q_head(to_q(features)), codes, q_views)
        fetches["fake"] = fake
        optimised = "G_" if cfg.q_step == "d" else ("G_", "Q_")
        optimise(adam(cfg, cfg.lr_g, net.compute), loss, trainable(program, optimised), startup, world)
    return Step(program, fetches)


def build_generate(spec, net, startup):
    program = Program()
    with program_guard(program, startup), unique_name.guard("generate_"):
        _, latent = latent_feeds(spec)
        generator = net.generator()
        generator.eval()
        images = generator(latent)
    return Step(program, {"images": images})


def build_encode(spec, net, startup):
    program = Program()
    with program_guard(program, startup), unique_name.guard("encode_"):
        images = image_feed("images", net.image_shape)
        disc = net.discriminator()
        q_head = net.q_head(disc.features)
        disc.eval()
        q_head.eval()
        cat_logits, cont_params = spec.split_q(q_head(disc.trunk(images)))
        fetches = {}
        if cat_logits:
            fetches["cat_probs"] = paddle.concat([F.softmax(logits, axis=1) for logits in cat_logits], axis=1)
        if cont_params is not None:
            fetches["cont_mean"] = spec.cont.mean_std(cont_params)[0]
    return Step(program, fetches)


def build_ema(inference, startup):
    """A Program that moves each averaged parameter E (and batch-norm statistic) the inference programs
    read towards its trained twin P: E = d E + (1 - d) P, with the decay d fed."""
    names = sorted({p.name for step in inference for p in step.program.global_block().all_parameters()})
    program = Program()
    with program_guard(program, Program()), unique_name.guard("ema_"):  # every parameter exists already
        decay = data("ema_decay", [1], "float32")
        shapes = {p.name: p.shape for step in inference for p in step.program.global_block().all_parameters()}
        for name in names:
            shape = shapes[name]
            average = paddle.static.create_parameter(shape, "float32", name=name)
            trained = paddle.static.create_parameter(shape, "float32", name=name[len(AVERAGE) :])
            paddle.assign(decay * average + (1.0 - decay) * trained, output=average)
    return Step(program, {})


def learning_rates(program):
    """The names of the learning-rate variables of a training program's optimizer."""
    ops = program.global_block().ops
    return [op.attrs()["name"] for op in ops if op.name() == "pd_op.data" and "learning_rate" in op.attrs()["name"]]


def build_train_programs(cfg, spec, compute=None, world=ALONE):
    """The run's Programs; with several ranks (infogan.distributed), both training steps average their
    gradients across them; with --ema, the inference programs read the weights' moving averages."""
    net = NetSpec.from_config(cfg, spec, compute)
    startup = Program()
    d_step = build_d_step(cfg, spec, NetSpec.from_config(cfg, spec, compute, spectral_norm="update"), startup, world)
    gq_step = build_gq_step(cfg, spec, net, startup, world)
    inference = NetSpec.from_config(cfg, spec, compute, averaged=cfg.ema > 0)
    generate, encode = build_generate(spec, inference, startup), build_encode(spec, inference, startup)
    ema = build_ema((generate, encode), startup) if cfg.ema > 0 else None
    return TrainPrograms(startup, d_step, gq_step, generate, encode, ema)


def build_inference(cfg, spec, compute=None):
    """The inference programs alone, with their startup: (startup, generate, encode); with --ema they read
    the moving averages of the weights."""
    net = NetSpec.from_config(cfg, spec, compute, averaged=cfg.ema > 0)
    startup = Program()
    return startup, build_generate(spec, net, startup), build_encode(spec, net, startup)
