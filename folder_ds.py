"""Any folder of images (anime faces, CelebA, your own) for `python train.py --dataset DIR`.

The tutorial ends by training the same StyleGAN on 64x64 colour faces. This reads a folder tree
of JPEG and PNG files with tf.data: decoded as RGB, centre-cropped to a square, resized to
--image-size, scaled to [-1, 1]. Files that cannot be decoded are skipped and counted.
"""
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from mnist_ds import DataError

EXTENSIONS = {".jpg", ".jpeg", ".png"}


def find_images(root, image_size=64):
    """The readable image files under root (recursively, sorted) and the unreadable ones.

    Each file is decoded once with Pillow (JPEGs at reduced scale, which is quick), so that the
    training pipeline only meets files it can decode and knows its number of steps."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"--dataset {root} is not a folder: give a folder of .jpg/.png images")
    readable, unreadable = [], []
    for path in sorted(p for p in root.rglob("*") if p.suffix.lower() in EXTENSIONS):
        try:
            with Image.open(path) as image:
                image.draft("RGB", (image_size, image_size))  # JPEG: decode at reduced scale
                image.load()
            readable.append(str(path))
        except (OSError, UnidentifiedImageError, SyntaxError, ValueError):
            unreadable.append(path)
    if not readable:
        raise DataError(f"--dataset {root} holds no readable .jpg or .png image"
                        + (f" ({len(unreadable)} unreadable)" if unreadable else ""))
    return readable, unreadable


def load_folder(root, image_size=64, verbose=True):
    """The image paths to train on, after saying how many were skipped."""
    paths, unreadable = find_images(root, image_size)
    if unreadable and verbose:
        print(f"Skipped {len(unreadable)} unreadable image file(s) in {root}, e.g. "
              f"{unreadable[0]}")
    return paths


def make_folder_dataset(paths, image_size, batch_size, seed=None):
    """decode -> centre crop -> resize -> [-1, 1], cached as uint8, shuffled, batched."""
    import tensorflow as tf

    if batch_size > len(paths):
        raise DataError(f"batch size {batch_size} is larger than the {len(paths)} images: "
                        f"lower --batch-size or give more images")

    def load(path):
        image = tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
        height, width = tf.shape(image)[0], tf.shape(image)[1]
        side = tf.minimum(height, width)
        image = tf.image.crop_to_bounding_box(image, (height - side) // 2, (width - side) // 2,
                                              side, side)
        image = tf.image.resize(image, (image_size, image_size), antialias=True)
        return tf.cast(tf.clip_by_value(tf.round(image), 0, 255), tf.uint8)

    return (tf.data.Dataset.from_tensor_slices(paths)
            .map(load, num_parallel_calls=tf.data.AUTOTUNE)
            .cache()
            .shuffle(min(len(paths), 10_000), seed=seed, reshuffle_each_iteration=True)
            .map(lambda image: tf.cast(image, tf.float32) / 127.5 - 1.0,
                 num_parallel_calls=tf.data.AUTOTUNE)
            .batch(batch_size, drop_remainder=True)
            .prefetch(tf.data.AUTOTUNE))
