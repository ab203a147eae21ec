"""FLOPs of a training iteration, read off the networks a configuration builds.

Each FC, convolution and transposed convolution costs 2 FLOPs per multiply-add: 2 x weights x output
positions (a transposed convolution, which runs the convolution it transposes, x input positions), per
image, in the forward pass and in each backward product: the input's gradient, where one is needed, and
the weights', where they train. Elementwise, batch-norm and optimizer work is left out, so achieved
GFLOP/s is a lower bound on what the machine does.
"""

import math
from dataclasses import dataclass


@dataclass
class Layer:
    name: str
    flops: int  # forward, per image


def layers(net, input_shape, call=None):
    """The network's FC and convolution layers in the order its forward pass runs them, with their
    forward FLOPs per image, from a pass over a placeholder input in a throwaway program."""
    import paddle

    found = []

    def hook(layer, inputs, output):
        spatial = inputs[0] if isinstance(layer, paddle.nn.Conv2DTranspose) else output
        positions = spatial.shape[2] * spatial.shape[3] if len(spatial.shape) == 4 else 1
        found.append(Layer(layer.weight.name, 2 * math.prod(layer.weight.shape) * positions))

    handles = [
        layer.register_forward_post_hook(hook)
        for layer in net.sublayers(include_self=True)
        if isinstance(layer, (paddle.nn.Linear, paddle.nn.Conv2D, paddle.nn.Conv2DTranspose))
    ]
    with paddle.static.program_guard(paddle.static.Program(), paddle.static.Program()):
        (call or net)(paddle.static.data("x", [None, *input_shape], "float32"))
    for handle in handles:
        handle.remove()
    return found


def forward(found):
    return sum(layer.flops for layer in found)


def backward(found, weights, first_input_grad):
    """A backward pass: weight gradients where `weights`, input gradients for every layer but the first
    unless `first_input_grad` (its input is data)."""
    input_grads = sum(layer.flops for i, layer in enumerate(found) if i > 0 or first_input_grad)
    return input_grads + (forward(found) if weights else 0)


def network_layers(cfg):
    """{"G", "D's trunk", "D's head", "Q"}: each network's layers (as `layers` finds them) for `cfg`."""
    import paddle

    from infogan.latent import LatentSpec
    from infogan.nets import NetSpec

    paddle.enable_static()
    net = NetSpec.from_config(cfg, LatentSpec.from_config(cfg))
    scratch = paddle.static.program_guard(paddle.static.Program(), paddle.static.Program())
    with scratch, paddle.utils.unique_name.guard("flops_"):  # parameters of a throwaway program
        gen, disc = net.generator(), net.discriminator()
        return {
            "G": layers(gen, [net.latent_dim]),
            "D's trunk": layers(disc, net.image_shape, lambda x: disc.trunk(x)),
            "D's head": layers(disc.head, [disc.features]),
            "Q": layers(net.q_head(disc.features), [disc.features]),
        }


def iteration_flops(cfg):
    """Analytic FLOPs per image of one training iteration of `cfg`, by step and in all."""
    g, trunk, head, q = network_layers(cfg).values()
    q_in_gq = cfg.q_step != "d"
    gq = (
        forward(g + trunk + head + q)
        + backward(g, weights=True, first_input_grad=False)
        + backward(trunk + head, weights=False, first_input_grad=True)
        + backward(q, weights=q_in_gq, first_input_grad=True)
    )
    if cfg.li_views:  # the moved fakes through D's trunk and Q, and back to G (the move itself: no matmul)
        gq += forward(trunk + q) + backward(trunk, weights=False, first_input_grad=True)
        gq += backward(q, weights=q_in_gq, first_input_grad=True)
    batches = 2 + (cfg.views if cfg.lambda_real else 0)  # real, fake and the views, through D and back
    d_step = batches * (forward(trunk + head) + backward(trunk + head, weights=True, first_input_grad=False))
    q_batches = 1 + (cfg.views if cfg.lambda_real else 0) + (1 if cfg.q_step != "g" else 0)
    d_step += q_batches * forward(q)  # Q on the real batch always (its statistics), on views and fakes
    q_trained = (cfg.views + 1 if cfg.lambda_real else 0) + (1 if cfg.q_step != "g" else 0)
    d_step += q_trained * backward(q, weights=True, first_input_grad=True)
    if cfg.fresh_fakes:
        d_step += forward(g)
    return {"gq_step": gq, "d_step": d_step, "iteration": gq + d_step}


def gradient_floats(cfg):
    """How many gradient values one iteration all-reduces across ranks: every parameter each of the two
    Programs trains."""
    import paddle

    from infogan.latent import LatentSpec
    from infogan.programs import build_train_programs, trainable

    paddle.enable_static()
    with paddle.utils.unique_name.guard("floats_"):
        programs = build_train_programs(cfg, LatentSpec.from_config(cfg))
    d_prefixes = ("D_", "Q_") if cfg.q_step != "g" or cfg.lambda_real else ("D_",)
    gq_prefixes = ("G_",) if cfg.q_step == "d" else ("G_", "Q_")
    steps = ((programs.d_step, d_prefixes), (programs.gq_step, gq_prefixes))
    return sum(math.prod(p.shape) for step, prefixes in steps for p in trainable(step.program, prefixes))


def main(cfg):
    """Prints the configuration's FLOPs per image: each network's layers, and each training step."""
    for name, found in network_layers(cfg).items():
        print(f"{name}, forward MFLOPs: " + ", ".join(f"{layer.name} {layer.flops / 1e6:.2f}" for layer in found))
    steps = iteration_flops(cfg)
    print(
        f"MFLOPs per image: G+Q step {steps['gq_step'] / 1e6:.1f}, D step {steps['d_step'] / 1e6:.1f}, "
        f"iteration {steps['iteration'] / 1e6:.1f} (forward and backward products; 2 FLOPs a multiply-add)"
    )


if __name__ == "__main__":
    from infogan import cli
    from infogan.config import TrainConfig

    parser = cli.Parser(
        "FLOPs per image of a training configuration, from the networks it builds: "
        "`python -m benchmarks.flops [train.py's flags]` (the defaults without flags)."
    )
    cli.add_config_flags(parser)
    cli.run(lambda args: main(TrainConfig.from_flags(vars(args))), parser.parse_args())
