"""Any folder of images (anime faces, CelebA, your own) for `python train.py --dataset DIR`.

The tutorial ends by training the same StyleGAN on 64x64 colour faces. This reads a folder tree
of JPEG and PNG files with tf.data: decoded as RGB, centre-cropped to a square, resized to
--image-size, scaled to [-1, 1]. Every file is first decoded once with the decoder that trains on
it, so a file it cannot read is skipped and counted before training, never met mid-epoch.
"""
import stat
import warnings
from pathlib import Path

from mnist_ds import DataError, epoch_order, epoch_steps
from utils import file_mode, to_unit_range

EXTENSIONS = {".jpg", ".jpeg", ".png"}
MAX_PIXELS = 89_478_485  # Pillow's own limit against decompression bombs (about 9,459 x 9,459)


def find_images(root):
    """The image files under root that TensorFlow decodes (recursively, sorted), and the rest:
    only regular files (a pipe would block the reading for ever) whose header declares at most
    MAX_PIXELS pixels (a small file may declare a huge image)."""
    import tensorflow as tf

    root = Path(root)
    mode = file_mode(root, "--dataset", DataError)
    if mode is None or not stat.S_ISDIR(mode):
        raise DataError(f"--dataset {root} is not a folder: give a folder of .jpg/.png images")
    readable, unreadable = [], []
    try:
        candidates = sorted(p for p in root.rglob("*") if p.suffix.lower() in EXTENSIONS)
    except OSError as error:
        raise DataError(f"--dataset {root}: cannot list its files ({error.strerror}): give a "
                        f"folder this user can read") from None
    for path in candidates:
        try:
            if not path.is_file() or pixels(path) > MAX_PIXELS:
                raise OSError("not a regular file, or too large an image")
            decode(tf.io.read_file(str(path)))
            readable.append(str(path))
        except (tf.errors.OpError, OSError):
            unreadable.append(path)
    if not readable:
        raise DataError(f"--dataset {root} holds no readable .jpg or .png image"
                        + (f" ({len(unreadable)} unreadable)" if unreadable else ""))
    return readable, unreadable


def pixels(path):
    """Width x height as the image file's header declares it (Pillow reads the header alone)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():  # Pillow warns of large images: MAX_PIXELS decides
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                return image.width * image.height
    except (UnidentifiedImageError, Image.DecompressionBombError, ValueError) as error:
        raise OSError(str(error)) from None


def decode(data):
    """The training pipeline's decoder: any JPEG, PNG (or GIF, BMP) as uint8 RGB [h, w, 3]."""
    import tensorflow as tf

    return tf.io.decode_image(data, channels=3, expand_animations=False)


def load_folder(root, verbose=True):
    """The image paths to train on, after saying how many were skipped."""
    paths, unreadable = find_images(root)
    if unreadable and verbose:
        print(f"Skipped {len(unreadable)} unreadable image file(s) in {root}, e.g. "
              f"{unreadable[0]}")
    return paths


def load_image(path, image_size):
    """One file -> centre crop -> resize -> float32 [image_size, image_size, 3] in [-1, 1]."""
    import tensorflow as tf

    image = decode(tf.io.read_file(path))
    height, width = tf.shape(image)[0], tf.shape(image)[1]
    side = tf.minimum(height, width)
    image = tf.image.crop_to_bounding_box(image, (height - side) // 2, (width - side) // 2,
                                          side, side)
    image = tf.image.resize(image, (image_size, image_size), antialias=True)
    return to_unit_range(tf.clip_by_value(tf.round(image), 0, 255))


def make_folder_dataset(paths, image_size, batch_size, seed=0, first_epoch=0, epochs=1,
                        shuffle_buffer=0, first_step=0, steps_multiple=1):
    """Batches [batch_size, image_size, image_size, 3] in [-1, 1], in epoch_order, decoded on
    the fly (memory stays bounded whatever the folder's size). Returns (dataset, steps per
    epoch)."""
    import tensorflow as tf

    paths_tensor = tf.constant(paths)
    load = lambda index: load_image(tf.gather(paths_tensor, index), image_size)
    batches = (epoch_order(len(paths), batch_size, seed, first_epoch, epochs,
                           shuffle_buffer, first_step, steps_multiple).unbatch()
               .map(load, num_parallel_calls=tf.data.AUTOTUNE)
               .batch(batch_size, drop_remainder=True)
               .prefetch(tf.data.AUTOTUNE))
    return batches, epoch_steps(len(paths), batch_size, steps_multiple)
