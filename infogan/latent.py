"""Latent codes as data: each code samples its prior and scores Q's output with its L_I term.

The generator's input is [z, c_cat, c_cont]. Q(c|x) outputs, per image, the logits of the categorical
code followed by the parameters of the continuous codes (their means, then their standard deviations
when these are learned). L_I(G, Q) = E[log Q(c|x)] + H(c); H(c) is a constant and is dropped, so the
`logli` methods below are the whole of what training maximises. `entropy` gives H(c) for reporting.
"""

import math

import numpy as np
import paddle
import paddle.nn.functional as F

LOG_2PI = math.log(2.0 * math.pi)
MIN_STD = 1e-3  # keeps a learned std away from zero, where log-likelihood gradients explode


class UniformNoise:
    """Incompressible noise z ~ Unif(-1, 1)^dim; not regularised, so it has no L_I term."""

    def __init__(self, dim):
        self.dim = dim

    def sample_prior(self, rng, n):
        return rng.uniform(-1.0, 1.0, size=(n, self.dim)).astype("float32")


class CategoricalCode:
    """c ~ Cat(K, 1/K), fed one-hot. L_I = sum_k c_k log softmax(logits)_k = -cross-entropy."""

    def __init__(self, k):
        self.dim = k
        self.q_dim = k

    def sample_prior(self, rng, n):
        return np.eye(self.dim, dtype="float32")[rng.integers(0, self.dim, size=n)]

    def logli(self, c, logits):
        return paddle.sum(c * F.log_softmax(logits, axis=1), axis=1)

    def entropy(self):
        return math.log(self.dim)

    def paired_information(self, logits, logits_other):
        """I(c; c') of Q's categories for two views of each image in a batch (Ji et al., IIC, 2019): the
        joint P[k, l] = mean over the batch of q(k|x) q(l|x'), symmetrised; I = sum P log(P / (P_k P_l)).
        At most log K, reached when Q spreads the batch evenly over the K categories, is sure of each
        image, and gives both views of an image the same category."""
        joint = paddle.matmul(F.softmax(logits, axis=1), F.softmax(logits_other, axis=1), transpose_x=True)
        joint = joint + joint.T
        joint = paddle.clip(joint / paddle.sum(joint), min=1e-12)
        marginal_rows = paddle.sum(joint, axis=1, keepdim=True)
        marginal_cols = paddle.sum(joint, axis=0, keepdim=True)
        return paddle.sum(joint * (paddle.log(joint) - paddle.log(marginal_rows) - paddle.log(marginal_cols)))


class ContinuousCode:
    """c ~ Unif(-1, 1)^n. Q models each code as a Gaussian; L_I is its log-likelihood summed over codes:
    -log(sigma) - log(2 pi)/2 - (c - mu)^2 / (2 sigma^2). With fixed_std, sigma = 1."""

    def __init__(self, n, fixed_std):
        self.dim = n
        self.fixed_std = fixed_std
        self.q_dim = n if fixed_std else 2 * n

    def sample_prior(self, rng, n):
        return rng.uniform(-1.0, 1.0, size=(n, self.dim)).astype("float32")

    def mean_std(self, q_params):
        mean = q_params[:, : self.dim]
        if self.fixed_std:
            return mean, None
        return mean, F.softplus(q_params[:, self.dim :]) + MIN_STD

    def logli(self, c, q_params):
        mean, std = self.mean_std(q_params)
        if std is None:
            return paddle.sum(-0.5 * LOG_2PI - 0.5 * paddle.square(c - mean), axis=1)
        z = (c - mean) / std
        return paddle.sum(-paddle.log(std) - 0.5 * LOG_2PI - 0.5 * paddle.square(z), axis=1)

    def entropy(self):
        return self.dim * math.log(2.0)


class LatentSpec:
    """The generator's input: noise z, one categorical code and n continuous codes."""

    def __init__(self, noise_dim=62, categories=10, continuous=2, fixed_std=True):
        self.noise = UniformNoise(noise_dim)
        self.cat = CategoricalCode(categories)
        self.cont = ContinuousCode(continuous, fixed_std)

    @classmethod
    def from_config(cls, cfg):
        return cls(cfg.noise_dim, cfg.categories, cfg.continuous, cfg.cont_std == "fixed")

    @property
    def input_dim(self):
        return self.noise.dim + self.cat.dim + self.cont.dim

    @property
    def q_dim(self):
        return self.cat.q_dim + self.cont.q_dim

    def sample(self, rng, n):
        """A batch of generator inputs from the prior, as the feed dict of the programs."""
        return {
            "z": self.noise.sample_prior(rng, n),
            "c_cat": self.cat.sample_prior(rng, n),
            "c_cont": self.cont.sample_prior(rng, n),
        }

    def split_q(self, q_out):
        """Q's output -> (categorical logits, continuous-code parameters)."""
        return q_out[:, : self.cat.q_dim], q_out[:, self.cat.q_dim :]

    def logli(self, c_cat, c_cont, q_out):
        """Batch means of the two L_I terms (categorical, continuous), as Paddle scalars."""
        cat_logits, cont_params = self.split_q(q_out)
        li_cat = paddle.mean(self.cat.logli(c_cat, cat_logits))
        return li_cat, paddle.mean(self.cont.logli(c_cont, cont_params))
