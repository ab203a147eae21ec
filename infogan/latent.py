"""Latent codes as data: each code samples its prior and scores Q's output with its L_I term.

The generator's input is [z, c_cat, c_cont]: the noise, the categorical codes' one-hot vectors one after
another, and the continuous codes. Q(c|x) outputs, per image, each categorical code's logits, then the
continuous codes' parameters (their means, then their standard deviations when these are learned).
L_I(G, Q) = E[log Q(c|x)] + H(c); H(c) is a constant and is dropped in training, so the `logli` methods
are the whole of what training maximises, and `entropy` gives H(c) for reporting.
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
    """The generator's input: noise z, any number of categorical codes (each with its own number of
    values) and any number of continuous codes."""

    def __init__(self, noise_dim=62, categorical=(10,), continuous=2, fixed_std=True):
        self.noise = UniformNoise(noise_dim)
        self.cat = [CategoricalCode(k) for k in categorical]
        self.cont = ContinuousCode(continuous, fixed_std) if continuous else None

    @classmethod
    def from_config(cls, cfg):
        return cls(cfg.noise_dim, cfg.categorical, cfg.continuous, cfg.cont_std == "fixed")

    @property
    def cat_dim(self):
        return sum(code.dim for code in self.cat)

    @property
    def cont_dim(self):
        return self.cont.dim if self.cont else 0

    @property
    def input_dim(self):
        return self.noise.dim + self.cat_dim + self.cont_dim

    @property
    def q_dim(self):
        return self.cat_dim + (self.cont.q_dim if self.cont else 0)

    @property
    def feeds(self):
        """The generator's fed inputs, in the order they are joined: (name, width), codes that exist only."""
        widths = (("z", self.noise.dim), ("c_cat", self.cat_dim), ("c_cont", self.cont_dim))
        return [(name, width) for name, width in widths if width]

    def sample(self, rng, n):
        """A batch of generator inputs from the prior, as the feed dict of the programs."""
        latent = {"z": self.noise.sample_prior(rng, n)}
        if self.cat:
            latent["c_cat"] = np.concatenate([code.sample_prior(rng, n) for code in self.cat], axis=1)
        if self.cont:
            latent["c_cont"] = self.cont.sample_prior(rng, n)
        return latent

    def split_cat(self, c_cat):
        """The categorical codes' columns (of a one-hot batch or of Q's logits), one block per code."""
        if len(self.cat) == 1:
            return [c_cat]
        return paddle.split(c_cat, [code.dim for code in self.cat], axis=1)

    def split_q(self, q_out):
        """Q's output -> (the categorical codes' logits, one block per code; the continuous codes' parameters)."""
        cat_logits = self.split_cat(q_out[:, : self.cat_dim]) if self.cat else []
        return cat_logits, (q_out[:, self.cat_dim :] if self.cont else None)

    def logli(self, codes, q_out):
        """Batch means of L_I, without H(c): (the categorical codes' terms summed, the continuous codes'),
        as Paddle scalars; a kind of code the spec lacks scores 0. `codes` holds the fed c_cat, c_cont."""
        cat_logits, cont_params = self.split_q(q_out)
        zero = paddle.zeros([], "float32")
        li_cat = zero
        if self.cat:
            terms = zip(self.cat, self.split_cat(codes["c_cat"]), cat_logits, strict=True)
            li_cat = paddle.add_n([paddle.mean(code.logli(c, logits)) for code, c, logits in terms])
        li_cont = paddle.mean(self.cont.logli(codes["c_cont"], cont_params)) if self.cont else zero
        return li_cat, li_cont

    def entropies(self):
        """H(c) of the categorical codes together and of the continuous codes, in nats."""
        return sum(code.entropy() for code in self.cat), (self.cont.entropy() if self.cont else 0.0)

    def describe(self):
        """The spec as plain data (latent.json of an export, the explorer): sizes, ranges and layout."""
        return {
            "noise": {"name": "z", "dim": self.noise.dim, "prior": "uniform", "range": [-1.0, 1.0]},
            "categorical": [{"index": i, "values": code.dim} for i, code in enumerate(self.cat)],
            "continuous": {"count": self.cont_dim, "prior": "uniform", "range": [-1.0, 1.0], "traverse": [-2.0, 2.0]},
            "q_outputs": {"cat_probs": self.cat_dim, "cont_mean": self.cont_dim},
        }
