"""The networks, as Paddle layers with globally named parameters: the InfoGAN paper's (appendix C) for
MNIST and 3D faces (arch "mnist", table 1 and 5), SVHN and CelebA ("svhn", tables 2 and 3), 3D chairs
("chairs", table 4), and the two-layer MLPs of the InfoGAN article's GAN demo ("mlp").

Every parameter is named `<prefix>_<layer>.<w|b>` so that separate Programs share it through the scope:
  G_  generator                     (optimised in the G+Q step)
  D_  discriminator trunk + D head  (optimised in the D step)
  Q_  Q head on D's trunk           (optimised in the step(s) --q-step names, and with the clustering term
                                     in the D step)
Layers followed by batch norm carry no bias: BN's own shift makes it redundant. With --ema, the inference
programs read E-prefixed copies of every parameter and statistic: their moving averages (programs.build_ema).

Batch norm keeps running statistics for inference of real images only (D's and Q's) and of G's own
samples (G's): every other pass normalises by its batch's statistics without recording them (BatchNorm).
"""

import contextlib
from dataclasses import dataclass, field

import paddle
import paddle.nn as nn
import paddle.nn.functional as F

from infogan.ops import batched_conv

AVERAGE = "E"  # the prefix of a parameter's moving average
KERNEL = 4  # every convolution's side, as in the paper's tables


@dataclass(frozen=True)
class Compute:
    """How the networks and the programs compute: choices of speed, none of which changes the mathematics
    (docs/performance.md measures each)."""

    batched_conv: bool = True  # the project's C++ convolutions on the CPU (where they build), else Paddle's
    expanded_bias: bool = True  # a convolution's bias added after an explicit expand, not by broadcasting
    stacked_d: bool = True  # the D step runs its batches through D stacked, in one pass
    multi_tensor_adam: bool = True  # one fused Adam update for all of a step's parameters


@dataclass(frozen=True)
class NetSpec:
    """What the networks of a run are built from."""

    arch: str
    image_shape: tuple  # (channels, height, width)
    latent_dim: int
    q_dim: int
    leak: float = 0.1
    init: str = "paddle"
    bias_init: str = "zero"
    compute: Compute = field(default_factory=Compute)
    averaged: bool = False  # the layers read the moving averages of the weights (E-prefixed names) instead
    spectral_norm: str | None = None  # D's layers normalised: "update" (the D step: power iteration) or "read"

    @classmethod
    def from_config(cls, cfg, spec, compute=None, averaged=False, spectral_norm="read"):
        return cls(
            cfg.arch,
            cfg.image_shape,
            spec.input_dim,
            spec.q_dim,
            cfg.leak,
            cfg.init,
            cfg.bias_init,
            compute or Compute(),
            averaged,
            spectral_norm if cfg.spectral_norm else None,
        )

    def generator(self):
        return ARCHITECTURES[self.arch].generator(self)

    def discriminator(self):
        return ARCHITECTURES[self.arch].discriminator(self)

    def q_head(self, in_features):
        return QHead(self, in_features)

    @property
    def value_range(self):
        """The range of G's pixels, which real images are scaled to: its output's squashing function's."""
        return ARCHITECTURES[self.arch].value_range

    # Layers, named and initialised as the run asks.

    def _name(self, name):
        return AVERAGE + name if self.averaged else name

    def _attr(self, name, init=None):
        return paddle.ParamAttr(name=self._name(name), initializer=init)

    def _weight(self, name):
        return self._attr(name + ".w", nn.initializer.Normal(0.0, 0.02) if self.init == "normal" else None)

    def _bias(self, name, fan_in):
        """Zero (Paddle's default), or, with --bias-init uniform, U(+-1/sqrt(fan_in)) as PyTorch's layers:
        with zero biases D's first layer and leaky ReLU are positively homogeneous and the batch norm after
        them removes scale, so D starts blind to the contrast of G's near-blank first samples (docs/results.md)."""
        if self.bias_init == "uniform":
            bound = fan_in**-0.5
            return self._attr(name + ".b", nn.initializer.Uniform(-bound, bound))
        return self._attr(name + ".b", nn.initializer.Constant(0.0) if self.init == "normal" else None)

    def linear(self, name, n_in, n_out, bias=True):
        layer = Linear(n_in, n_out, self._weight(name), self._bias(name, n_in) if bias else False)
        return self._normalised(layer, name, rows=n_in)

    def conv(self, name, c_in, c_out, bias=True, stride=2):
        """4x4 convolution; stride 2 halves the side, stride 1 keeps it."""
        padding = 1 if stride == 2 else "SAME"
        layer = Conv2D(c_in, c_out, KERNEL, stride, padding, weight_attr=self._weight(name), bias_attr=False)
        layer.batched = self.compute.batched_conv and stride == 2
        layer = self._normalised(layer, name, rows=c_out)
        if not bias:
            return layer
        return ChannelBias(layer, self._bias(name, c_in * KERNEL**2), c_out, self.compute.expanded_bias)

    def _normalised(self, layer, name, rows):
        """With --spectral-norm, D's layers divide their weights by their largest singular value."""
        if self.spectral_norm and name.startswith("D_"):
            layer.normalise = SpectralNorm(layer, self._name(name + ".u"), rows, self.spectral_norm == "update")
        return layer

    def deconv(self, name, c_in, c_out, bias=True, stride=2):
        """4x4 transposed convolution; stride 2 doubles the side, stride 1 keeps it."""
        padding = 1 if stride == 2 else "SAME"
        layer = Conv2DTranspose(c_in, c_out, KERNEL, stride, padding, weight_attr=self._weight(name), bias_attr=False)
        layer.batched = self.compute.batched_conv and stride == 2
        if not bias:
            return layer
        # PyTorch counts a transposed convolution's fan-in over its output channels (its weight's 2nd axis).
        return ChannelBias(layer, self._bias(name, c_out * KERNEL**2), c_out, self.compute.expanded_bias)

    def batch_norm(self, name, channels, image=False):
        scale = nn.initializer.Normal(1.0, 0.02) if self.init == "normal" else None
        layer = BatchNorm2D if image else BatchNorm1D
        weight, bias = self._attr(name + ".w", scale), self._attr(name + ".b")
        return layer(channels, weight_attr=weight, bias_attr=bias, name=self._name(name))


class SpectralNorm:
    """A layer's weight divided by its largest singular value, estimated by one step of power iteration
    per pass from a kept vector u (Miyato et al., 2018); `update` (the D step only) moves u on."""

    def __init__(self, layer, name, rows, update):
        self.update = update
        self.u = layer.create_parameter([rows], attr=paddle.ParamAttr(name=name, initializer=nn.initializer.Normal()))
        self.u.stop_gradient = True

    def __call__(self, weight):
        matrix = paddle.reshape(weight, [self.u.shape[0], -1])
        v = F.normalize(paddle.matmul(self.u.unsqueeze(0), matrix).squeeze(0), axis=0).detach()
        u = F.normalize(paddle.matmul(matrix, v.unsqueeze(1)).squeeze(1), axis=0).detach()
        if self.update:
            paddle.assign(u, output=self.u)
        sigma = paddle.sum(u * paddle.matmul(matrix, v.unsqueeze(1)).squeeze(1))
        return weight / sigma


class Linear(nn.Linear):
    """Paddle's Linear, its weight normalised where `normalise` says so."""

    normalise = None

    def forward(self, x):
        if self.normalise is None:
            return super().forward(x)
        return F.linear(x, self.normalise(self.weight), self.bias)


class Conv2D(nn.Conv2D):
    """Paddle's Conv2D (its parameter, shape and initialisation), run on the CPU, where `batched`, as one
    matrix product per batch (infogan.ops.batched_conv; docs/performance.md); its weight normalised where
    `normalise` says so."""

    batched = False
    normalise = None

    def forward(self, x):
        weight = self.normalise(self.weight) if self.normalise else self.weight
        if self.batched and batched_conv.ops() is not None and not _twice_differentiable:
            return add_channel_bias(batched_conv.conv2d(x, weight, self._stride[0], self._padding), self.bias)
        if self.normalise is None:
            return super().forward(x)
        return F.conv2d(x, weight, self.bias, self._stride, self._padding, self._dilation, self._groups)


class Conv2DTranspose(nn.Conv2DTranspose):
    """Paddle's Conv2DTranspose, run as Conv2D runs Conv2D."""

    batched = False

    def forward(self, x):
        if self.batched and batched_conv.ops() is not None:
            h = batched_conv.conv2d_transpose(x, self.weight, self._stride[0], self._padding)
            return add_channel_bias(h, self.bias)
        return super().forward(x)


def add_channel_bias(h, bias, expanded=False):
    """h [N, C, H, W] plus a per-channel bias [C] (None adds nothing: the batched kernels compute no bias,
    so a layer built with one adds it here). `expanded`: see ChannelBias."""
    if bias is None:
        return h
    bias = bias.reshape([1, -1, 1, 1])
    return h + (paddle.expand_as(bias, h) if expanded else bias)


class ChannelBias(nn.Layer):
    """A convolution's per-channel bias, added after it. `expanded`: as a tensor of the output's shape,
    since Paddle's CPU add broadcasting a [1, C, 1, 1] bias over the batch, forward and gradient, is much
    slower than an expand followed by a same-shape add (docs/performance.md)."""

    def __init__(self, layer, attr, channels, expanded=True):
        super().__init__()
        self.layer = layer
        self.expanded = expanded
        self.bias = self.create_parameter([channels], attr=attr, is_bias=True)

    def forward(self, x):
        return add_channel_bias(self.layer(x), self.bias, self.expanded)


class _TrackingChoice:
    """Batch norm whose call says whether this batch's statistics enter the running statistics."""

    def forward(self, x, track=True):
        if _twice_differentiable and self.training and not track:
            return self._decomposed(x)
        if self.training and not track:  # the batch's statistics, recorded only into throwaway copies
            mean, variance = paddle.zeros_like(self._mean), paddle.ones_like(self._variance)
        else:
            mean, variance = self._mean, self._variance
        return F.batch_norm(
            x, mean, variance, self.weight, self.bias, self.training, self._momentum, self._epsilon, self._data_format
        )

    def _decomposed(self, x):
        """Training-mode batch norm of the batch's own statistics out of elementwise ops and means: the same
        numbers as F.batch_norm, whose CPU double gradient took 1.3 s a call at batch 64 (Paddle's profiler)."""
        axes = [0] if x.ndim == 2 else [0, 2, 3]
        shape = [1, -1] if x.ndim == 2 else [1, -1, 1, 1]
        centred = x - paddle.mean(x, axis=axes, keepdim=True)
        variance = paddle.mean(paddle.square(centred), axis=axes, keepdim=True)
        normed = centred * paddle.rsqrt(variance + self._epsilon)
        return normed * self.weight.reshape(shape) + self.bias.reshape(shape)


class BatchNorm1D(_TrackingChoice, nn.BatchNorm1D):
    pass


class BatchNorm2D(_TrackingChoice, nn.BatchNorm2D):
    pass


def per_group(batch_norm, h, groups, track):
    """Batch norm with statistics taken over each of `groups` equal parts of the batch on its own; with
    `track`, the first part's enter the running statistics (the real images, in the D step)."""
    if groups == 1:
        return batch_norm(h, track)
    parts = paddle.split(h, groups)
    return paddle.concat([batch_norm(part, track and i == 0) for i, part in enumerate(parts)], axis=0)


_twice_differentiable = False  # see twice_differentiable


@contextlib.contextmanager
def twice_differentiable():
    """Within it, the layers built are differentiable twice at a usable speed: Paddle's convolutions (the
    project's have no double gradient) and batch norm of the batch's own statistics (not recorded) out of
    elementwise ops. A switch at build time: the Programs built within it keep what it chose."""
    global _twice_differentiable
    _twice_differentiable = True
    try:
        yield
    finally:
        _twice_differentiable = False


def flat(h):
    """[N, ...] -> [N, features]: a reshape rather than paddle.flatten, whose gradient has no gradient of its
    own under PIR, and D's must (--r1 differentiates D's input gradient)."""
    return paddle.reshape(h, [0, -1])


class Discriminator(nn.Layer):
    """`trunk` (shared with Q) maps images to features, `head` maps features to D's logit.

    `groups` > 1 runs several batches stacked into one (the D step's real and fake batches) through each
    weight once, while batch norm still normalises each batch by its own statistics: the result is that
    of separate passes, but each weight gets one gradient instead of a sum of one per pass.
    `track`: the first group's batch-norm statistics enter the running statistics used for inference.
    """

    features = None

    def forward(self, images, groups=1, track=False):
        """(D's logit, trunk features) for a batch of images."""
        features = self.trunk(images, groups, track)
        return self.head(features), features


class MnistGenerator(nn.Layer):
    """G(z, c): FC 1024-BN-ReLU, FC (S/4)^2 x 128-BN-ReLU, deconv 64-BN-ReLU, deconv C-sigmoid."""

    def __init__(self, net):
        super().__init__()
        self.channels, side, _ = net.image_shape
        self.start = side // 4
        self.fc1 = net.linear("G_fc1", net.latent_dim, 1024, bias=False)
        self.bn1 = net.batch_norm("G_bn1", 1024)
        self.fc2 = net.linear("G_fc2", 1024, 128 * self.start**2, bias=False)
        self.bn2 = net.batch_norm("G_bn2", 128 * self.start**2)
        self.deconv1 = net.deconv("G_deconv1", 128, 64, bias=False)
        self.bn3 = net.batch_norm("G_bn3", 64, image=True)
        self.deconv2 = net.deconv("G_deconv2", 64, self.channels)

    def forward(self, latent, track=True):
        h = F.relu(self.bn1(self.fc1(latent), track))
        h = F.relu(self.bn2(self.fc2(h), track))
        h = paddle.reshape(h, [-1, 128, self.start, self.start])
        h = F.relu(self.bn3(self.deconv1(h), track))
        return F.sigmoid(self.deconv2(h))


class MnistDiscriminator(Discriminator):
    """D's trunk: conv 64-lReLU, conv 128-BN-lReLU, FC 1024-BN-lReLU; D's head: FC 1 (a logit)."""

    features = 1024

    def __init__(self, net):
        super().__init__()
        self.leak = net.leak
        side = net.image_shape[1] // 4
        self.conv1 = net.conv("D_conv1", net.image_shape[0], 64)
        self.conv2 = net.conv("D_conv2", 64, 128, bias=False)
        self.bn2 = net.batch_norm("D_bn2", 128, image=True)
        self.fc3 = net.linear("D_fc3", 128 * side * side, self.features, bias=False)
        self.bn3 = net.batch_norm("D_bn3", self.features)
        self.head = net.linear("D_out", self.features, 1)

    def trunk(self, images, groups=1, track=False):
        h = F.leaky_relu(self.conv1(images), self.leak)
        h = F.leaky_relu(per_group(self.bn2, self.conv2(h), groups, track), self.leak)
        h = flat(h)
        return F.leaky_relu(per_group(self.bn3, self.fc3(h), groups, track), self.leak)


class SvhnGenerator(nn.Layer):
    """G(z, c): FC (S/16)^2 x 448-BN-ReLU, deconv 256-BN-ReLU, deconv 128-ReLU, deconv 64-ReLU, deconv C-tanh."""

    def __init__(self, net):
        super().__init__()
        channels, side, _ = net.image_shape
        self.start = side // 16
        self.fc1 = net.linear("G_fc1", net.latent_dim, 448 * self.start**2, bias=False)
        self.bn1 = net.batch_norm("G_bn1", 448 * self.start**2)
        self.deconv1 = net.deconv("G_deconv1", 448, 256, bias=False)
        self.bn2 = net.batch_norm("G_bn2", 256, image=True)
        self.deconv2 = net.deconv("G_deconv2", 256, 128)
        self.deconv3 = net.deconv("G_deconv3", 128, 64)
        self.deconv4 = net.deconv("G_deconv4", 64, channels)

    def forward(self, latent, track=True):
        h = F.relu(self.bn1(self.fc1(latent), track))
        h = paddle.reshape(h, [-1, 448, self.start, self.start])
        h = F.relu(self.bn2(self.deconv1(h), track))
        h = F.relu(self.deconv2(h))
        h = F.relu(self.deconv3(h))
        return paddle.tanh(self.deconv4(h))


class SvhnDiscriminator(Discriminator):
    """D's trunk: conv 64-lReLU, conv 128-BN-lReLU, conv 256-BN-lReLU; D's head: FC 1 on the flattened map."""

    def __init__(self, net):
        super().__init__()
        self.leak = net.leak
        side = net.image_shape[1] // 8
        self.features = 256 * side * side
        self.conv1 = net.conv("D_conv1", net.image_shape[0], 64)
        self.conv2 = net.conv("D_conv2", 64, 128, bias=False)
        self.bn2 = net.batch_norm("D_bn2", 128, image=True)
        self.conv3 = net.conv("D_conv3", 128, 256, bias=False)
        self.bn3 = net.batch_norm("D_bn3", 256, image=True)
        self.head = net.linear("D_out", self.features, 1)

    def trunk(self, images, groups=1, track=False):
        h = F.leaky_relu(self.conv1(images), self.leak)
        h = F.leaky_relu(per_group(self.bn2, self.conv2(h), groups, track), self.leak)
        h = F.leaky_relu(per_group(self.bn3, self.conv3(h), groups, track), self.leak)
        return flat(h)


class ChairsGenerator(nn.Layer):
    """G(z, c): FC 1024-BN-ReLU, FC (S/8)^2 x 256-BN-ReLU, deconv 256-BN-ReLU and again (stride 1),
    deconv 128-BN-ReLU, deconv 64-BN-ReLU, deconv C-sigmoid (stride 2)."""

    def __init__(self, net):
        super().__init__()
        channels, side, _ = net.image_shape
        self.start = side // 8
        self.fc1 = net.linear("G_fc1", net.latent_dim, 1024, bias=False)
        self.bn1 = net.batch_norm("G_bn1", 1024)
        self.fc2 = net.linear("G_fc2", 1024, 256 * self.start**2, bias=False)
        self.bn2 = net.batch_norm("G_bn2", 256 * self.start**2)
        self.deconvs = nn.LayerList(
            [
                net.deconv("G_deconv1", 256, 256, bias=False, stride=1),
                net.deconv("G_deconv2", 256, 256, bias=False, stride=1),
                net.deconv("G_deconv3", 256, 128, bias=False),
                net.deconv("G_deconv4", 128, 64, bias=False),
            ]
        )
        self.bns = nn.LayerList(
            [net.batch_norm(f"G_bn{i}", c, image=True) for i, c in ((3, 256), (4, 256), (5, 128), (6, 64))]
        )
        self.out = net.deconv("G_deconv5", 64, channels)

    def forward(self, latent, track=True):
        h = F.relu(self.bn1(self.fc1(latent), track))
        h = F.relu(self.bn2(self.fc2(h), track))
        h = paddle.reshape(h, [-1, 256, self.start, self.start])
        for deconv, bn in zip(self.deconvs, self.bns, strict=True):
            h = F.relu(bn(deconv(h), track))
        return F.sigmoid(self.out(h))


class ChairsDiscriminator(Discriminator):
    """D's trunk: conv 64-lReLU, conv 128-BN-lReLU, conv 256-BN-lReLU (stride 2), conv 256-BN-lReLU twice
    (stride 1), FC 1024-BN-lReLU; D's head: FC 1."""

    features = 1024

    def __init__(self, net):
        super().__init__()
        self.leak = net.leak
        side = net.image_shape[1] // 8
        self.conv1 = net.conv("D_conv1", net.image_shape[0], 64)
        shapes = ((64, 128, 2), (128, 256, 2), (256, 256, 1), (256, 256, 1))
        self.convs = nn.LayerList(
            [net.conv(f"D_conv{i + 2}", c_in, c_out, bias=False, stride=s) for i, (c_in, c_out, s) in enumerate(shapes)]
        )
        self.bns = nn.LayerList(
            [net.batch_norm(f"D_bn{i + 2}", c_out, image=True) for i, (_, c_out, _) in enumerate(shapes)]
        )
        self.fc = net.linear("D_fc6", 256 * side * side, self.features, bias=False)
        self.bn_fc = net.batch_norm("D_bn6", self.features)
        self.head = net.linear("D_out", self.features, 1)

    def trunk(self, images, groups=1, track=False):
        h = F.leaky_relu(self.conv1(images), self.leak)
        for conv, bn in zip(self.convs, self.bns, strict=True):
            h = F.leaky_relu(per_group(bn, conv(h), groups, track), self.leak)
        h = self.fc(flat(h))
        return F.leaky_relu(per_group(self.bn_fc, h, groups, track), self.leak)


class MLPGenerator(nn.Layer):
    """The article's G: FC 256-ReLU, FC C*S*S-sigmoid."""

    def __init__(self, net):
        super().__init__()
        self.shape = list(net.image_shape)
        self.fc1 = net.linear("G_mlp1", net.latent_dim, 256)
        self.fc2 = net.linear("G_mlp2", 256, self.shape[0] * self.shape[1] * self.shape[2])

    def forward(self, latent, track=True):
        return paddle.reshape(F.sigmoid(self.fc2(F.relu(self.fc1(latent)))), [-1, *self.shape])


class MLPDiscriminator(Discriminator):
    """The article's D: FC 256-ReLU as the trunk, FC 1 as the head (its sigmoid lives in the loss)."""

    features = 256

    def __init__(self, net):
        super().__init__()
        channels, height, width = net.image_shape
        self.fc1 = net.linear("D_mlp1", channels * height * width, self.features)
        self.head = net.linear("D_mlp_out", self.features, 1)

    def trunk(self, images, groups=1, track=False):  # no batch norm here: stacked batches need nothing more
        return F.relu(self.fc1(flat(images)))


class QHead(nn.Layer):
    """Q(c|x) on D's trunk features: FC 128-BN-lReLU (for the mlp architecture, which has no batch norm
    anywhere, FC 128-lReLU), then the codes' parameters (latent.LatentSpec)."""

    def __init__(self, net, in_features):
        super().__init__()
        self.leak = net.leak
        batch_norm = net.arch != "mlp"
        self.fc1 = net.linear("Q_fc1", in_features, 128, bias=not batch_norm)
        self.bn1 = net.batch_norm("Q_bn1", 128) if batch_norm else None
        self.out = net.linear("Q_out", 128, net.q_dim)

    def forward(self, features, track=False):
        h = self.fc1(features)
        return self.out(F.leaky_relu(self.bn1(h, track) if self.bn1 else h, self.leak))


@dataclass(frozen=True)
class Architecture:
    generator: type
    discriminator: type
    value_range: tuple  # of G's pixels (the side its images need: config.ARCH_SIDE_MULTIPLE)


ARCHITECTURES = {
    "mnist": Architecture(MnistGenerator, MnistDiscriminator, (0.0, 1.0)),
    "svhn": Architecture(SvhnGenerator, SvhnDiscriminator, (-1.0, 1.0)),
    "chairs": Architecture(ChairsGenerator, ChairsDiscriminator, (0.0, 1.0)),
    "mlp": Architecture(MLPGenerator, MLPDiscriminator, (0.0, 1.0)),
}
