"""Sample quality, judged by a classifier that never saw the generator: a small CNN trained once on the
run's labelled training images (cached), then, for samples drawn from the prior,

  classifier score      exp(E_x KL(p(y|x) || p(y))): 1 for samples it cannot tell apart, K (the number
                        of labels) for samples each sure of a label and spread evenly over all of them
  Frechet distance      between Gaussians fitted to the classifier's penultimate features of the samples
                        and of real validation images; the real-vs-real floor is the same distance between
                        training and validation images, as many of each; and with the training images
                        drawn as many of each label (what a G scores whose categorical code picks the label
                        evenly)
  spread within labels  the total variance of those features among the images of each label (for a
                        sample, the classifier's label), averaged over labels, for the samples and for the
                        real validation images: below the real images' when G draws each digit more alike
                        than people write it, which the Frechet distance counts without naming it
  code purity           for each value of the first categorical code, the share of its samples the
                        classifier gives their most common label; and how many distinct labels those
                        values cover; and the same share with each value's samples split by the sign of
                        one continuous code

in the spirit of TF-GAN's classifier metrics.
"""

import contextlib
import hashlib
import json
import os
import shutil
import sys
import warnings

import numpy as np
import scipy.linalg

from infogan import InfoGANError
from infogan.files import cache_dir, reason, staging, write_text

SAMPLES = 5000  # drawn from the prior, and real images on each side of the Frechet distance
SPREAD_SAMPLES = 1000  # drawn from the prior for their pixel spread
PER_VALUE = 500  # samples of each value of the first categorical code, for its purity
CLASSIFIER_VERSION = 7
CLASSIFIER_SEED = 0
RECORD = "classifier.json"  # in a cached judge's folder, beside its weights
EPOCHS, MAX_EPOCHS, MIN_STEPS, BATCH, LR = 8, 40, 1500, 128, 1e-3
WIDTHS = (32, 64, 256)  # conv, conv, the features
SHIFT = 2  # training images are moved by up to this many pixels each way


def classifier_score(probs):
    """exp(E_x KL(p(y|x) || p(y))) of class probabilities [N, K]."""
    probs = np.clip(np.asarray(probs, np.float64), 1e-12, 1.0)
    marginal = probs.mean(axis=0, keepdims=True)
    return float(np.exp(np.mean(np.sum(probs * (np.log(probs) - np.log(marginal)), axis=1))))


def frechet_distance(a, b):
    """||mu_a - mu_b||^2 + Tr(S_a + S_b - 2 (S_a S_b)^(1/2)) of Gaussians fitted to features [N, d]."""
    mu_a, mu_b = a.mean(axis=0), b.mean(axis=0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    with warnings.catch_warnings():  # features a ReLU keeps at 0 make the product singular: harmless here
        warnings.simplefilter("ignore", scipy.linalg.LinAlgWarning)
        root = scipy.linalg.sqrtm(cov_a @ cov_b)
    if np.iscomplexobj(root):
        root = root.real  # numerical noise of a product of two covariance matrices
    return float(np.sum((mu_a - mu_b) ** 2) + np.trace(cov_a + cov_b - 2.0 * root))


def spread_within_labels(features, labels):
    """The trace of the covariance of each label's features [N, d], averaged over the labels that have two
    images or more."""
    features, labels = np.asarray(features, np.float64), np.asarray(labels)
    kinds = [k for k in np.unique(labels) if np.sum(labels == k) > 1]
    return float(np.mean([np.trace(np.atleast_2d(np.cov(features[labels == k], rowvar=False))) for k in kinds]))


def code_purity(labels_by_value):
    """(the purity of each value: the share of its samples given their most common label; the labels
    that are the most common of some value)."""
    purity = [purity_within(labels, np.zeros(len(labels), int)) for labels in labels_by_value]
    majority = {int(np.bincount(labels).argmax()) for labels in labels_by_value}
    return purity, sorted(majority)


def purity_within(labels, groups):
    """The share of samples given the most common label of their group (`groups`: one value per sample)."""
    labels, groups = np.asarray(labels), np.asarray(groups)
    return float(sum(np.bincount(labels[groups == g]).max() for g in np.unique(groups)) / len(labels))


class Classifier:
    """A LeNet: conv 5x5 32, max-pool, conv 5x5 64, max-pool, FC 256 (the features), dropout, FC to the
    labels; trained with Adam on shifted training images, its parameters named C_ and kept in a scope of
    its own. The same judge each time it is trained, whatever the caller's thread settings and Paddle's
    generator: its first weights come from that generator seeded with `seed` (its state put back after),
    its dropout and shifts from numpy's, and it trains on one thread (another count sums in another order,
    and training amplifies that to another judge: docs/results.md). Machines whose CPUs take other MKL
    kernels (AVX2, AVX-512) still round differently."""

    def __init__(self, image_shape, n_labels, exe, seed):
        import paddle
        import paddle.nn.functional as F
        from paddle.static import Program, data, program_guard

        from infogan.device import owned_scope
        from infogan.nets import Conv2D, Linear

        paddle.enable_static()
        self.exe, self.scope = exe, owned_scope(self)
        channels, side, _ = image_shape
        self.startup, self.train_program, self.infer = Program(), Program(), Program()
        for program, training in ((self.train_program, True), (self.infer, False)):
            with program_guard(program, self.startup), paddle.utils.unique_name.guard("classifier_"):
                images = data("images", [None, *image_shape], "float32")
                h = images
                for i, (c_in, c_out) in enumerate(((channels, WIDTHS[0]), (WIDTHS[0], WIDTHS[1]))):
                    conv = Conv2D(
                        c_in, c_out, 5, 1, 2, weight_attr=paddle.ParamAttr(name=f"C_conv{i + 1}.w"), bias_attr=False
                    )
                    conv.batched = True  # the project's CPU convolution: any kernel, stride and padding
                    h = F.max_pool2d(F.relu(conv(h)), 2)
                fc = Linear(
                    WIDTHS[1] * (side // 4) ** 2,
                    WIDTHS[2],
                    paddle.ParamAttr(name="C_fc.w"),
                    paddle.ParamAttr(name="C_fc.b"),
                )
                out = Linear(WIDTHS[2], n_labels, paddle.ParamAttr(name="C_out.w"), paddle.ParamAttr(name="C_out.b"))
                features = F.relu(fc(paddle.flatten(h, 1)))
                if training:  # dropout by a fed mask: 0 or 2 (kept, scaled by 1 / 0.5) for each feature
                    keep = data("keep", [None, WIDTHS[2]], "float32")
                    logits = out(features * keep)
                    labels = data("labels", [None], "int64")
                    self.loss = F.cross_entropy(logits, labels.unsqueeze(1))
                    self.lr = paddle.optimizer.lr.CosineAnnealingDecay(LR, T_max=1)
                    paddle.optimizer.Adam(self.lr).minimize(self.loss)
                else:
                    logits = out(features)
                    self.probs, self.features = F.softmax(logits, axis=1), features
        state = paddle.get_rng_state()
        paddle.seed(seed)
        try:
            with paddle.static.scope_guard(self.scope):
                exe.run(self.startup)
        finally:
            paddle.set_rng_state(state)

    def fit(self, images, labels, seed=0):
        import paddle

        from infogan.device import threads

        rng = np.random.default_rng(seed)
        size = min(BATCH, len(images))
        per_epoch = len(images) // size
        # Small datasets get more passes (up to MAX_EPOCHS), towards as many steps as a large one.
        epochs = int(np.clip(-(-MIN_STEPS // per_epoch), EPOCHS, MAX_EPOCHS))
        self.lr.T_max = epochs * per_epoch  # the rate falls from LR to 0 along a half cosine
        with paddle.static.scope_guard(self.scope), threads(1):
            for _ in range(epochs):
                order = rng.permutation(len(images))
                for i in range(per_epoch):
                    batch = order[i * size : (i + 1) * size]
                    keep = np.where(rng.random((size, WIDTHS[2])) < 0.5, 2.0, 0.0).astype(np.float32)
                    feed = {"images": shifted(images[batch], rng), "labels": labels[batch], "keep": keep}
                    self.exe.run(self.train_program, feed=feed, fetch_list=[self.loss])
                    self.lr.step()

    def predict(self, images):
        """(probabilities [N, K], features [N, 128]) in batches."""
        import paddle

        probs, features = [], []
        with paddle.static.scope_guard(self.scope):
            for i in range(0, len(images), 500):
                p, f = self.exe.run(
                    self.infer, feed={"images": images[i : i + 500]}, fetch_list=[self.probs, self.features]
                )
                probs.append(p)
                features.append(f)
        return np.concatenate(probs), np.concatenate(features)

    def save(self, prefix):
        import paddle

        with paddle.static.scope_guard(self.scope):
            paddle.static.save(self.train_program, prefix)

    def load(self, prefix):
        import paddle

        from infogan.checkpoints import set_state

        with paddle.static.scope_guard(self.scope):
            set_state(self.infer, paddle.static.load_program_state(prefix))


def shifted(images, rng):
    """Each image moved by a random whole number of pixels, up to SHIFT each way, the background filled in."""
    out = np.empty_like(images)
    background = images.min()
    for i, (dy, dx) in enumerate(rng.integers(-SHIFT, SHIFT + 1, (len(images), 2))):
        out[i] = np.roll(images[i], (dy, dx), axis=(1, 2))
        out[i, :, : max(dy, 0)] = background
        out[i, :, images.shape[2] + min(dy, 0) :] = background
        out[i, :, :, : max(dx, 0)] = background
        out[i, :, :, images.shape[3] + min(dx, 0) :] = background
    return out


def trained_classifier(data, value_range, exe):
    """A Classifier of the dataset's labels, trained on its training images once and cached (keyed by the
    training images and labels)."""
    from infogan.data import to_input

    if data.train_labels is None or data.val_labels is None:
        raise InfoGANError(f"{data.source} has no labels to train the judging classifier on")
    n_labels = int(max(data.train_labels.max(), data.val_labels.max())) + 1
    digest = hashlib.sha1()
    for part in (data.train_images, data.train_labels, np.asarray(value_range), np.asarray([CLASSIFIER_VERSION])):
        digest.update(np.ascontiguousarray(part).tobytes())
    folder = os.path.join(cache_dir("classifiers"), digest.hexdigest()[:16])
    classifier = Classifier(data.train_images.shape[1:], n_labels, exe, CLASSIFIER_SEED)
    damaged = False
    if os.path.isfile(os.path.join(folder, RECORD)):
        try:
            classifier.load(os.path.join(folder, "classifier"))
            return classifier
        except Exception as e:  # Paddle's loader raises several kinds: a damaged judge is trained again
            damaged = True
            print(f"note: the cached judging classifier in {folder} is damaged ({e!r:.100})", file=sys.stderr)
            classifier = Classifier(data.train_images.shape[1:], n_labels, exe, CLASSIFIER_SEED)  # as initialised
    print(
        f"training the judging classifier on {len(data.train_images)} images (once; cached in {folder})",
        file=sys.stderr,
    )
    classifier.fit(to_input(data.train_images, value_range), data.train_labels)
    _cache(classifier, folder, data.source, replace=damaged)
    return classifier


def _cache(classifier, folder, source, replace):
    """Keeps the judge in `folder`, whole or not at all: saved beside it in a staging folder of its own and
    renamed into place, since evaluations started together each train it and must never read one half-written.
    Where another process's judge got there first, it is kept (the same judge); a damaged one (`replace`),
    or one without its record (left by an earlier version killed while saving), is replaced. A cache that
    cannot be written (read-only, full) is a warning: the evaluation goes on with the judge it trained."""
    try:
        with staging(folder) as tmp:
            classifier.save(os.path.join(tmp, "classifier"))
            write_text(os.path.join(tmp, RECORD), json.dumps({"source": source}) + "\n")
            if os.path.isdir(folder) and (replace or not os.path.isfile(os.path.join(folder, RECORD))):
                shutil.rmtree(folder, ignore_errors=True)
            with contextlib.suppress(OSError):  # another process's judge moved in meanwhile
                os.rename(tmp, folder)
    except (OSError, InfoGANError) as e:
        why = reason(e) if isinstance(e, OSError) else str(e)
        print(
            f"warning: the judging classifier could not be cached in {folder} ({why}): the next evaluation "
            "trains it again",
            file=sys.stderr,
        )


def even_labels(labels, n, rng):
    """Indices of up to n images, as many of each label (drawn by `rng`, sorted): real images as a uniform
    categorical code would draw them. Their Frechet distance to the validation images is about what a G
    scores whose uniform code picks the label and which draws each label as well as real images, where the
    real labels are not even (MNIST: 9.1% 5s, 11.3% 1s)."""
    kinds, counts = np.unique(labels, return_counts=True)
    each = min(n // len(kinds), int(counts.min()))
    return np.sort(np.concatenate([rng.choice(np.flatnonzero(labels == k), each, replace=False) for k in kinds]))


def prior_samples(exe, generate_step, spec, rng, n):
    """n images from G, their latents drawn from the prior with `rng`, 500 at a time."""
    from infogan.grids import generate

    return np.concatenate([generate(exe, generate_step, spec.sample(rng, 500)) for _ in range(n // 500)])


def pixel_spread(images):
    """Each pixel's standard deviation across the images, averaged over pixels: about 0 for a collapsed G
    that draws one image whatever its input, near the real images' own for a varied one."""
    return float(np.asarray(images, np.float64).std(axis=0).mean())


def sample_spread(exe, generate_step, spec, val_images, value_range, seed=0):
    """The pixel spread of SPREAD_SAMPLES samples from the prior and of the validation images, both in
    pixel units (0 to 1): a check that needs no labels."""
    samples = prior_samples(exe, generate_step, spec, np.random.default_rng([seed, 8]), SPREAD_SAMPLES)
    low, high = value_range
    return {
        "sample_spread": pixel_spread(samples) / (high - low),
        "sample_spread_of_real_images": pixel_spread(val_images / 255.0),
    }


def sample_quality(exe, generate_step, spec, data, value_range, seed=0):
    """The classifier's verdict on samples drawn from the prior (and on each value of the first
    categorical code), against the validation images."""
    from infogan.data import to_input
    from infogan.grids import generate

    classifier = trained_classifier(data, value_range, exe)
    rng = np.random.default_rng([seed, 7])
    samples = prior_samples(exe, generate_step, spec, rng, SAMPLES)
    probs, features = classifier.predict(samples)
    n = min(SAMPLES, len(data.val_images), len(data.train_images))
    pick = np.random.default_rng(0)  # the same real images for every run
    real_index = np.sort(pick.choice(len(data.val_images), n, replace=False))
    other_images = data.train_images[np.sort(pick.choice(len(data.train_images), n, replace=False))]
    even_images = data.train_images[even_labels(data.train_labels, n, pick)]
    val_probs, val_features = classifier.predict(to_input(data.val_images, value_range))
    real = val_features[real_index]
    other, even = (classifier.predict(to_input(images, value_range))[1] for images in (other_images, even_images))
    result = {
        "classifier_validation_accuracy": float(np.mean(val_probs.argmax(axis=1) == data.val_labels)),
        "classifier_score": classifier_score(probs),
        "classifier_score_of_real_images": classifier_score(val_probs),
        "frechet_distance": frechet_distance(features[:n], real),
        "frechet_distance_real_vs_real": frechet_distance(other, real),
        "frechet_distance_even_labels_vs_real": frechet_distance(even, real),
        "spread_within_labels": spread_within_labels(features[:n], probs[:n].argmax(axis=1)),
        "spread_within_labels_of_real_images": spread_within_labels(real, data.val_labels[real_index]),
        "images_per_side": n,
    }
    if spec.cat:
        labels, signs = [], []
        for value in range(spec.cat[0].dim):
            latent = spec.sample(rng, PER_VALUE)
            latent["c_cat"][:, : spec.cat[0].dim] = np.eye(spec.cat[0].dim, dtype="float32")[value]
            labels.append(classifier.predict(generate(exe, generate_step, latent))[0].argmax(axis=1))
            signs.append(latent["c_cont"] > 0 if spec.cont else None)
        purity, covered = code_purity(labels)
        result.update(code_purity=purity, mean_code_purity=float(np.mean(purity)), labels_covered=covered)
        if spec.cont:
            # Far above the plain purity when G spends a continuous code's sign on the label: two labels
            # share a value and that code's sign picks between them (splitting alone raises it a little).
            result["code_purity_by_sign"] = [
                float(np.mean([purity_within(y, s[:, j]) for y, s in zip(labels, signs, strict=True)]))
                for j in range(spec.cont.dim)
            ]
    return result
