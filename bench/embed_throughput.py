"""Throughput of ``labelwise.embed`` against the bare forward pass of the same network.

Writes N small JPEGs (64×64: CIFAR-10 images from ../shared/data when present, else
scikit-learn digits), then measures images/s of ``embed`` over that folder with the
cache off, for several worker counts, and of the model alone on pre-made tensors of
the same batch size (same threads). Prints figures; it is not a test.

    python bench/embed_throughput.py [--n 2000] [--backbone resnet18] [--size 64]
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

CIFAR = Path(__file__).resolve().parents[2] / "shared/data/images/cifar10n/cifar10n_train_jpeg.npz"


def make_jpegs(folder: Path, n: int, side: int = 64) -> None:
    """``folder/<class>/<i>.jpg``: n images, ``side × side``."""
    if CIFAR.is_file():
        import io

        with np.load(CIFAR) as npz:
            jpeg, offsets = npz["jpeg"], npz["offsets"]
        images = (Image.open(io.BytesIO(jpeg[offsets[i] : offsets[i + 1]].tobytes())).convert("RGB") for i in range(n))
    else:
        from sklearn.datasets import load_digits

        digits = (load_digits().images * 15).astype(np.uint8)
        images = (Image.fromarray(digits[i % len(digits)] ^ (i // len(digits))) for i in range(n))
    for i, image in enumerate(images):
        path = folder / str(i % 10) / f"{i}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        image.resize((side, side), Image.Resampling.BILINEAR).save(path, quality=90)


def raw_rate(model: object, batch_size: int, size: int, n: int) -> float:
    """Images/s of the model on ready-made channels_last tensors, as ``embed`` feeds it."""
    import torch

    x = torch.rand(batch_size, 3, size, size).contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        model(x)  # warm-up: oneDNN picks its kernels on the first call
        start = time.perf_counter()
        for _ in range(max(1, n // batch_size)):
            model(x)
    return max(1, n // batch_size) * batch_size / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000, help="number of images")
    parser.add_argument("--backbone", default="resnet18")
    parser.add_argument("--size", type=int, default=64, help="input side in pixels")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--workers", default="default,0,1,2", help="worker counts to try ('default' = embed's choice)")
    parser.add_argument("--repeats", type=int, default=5, help="rounds; medians are reported")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)  # hide the random-weights warning: speed is the same

    import torch

    from labelwise import load_dataset
    from labelwise.features import create_backbone, embed
    from labelwise.features.torchvision_backbones import default_num_workers

    workers_default = default_num_workers(torch.device("cpu"))
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "images"
        make_jpegs(folder, args.n)
        ds = load_dataset(folder)  # checked table with content hashes, as `labelwise embed` has
        model = create_backbone(args.backbone, size=args.size).model.to(memory_format=torch.channels_last)
        print(
            f"{len(ds.table)} JPEGs {args.size}px from {'CIFAR-10' if CIFAR.is_file() else 'digits'}, "
            f"{args.backbone}, batch {args.batch_size}, torch {torch.__version__}, "
            f"{torch.get_num_threads()} threads, {os.cpu_count()} cores, default workers {workers_default}"
        )
        settings = args.workers.split(",")
        raws: list[float] = []
        rates: dict[str, list[float]] = {w: [] for w in settings}
        # Interleaved rounds, so that load from other processes hits every setting alike.
        for _ in range(args.repeats):
            raws.append(raw_rate(model, args.batch_size, args.size, len(ds.table)))
            for workers in settings:
                start = time.perf_counter()
                embed(
                    ds,
                    backbone=args.backbone,
                    size=args.size,
                    cache_dir=False,
                    batch_size=args.batch_size,
                    num_workers=None if workers == "default" else int(workers),
                    device="cpu",
                )
                rates[workers].append(len(ds.table) / (time.perf_counter() - start))
        # Interference only ever slows a run down, so the best run is the least noisy figure.
        print(f"  raw forward           best {max(raws):6.1f} img/s, median {statistics.median(raws):6.1f}")
        for workers in settings:
            ratios = [r / raw for r, raw in zip(rates[workers], raws, strict=True)]
            print(
                f"  embed workers={workers:<7} best {max(rates[workers]):6.1f} img/s, median "
                f"{statistics.median(rates[workers]):6.1f}: {max(rates[workers]) / max(raws):.2f} of raw "
                f"(best/best), {statistics.median(ratios):.2f} (median of paired rounds)"
            )
        start = time.perf_counter()
        cache = Path(tmp) / "cache"
        embed(ds, backbone=args.backbone, size=args.size, cache_dir=cache, batch_size=args.batch_size, device="cpu")
        first = time.perf_counter() - start
        start = time.perf_counter()
        embed(ds, backbone=args.backbone, size=args.size, cache_dir=cache, batch_size=args.batch_size, device="cpu")
        print(f"  with cache: first run {first:.2f} s, re-run (all cached) {time.perf_counter() - start:.3f} s")


if __name__ == "__main__":
    main()
