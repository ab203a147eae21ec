"""What training optimises, in one place: each step's loss, the share of L_I that reaches G over time, and
the clustering term with the augmented views it compares.

    D step     min over D (and Q)   BCE(D(x), 1) + BCE(D(G(z, c)), 0)
                                    - lambda L_I(Q on the D step's fakes)        with --q-step d or both
                                    - lambda_real I(c; c') of Q on real views    with --lambda-real > 0
                                      (the last view of a near training image with --neighbours)
                                      (lambda_real falling to 0 over the steps --lambda-real-fade gives)
                                    + gamma/2 E||grad_x D(x)||^2 over real x     with --r1 gamma > 0
    G+Q step   min over G (and Q)   BCE(D(G(z, c)), 1) - lambda_cat L_I(cat) - lambda_cont L_I(cont)
                                    (L_I(cat) of Q on changed copies T(G(z, c)) with --li-views)
               (Q with --q-step g or both; only a share li_to_g(step) of L_I's gradient reaches G)

L_I = E[log Q(c | G(z, c))] (+ H(c), a constant) is the paper's variational lower bound on I(c; G(z, c));
each latent code scores its own term (infogan.latent). The clustering term is this project's addition:
docs/results.md says what it changes and `--lambda-real 0` turns it off.
"""

import numpy as np
import paddle
import paddle.nn.functional as F
import scipy.ndimage


def bce(logits, target):
    return F.binary_cross_entropy_with_logits(logits, paddle.full_like(logits, target))


def minus_information(cfg, spec, loss, codes, q_out, q_cat=None):
    """`loss` - lambda_cat L_I(cat) - lambda_cont L_I(cont), and the two terms (without H(c)); with `q_cat`,
    Q's output on other images (--li-views), the categorical codes' term is read from it."""
    li_cat, li_cont = spec.logli(codes, q_out)
    if q_cat is not None:
        li_cat = spec.logli(codes, q_cat)[0]
    return loss - cfg.lambda_cat * li_cat - cfg.lambda_cont * li_cont, {"li_cat": li_cat, "li_cont": li_cont}


def d_step_loss(
    cfg,
    spec,
    real_logit,
    fake_logit,
    q_fake=None,
    codes=None,
    real_cat=None,
    view_cat=None,
    real_weight=None,
    r1=None,
):
    """The D step's loss and its fetches. `q_fake`: Q's output on the fakes (with --q-step d or both);
    `real_cat`, `view_cat`: Q's logits of the first categorical code for the real images and their views,
    each view paired with its image, and `real_weight` the fed weight of their term (with --lambda-real);
    `r1`: E||grad_x D(x)||^2 over real images (squared_input_gradient, with --r1)."""
    d_loss = bce(real_logit, 1.0) + bce(fake_logit, 0.0)
    fetches = {
        "d_loss": d_loss,
        "d_real": paddle.mean(F.sigmoid(real_logit)),
        "d_fake": paddle.mean(F.sigmoid(fake_logit)),
    }
    loss = d_loss
    if q_fake is not None:
        loss, _ = minus_information(cfg, spec, loss, codes, q_fake)
    if real_cat is not None:
        fetches["info_real"] = paired_information(real_cat, view_cat)
        loss = loss - real_weight * fetches["info_real"]
    if r1 is not None:
        fetches["r1"] = r1
        loss = loss + cfg.r1 / 2 * r1
    return loss, fetches


def gq_step_loss(cfg, spec, fake_logit, q_fake, codes, q_views=None):
    """The G+Q step's loss (G's non-saturating GAN loss minus the weighted L_I) and its fetches; `q_views`:
    Q's output on the changed copies of the fakes (--li-views), which the categorical codes' L_I reads."""
    g_loss = bce(fake_logit, 1.0)
    loss, terms = minus_information(cfg, spec, g_loss, codes, q_fake, q_views)
    return loss, {"g_loss": g_loss, **terms}


def squared_input_gradient(logit, images):
    """E ||grad_x logit(x)||^2 over a batch of images x. R1 (Mescheder et al., 2018) penalises it on real
    images: D flat where the data are does not push G past them. The penalty's own gradient differentiates
    this gradient again, so every op of D needs a double gradient (nets.twice_differentiable)."""
    grad = paddle.static.gradients([paddle.sum(logit)], [images])[0]
    return paddle.mean(paddle.sum(paddle.square(grad), axis=[1, 2, 3]))


def li_to_g(cfg, step):
    """The share of L_I's gradient that reaches G at `step`: none in a plain GAN (--gan-baseline) nor over
    the first --li-delay steps, then a share growing linearly over --li-warmup steps, then all of it."""
    ramp = step - cfg.li_delay
    if cfg.gan_baseline or ramp < 0:
        return 0.0
    return min(1.0, ramp / cfg.li_warmup) if cfg.li_warmup else 1.0


def real_weight(cfg, step):
    """The clustering term's weight at `step`: --lambda-real, or with --lambda-real-fade START END, falling
    linearly from it at START to 0 at END and 0 after: the samples of a run whose categories are sorted
    by START come out closer to real digits, and a run still sorting them stops (docs/results.md)."""
    if cfg.lambda_real_fade is None:
        return cfg.lambda_real
    start, end = cfg.lambda_real_fade
    return cfg.lambda_real * min(1.0, max(0.0, (end - step) / (end - start)))


def paired_information(logits, logits_other):
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


def clustering_views(cfg, real, rng, value_range=(0.0, 1.0), neighbours=None):
    """The clustering term's feed `real_aug`: --views augmented views of each real image, or None without
    the term (--lambda-real 0). With --neighbours, `neighbours` [N, K, C, H, W] holds the K nearest training
    images of each real one, and the last view is of one of them, drawn at random: the term then asks Q to
    file an image with its neighbours too."""
    if not cfg.lambda_real:
        return None
    if not cfg.neighbours:
        return augment(real, rng, cfg.views, background=value_range[0])
    if neighbours is None:
        raise ValueError(f"--neighbours {cfg.neighbours}: the views need each real image's nearest training images")
    near = neighbours[np.arange(len(real)), rng.integers(neighbours.shape[1], size=len(real))]
    own = [augment(real, rng, cfg.views - 1, background=value_range[0])] if cfg.views > 1 else []
    return np.concatenate([*own, augment(near, rng, 1, background=value_range[0])])


def random_moves(rng, n, max_degrees=25.0, scale=(0.8, 1.2), max_shift=3.0, max_shear=0.3, thicken=0.5):
    """What `augment` does to each of n images, drawn at random: a turn, a scale of width and height apart, a
    shift in pixels (rows, columns), a shear (slant), and whether the stroke is drawn bolder."""
    return {
        "angle": np.deg2rad(rng.uniform(-max_degrees, max_degrees, n)),
        "scale": rng.uniform(*scale, (2, n)),  # widths, heights
        "shift": rng.uniform(-max_shift, max_shift, (2, n)),
        "shear": rng.uniform(-max_shear, max_shear, n),
        "bold": rng.random(n) < thicken,
    }


def augment(images, rng, views=1, background=0.0, **limits):
    """`views` copies of [N, C, S, S] images, stacked copy after copy, each image turned, scaled (width and
    height apart), sheared (slanted) and shifted at random, bilinearly resampled (`background` where the
    image moved away), and a `thicken` share of them drawn with a bolder stroke (a 2 x 2 grey dilation):
    views of the same digit with another slant, width, place and weight. `limits`: random_moves'."""
    images = np.concatenate([images] * views)
    n, channels, side = len(images), images.shape[1], images.shape[-1]
    moves = random_moves(rng, n, **limits)
    (sx, sy), shift, shear = moves["scale"], moves["shift"], moves["shear"]
    # The output pixel (r, c) reads the input at centre + A^-1 ((r, c) - centre - shift); the shear then
    # moves the column it reads in proportion to the row, which slants the digit.
    grid = np.mgrid[:side, :side].reshape(2, -1).astype(np.float32) - (side - 1) / 2
    cos, sin = np.cos(moves["angle"]), np.sin(moves["angle"])
    rows = (cos * grid[0][:, None] - sin * grid[1][:, None] - shift[0]) / sy
    cols = (sin * grid[0][:, None] + cos * grid[1][:, None] - shift[1]) / sx + shear * rows
    coords = np.stack([np.broadcast_to(np.arange(n), rows.shape), rows + (side - 1) / 2, cols + (side - 1) / 2])
    planes = [
        scipy.ndimage.map_coordinates(images[:, c], coords, order=1, cval=background).T.reshape(n, side, side)
        for c in range(channels)
    ]
    moved = np.stack(planes, axis=1).astype(np.float32)
    bold = moves["bold"]
    moved[bold] = scipy.ndimage.grey_dilation(moved[bold], size=(1, 1, 2, 2))
    return moved


def sample_views(rng, n, side):
    """The G+Q step's feeds for --li-views: `augment`'s moves of n images of side `side`, as the affine
    maps F.affine_grid takes (`view_theta` [n, 2, 3], output to input in coordinates -1 to 1 across the
    image, x the column) and the bolder strokes (`view_bold` [n, 1, 1, 1], 1 or 0)."""
    moves = random_moves(rng, n)
    (sx, sy), (shift_r, shift_c), shear = moves["scale"], moves["shift"] / ((side - 1) / 2), moves["shear"]
    cos, sin = np.cos(moves["angle"]), np.sin(moves["angle"])
    # augment's map with u, v the output's column and row and the shift scaled to these coordinates
    row = np.stack([-sin / sy, cos / sy, -shift_r / sy])
    col = np.stack([cos / sx, sin / sx, -shift_c / sx]) + shear * row
    theta = np.stack([col, row]).transpose(2, 0, 1).astype("float32")
    return {"view_theta": theta, "view_bold": moves["bold"].astype("float32").reshape(n, 1, 1, 1)}


def view(images, theta, bold, background):
    """`augment` in the graph, differentiable in the images: each image moved by its affine map `theta`
    (sample_views), bilinearly resampled with `background` where it moved away, and where `bold` is 1
    drawn with a bolder stroke (a 2 x 2 grey dilation, the edge repeated as scipy's reflect does)."""
    grid = F.affine_grid(theta, paddle.shape(images), align_corners=True)
    moved = F.grid_sample(images - background, grid, align_corners=True) + background
    moved = paddle.reshape(moved, [-1, *images.shape[1:]])  # the shape, lost through the fed one
    bolder = F.max_pool2d(F.pad(moved, [0, 1, 0, 1], mode="replicate"), 2, stride=1)
    return bold * bolder + (1.0 - bold) * moved
