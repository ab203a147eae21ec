"""The networks, as Paddle layers with globally named parameters: the InfoGAN paper's MNIST networks
(appendix C.1, arch "paper") and the two-layer MLPs of the InfoGAN article's GAN demo (arch "mlp").

Every parameter is named `<prefix>_<layer>.<w|b>` so that separate Programs share it through the scope:
  G_  generator                     (optimised in the G+Q step)
  D_  discriminator trunk + D head  (optimised in the D step)
  Q_  Q head on D's trunk           (optimised in the G+Q step, and with --lambda-real in the D step)
Layers followed by batch norm carry no bias: BN's own shift makes it redundant.
"""

import paddle
import paddle.nn as nn
import paddle.nn.functional as F

from infogan import batched_conv

LEAK = 0.1
IMAGE_SHAPE = (1, 28, 28)


def _attr(name):
    return paddle.ParamAttr(name=name)


def linear(name, n_in, n_out, bias=True):
    return nn.Linear(n_in, n_out, _attr(name + ".w"), _attr(name + ".b") if bias else False)


def conv(name, c_in, c_out, bias=True):
    """4x4 convolution, stride 2: halves the spatial size."""
    layer = BatchedConv2D(c_in, c_out, 4, 2, 1, weight_attr=_attr(name + ".w"), bias_attr=False)
    return ChannelBias(layer, name, c_out) if bias else layer


def deconv(name, c_in, c_out, bias=True):
    """4x4 transposed convolution, stride 2: doubles the spatial size."""
    layer = BatchedConv2DTranspose(c_in, c_out, 4, 2, 1, weight_attr=_attr(name + ".w"), bias_attr=False)
    return ChannelBias(layer, name, c_out) if bias else layer


class BatchedConv2D(nn.Conv2D):
    """Paddle's Conv2D (its parameter, shape and initialisation), run on the CPU as one matrix product per
    batch (infogan.batched_conv): Paddle's kernel, one product per image, took 1.9 to 2.4 times as long
    (scripts/benchmark.py --layers --rounds 3)."""

    def forward(self, x):
        if batched_conv.ops() is None:
            return super().forward(x)
        return batched_conv.conv2d(x, self.weight, self._stride[0], self._padding)


class BatchedConv2DTranspose(nn.Conv2DTranspose):
    """Paddle's Conv2DTranspose, run as BatchedConv2D runs Conv2D."""

    def forward(self, x):
        if batched_conv.ops() is None:
            return super().forward(x)
        return batched_conv.conv2d_transpose(x, self.weight, self._stride[0], self._padding)


class ChannelBias(nn.Layer):
    """A convolution's per-channel bias, added after it as a tensor of the output's shape: Paddle's CPU add
    broadcasting a [1, C, 1, 1] bias over the batch, forward and gradient, took three times as long as an
    expand followed by a same-shape add (about 20 ms of each training iteration at batch 64)."""

    def __init__(self, layer, name, channels):
        super().__init__()
        self.layer = layer
        self.bias = self.create_parameter([channels], attr=_attr(name + ".b"), is_bias=True)

    def forward(self, x):
        h = self.layer(x)
        return h + paddle.expand_as(self.bias.reshape([1, -1, 1, 1]), h)


def batch_norm(name, channels, image=False):
    layer = nn.BatchNorm2D if image else nn.BatchNorm1D
    return layer(channels, weight_attr=_attr(name + ".w"), bias_attr=_attr(name + ".b"), name=name)


class Generator(nn.Layer):
    """G(z, c): FC 1024-BN-ReLU, FC 7x7x128-BN-ReLU, deconv 64-BN-ReLU, deconv 1-sigmoid (pixels in [0, 1])."""

    def __init__(self, input_dim):
        super().__init__()
        self.fc1 = linear("G_fc1", input_dim, 1024, bias=False)
        self.bn1 = batch_norm("G_bn1", 1024)
        self.fc2 = linear("G_fc2", 1024, 128 * 7 * 7, bias=False)
        self.bn2 = batch_norm("G_bn2", 128 * 7 * 7)
        self.deconv1 = deconv("G_deconv1", 128, 64, bias=False)
        self.bn3 = batch_norm("G_bn3", 64, image=True)
        self.deconv2 = deconv("G_deconv2", 64, 1)

    def forward(self, latent):
        h = F.relu(self.bn1(self.fc1(latent)))
        h = F.relu(self.bn2(self.fc2(h)))
        h = paddle.reshape(h, [-1, 128, 7, 7])
        h = F.relu(self.bn3(self.deconv1(h)))
        return F.sigmoid(self.deconv2(h))


def per_group(batch_norm_layer, h, groups):
    """Batch norm with its statistics taken over each of `groups` equal parts of the batch on its own."""
    if groups == 1:
        return batch_norm_layer(h)
    return paddle.concat([batch_norm_layer(part) for part in paddle.split(h, groups)], axis=0)


class TrunkAndHead(nn.Layer):
    """A discriminator: `trunk` (shared with Q) maps images to features, `head` maps features to D's logit.

    `groups` > 1 runs several batches stacked into one (the D step's real and fake batches) through each
    weight once, while batch norm still normalises each batch by its own statistics: the result is that
    of separate passes, but each weight gets one gradient instead of a sum of one per pass.
    """

    def forward(self, images, groups=1):
        """(D's logit, trunk features) for a batch of images."""
        features = self.trunk(images, groups)
        return self.head(features), features


class Discriminator(TrunkAndHead):
    """D's trunk (shared with Q): conv 64-lReLU, conv 128-BN-lReLU, FC 1024-BN-lReLU; D head: FC 1 (a logit)."""

    features = 1024

    def __init__(self):
        super().__init__()
        self.conv1 = conv("D_conv1", 1, 64)
        self.conv2 = conv("D_conv2", 64, 128, bias=False)
        self.bn2 = batch_norm("D_bn2", 128, image=True)
        self.fc3 = linear("D_fc3", 128 * 7 * 7, self.features, bias=False)
        self.bn3 = batch_norm("D_bn3", self.features)
        self.head = linear("D_out", self.features, 1)

    def trunk(self, images, groups=1):
        h = F.leaky_relu(self.conv1(images), LEAK)
        h = F.leaky_relu(per_group(self.bn2, self.conv2(h), groups), LEAK)
        h = paddle.flatten(h, 1)
        return F.leaky_relu(per_group(self.bn3, self.fc3(h), groups), LEAK)


class MLPGenerator(nn.Layer):
    """The article's G: FC 256-ReLU, FC 784-sigmoid."""

    def __init__(self, input_dim):
        super().__init__()
        self.fc1 = linear("G_mlp1", input_dim, 256)
        self.fc2 = linear("G_mlp2", 256, 28 * 28)

    def forward(self, latent):
        return paddle.reshape(F.sigmoid(self.fc2(F.relu(self.fc1(latent)))), [-1, *IMAGE_SHAPE])


class MLPDiscriminator(TrunkAndHead):
    """The article's D: FC 256-ReLU as the trunk, FC 1 as the head (its sigmoid lives in the loss)."""

    features = 256

    def __init__(self):
        super().__init__()
        self.fc1 = linear("D_mlp1", 28 * 28, self.features)
        self.head = linear("D_mlp_out", self.features, 1)

    def trunk(self, images, groups=1):  # no batch norm here: stacked batches need nothing more
        return F.relu(self.fc1(paddle.flatten(images, 1)))


ARCHITECTURES = {"paper": (Generator, Discriminator), "mlp": (MLPGenerator, MLPDiscriminator)}


class QHead(nn.Layer):
    """Q(c|x) on D's trunk features: FC 128-BN-lReLU, then the codes' parameters (see latent.LatentSpec)."""

    def __init__(self, q_dim, in_features):
        super().__init__()
        self.fc1 = linear("Q_fc1", in_features, 128, bias=False)
        self.bn1 = batch_norm("Q_bn1", 128)
        self.out = linear("Q_out", 128, q_dim)

    def forward(self, features):
        return self.out(F.leaky_relu(self.bn1(self.fc1(features)), LEAK))
