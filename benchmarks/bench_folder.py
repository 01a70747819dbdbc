"""Does the folder pipeline feed the training step fast enough? (the issue "Ready for real face
runs": streaming data)

    python benchmarks/bench_folder.py                     # 2,000 JPEGs, 64x64, the default recipe

Writes --images JPEG files of 178x218 pixels (CelebA's size; random smooth colour pictures)
into a temporary folder, then times, in this one process:
1. the pipeline alone (`folder_ds.make_folder_dataset`: read, decode, crop, resize, batch, with
   parallel calls and prefetch): images per second over one epoch after a warm-up batch;
2. the default recipe's compiled training step at --image-size, in `--precision auto`: images
   per second, the median of --steps steps after --warmup.
The pipeline decodes on the fly (no cache), so its memory does not grow with the folder
(`tests/test_folders.py` checks it); what this measures is whether it keeps up.
"""
import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import utils  # noqa: E402

utils.quiet_tensorflow_start()


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--images", type=int, default=2000)
    p.add_argument("--image-size", type=int, default=64)
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--warmup", type=int, default=2)
    return p.parse_args(argv)


def write_jpegs(folder, n, seed=0):
    """n smooth random colour pictures, 178 wide and 218 high, as JPEG files."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    for i in range(n):
        small = rng.integers(0, 256, (14, 11, 3), dtype=np.uint8)  # blown up: smooth, as faces
        Image.fromarray(small).resize((178, 218), Image.BILINEAR).save(folder / f"{i:06d}.jpg",
                                                                       quality=90)


def pipeline_rate(folder, image_size, batch_size):
    import folder_ds

    paths = folder_ds.load_folder(folder)
    dataset, steps = folder_ds.make_folder_dataset(paths, image_size, batch_size, epochs=1)
    if steps < 2:
        sys.exit(f"error: --images {len(paths)}: give at least two batches ({2 * batch_size})")
    batches = iter(dataset)
    next(batches)  # the first batch starts the threads
    start = time.perf_counter()
    count = sum(1 for _ in batches)
    return count * batch_size / (time.perf_counter() - start)


def step_rate(image_size, steps, warmup):
    import numpy as np

    import bench_train
    import train

    args = bench_train.parse_args(["--image-size", str(image_size), "--presets", "stylegan"])
    precision = train.auto_precision()
    step, batch = bench_train.make_step("compiled", precision, "stylegan", args)
    for _ in range(warmup):
        float(step(batch)["g_loss"])
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        float(step(batch)["g_loss"])
        times.append(time.perf_counter() - start)
    return int(batch.shape[0]) / float(np.median(times)), precision, int(batch.shape[0])


def main(argv=None):
    args = parse_args(argv)
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    with tempfile.TemporaryDirectory(prefix="bench-folder-") as tmp:
        write_jpegs(Path(tmp), args.images)
        consumed, precision, batch_size = step_rate(args.image_size, args.steps, args.warmup)
        fed = pipeline_rate(tmp, args.image_size, batch_size)
    print(f"{args.images:,} JPEGs 178x218 -> {args.image_size}x{args.image_size}, batch "
          f"{batch_size}: the pipeline feeds {fed:,.0f} images/s; the training step ({precision}) "
          f"consumes {consumed:,.1f} images/s; the pipeline is {fed / consumed:,.0f}x faster")


if __name__ == "__main__":
    main()
