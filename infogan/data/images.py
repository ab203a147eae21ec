"""Folders of images: CelebA's aligned faces (`--dataset celeba`) and any folder of PNG, JPEG, WebP, BMP or TIFF files
(`--dataset folder`), decoded once into a cached uint8 array.

Each image is cropped to a centred square and resized to --image-size: for CelebA the square is 108/178
of the image's width, the usual crop of the aligned faces, computed from each image's own size so that
the official 178x218 images and a half-size copy give the same framing; for a folder, the largest centred
square. Each image is read as a viewer shows it (as_eight_bit). The first run decodes every file (with a
progress bar) and caches the array under ~/.cache/infogan/images/, keyed by the folder, its files' names,
sizes and times, and the settings; later runs load the cache. A fixed part is held out for validation:
for grids, and where a folder's images are labelled by their subfolders (--folder-labels), for accuracy.
"""

import concurrent.futures
import functools
import hashlib
import json
import math
import os

import numpy as np

from infogan import InfoGANError
from infogan.data.dataset import check_folder, holding_out
from infogan.files import cache_dir, load_cache, save_cache

EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")
CELEBA_CROP = 108 / 178  # of the width: the face, as the DCGAN and InfoGAN reproductions crop the aligned set
CACHE_VERSION = 2  # raised whenever decoding changes what an image becomes
VAL_SIZE = 1000  # images held out for validation unless --val-size


def list_images(folder):
    """Every image file (EXTENSIONS) under `folder`, recursively, sorted; not hidden ones, nor in hidden folders or
    __MACOSX: copies (Jupyter's .ipynb_checkpoints) and macOS's "._NAME.jpg" metadata, which no decoder reads.
    Links to folders are followed (a dataset gathered from several disks), each folder read once (a link
    back up the tree would loop, two links to one folder would count its images twice)."""
    found, read = [], set()
    for root, dirs, names in os.walk(folder, followlinks=True):
        if os.path.realpath(root) in read:
            dirs[:] = []
            continue
        read.add(os.path.realpath(root))
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d != "__MACOSX")
        found += [os.path.join(root, n) for n in sorted(names) if n.lower().endswith(EXTENSIONS) and n[0] != "."]
    return found


def crop_box(width, height, kind):
    """The centred square (left, top, right, bottom) that is cropped, in the image's own pixels."""
    side = width * CELEBA_CROP if kind == "celeba" else min(width, height)
    left, top = (width - side) / 2, (height - side) / 2
    return (left, top, left + side, top + side)


def as_eight_bit(image, channels):
    """A Pillow image as 8-bit grey (channels 1) or RGB, as it is shown: turned by a camera's orientation tag,
    16-bit grey scaled to 8 bits (Pillow's own conversion clips it, drawing nearly all of it white), and
    transparent pixels laid over black (dropping the alpha channel shows whatever colour they hide)."""
    from PIL import Image, ImageOps

    image = ImageOps.exif_transpose(image)
    if image.mode in ("I", "I;16", "I;16B", "I;16L"):  # a 16-bit grey PNG: "I" in older Pillows
        grey = np.asarray(image, dtype=np.float64) / 257
        image = Image.fromarray(np.clip(np.rint(grey), 0, 255).astype(np.uint8), "L")
    if image.mode in ("RGBA", "LA", "PA", "La", "RGBa") or "transparency" in image.info:
        image = Image.alpha_composite(Image.new("RGBA", image.size, "black"), image.convert("RGBA"))
    return image.convert("L" if channels == 1 else "RGB")


def decode(path, size, channels, kind):
    """One image as uint8 [channels, size, size]."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            # A JPEG much larger than needed decodes at 1/2, 1/4 or 1/8 scale, still twice the output's side
            # across the crop: a phone's photo about six times faster, within a grey level (docs/performance.md).
            left, _, right, _ = crop_box(image.width, image.height, kind)
            scale = 2 * size / (right - left)
            if scale < 1:
                image.draft(None, (math.ceil(image.width * scale), math.ceil(image.height * scale)))
            image = as_eight_bit(image, channels)
            box = crop_box(image.width, image.height, kind)
            image = image.resize((size, size), Image.Resampling.LANCZOS, box=box)
            array = np.asarray(image, dtype=np.uint8)
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError) as e:
        raise InfoGANError(f"cannot read image {path}: {e}; remove it from the folder or replace it") from None
    return array[None] if channels == 1 else array.transpose(2, 0, 1)


def _decode_chunk(paths, size, channels, kind):
    return np.stack([decode(p, size, channels, kind) for p in paths])


def decode_all(paths, size, channels, kind, what):
    """Every image, decoded on every core, with a progress bar."""
    from infogan.progress import progress

    chunks = [paths[i : i + 256] for i in range(0, len(paths), 256)]
    work = functools.partial(_decode_chunk, size=size, channels=channels, kind=kind)
    out = []
    with progress(total=len(paths), desc=f"decoding {what}", unit="image") as bar:
        if len(chunks) == 1:
            out.append(work(paths))
        else:
            # Threads, not processes: Pillow's decoders release the GIL, and nothing is forked from a parent
            # that may already run Paddle's threads.
            with concurrent.futures.ThreadPoolExecutor(os.cpu_count() or 1) as pool:
                for images in pool.map(work, chunks):
                    out.append(images)
                    bar.update(len(images))
        bar.n = len(paths)
    return np.concatenate(out)


def image_paths(folder):
    """list_images(folder), refusing a folder without any."""
    paths = list_images(folder)
    if not paths:
        raise InfoGANError(
            f"{folder} holds no PNG, JPEG, WebP, BMP or TIFF images (searched recursively, hidden ones left out)"
        )
    return paths


def load_folder(folder, size, channels, kind, paths=None):
    """uint8 [N, channels, size, size] of every image under `folder` (`paths`: image_paths(folder), where
    already listed), from the cache when it is current."""
    paths = paths or image_paths(folder)
    stats = [(os.path.relpath(p, folder), os.path.getsize(p), int(os.path.getmtime(p))) for p in paths]
    key = json.dumps([CACHE_VERSION, os.path.abspath(folder), size, channels, kind, stats]).encode()
    cached = os.path.join(cache_dir("images"), hashlib.sha1(key).hexdigest() + ".npy")
    images = load_cache(cached, (len(paths), channels, size, size), np.uint8)
    if images is not None:
        return images
    images = decode_all(paths, size, channels, kind, f"{len(paths)} images of {folder}")
    save_cache(cached, images, "decodes the images again")
    return images


def celeba_folder(data_dir):
    if data_dir is None:
        raise InfoGANError(
            "--dataset celeba needs --data-dir: the folder holding img_align_celeba/ (CelebA's aligned faces, "
            "from its official page; the download needs a sign-in, so it is not automatic)"
        )
    check_folder(data_dir, "holding img_align_celeba/")
    inner = os.path.join(data_dir, "img_align_celeba")
    return inner if os.path.isdir(inner) else data_dir


def subfolder_labels(folder, paths):
    """(labels int64 [N], their names) of the images `paths` under `folder`: each image's label is the
    subfolder of `folder` it lies in (DIR/LABEL/...), numbered in the names' sorted order."""
    names = [os.path.relpath(path, folder).split(os.sep) for path in paths]
    loose = [path for path, parts in zip(paths, names, strict=True) if len(parts) == 1]
    if loose:
        more = f" (and {len(loose) - 1} more)" if len(loose) > 1 else ""
        raise InfoGANError(
            f"--folder-labels labels each image by the subfolder it lies in, but {loose[0]}{more} lies in {folder} "
            "itself: move such images into a subfolder named for their label, or drop --folder-labels"
        )
    label_names = sorted({parts[0] for parts in names})
    if len(label_names) < 2:
        raise InfoGANError(
            f"--folder-labels found one label in {folder} (its only subfolder, {label_names[0]}/): give a folder "
            "with a subfolder of images per label, or drop --folder-labels"
        )
    number = {name: i for i, name in enumerate(label_names)}
    return np.array([number[parts[0]] for parts in names], np.int64), label_names


def load(kind, data_dir, size, channels, val_size, labelled=False):
    """CelebA (kind "celeba") or any folder of images (kind "folder"), with a fixed validation part; with
    `labelled` (--folder-labels), a folder's images labelled by their subfolders."""
    if kind == "celeba":
        folder = celeba_folder(data_dir)
    else:
        if data_dir is None:
            raise InfoGANError(
                "--dataset folder needs --data-dir: the folder of your images (PNG, JPEG, WebP, BMP or TIFF)"
            )
        check_folder(data_dir, "of your images")
        folder = data_dir
    paths = image_paths(folder)
    labels, label_names = subfolder_labels(folder, paths) if labelled else (None, None)  # before the decoding
    images = load_folder(folder, size, channels, kind, paths)
    source = f"{kind} from {folder}: {len(images)} images at {size}x{size}, {'grey' if channels == 1 else 'colour'}"
    if labelled:
        source += f", labelled by their {len(label_names)} subfolders"
    data = holding_out(images, labels, val_size, source, "the images", VAL_SIZE)
    data.label_names = label_names
    return data
