"""Wall time and peak memory of ``labelwise.explore`` on a large folder of small JPEGs.

Writes N valid 64×64 JPEGs ``1.jpg … N.jpg`` and an ordered label file (binary labels,
about 12 % / 88 %), then runs ``explore(labels.txt, out, images=folder)`` in a fresh
Python process that does nothing else, and prints its wall time and peak RSS
(``ru_maxrss``), next to the peak RSS of the imports alone. Prints figures; it is not
a test. Target: peak RSS under 1 GB at N = 100,000.

    python bench/explore_scale.py [--n 100000] [--jobs 2] [--workdir DIR] [--keep]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

CHILD = """
import json, os, resource, sys, time
start = time.perf_counter()
from labelwise.data.explore import explore
imports_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t, cpu = time.perf_counter(), os.times()
s = explore(sys.argv[1], sys.argv[2], images=sys.argv[3], n_jobs=int(sys.argv[4]))
seconds, cpu_end = time.perf_counter() - t, os.times()
print(json.dumps({
    "explore_s": seconds,
    "cpu_s": cpu_end.user - cpu.user + cpu_end.system - cpu.system,
    "imports_s": t - start,
    "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    "imports_rss_mb": imports_rss / 1024,
    "n_images": s.n_images, "n_problems": s.n_problems,
    "class_counts": {str(k): int(v) for k, v in s.class_counts.items()},
    "imbalance_ratio": s.imbalance_ratio, "n_duplicate_groups": s.n_duplicate_groups,
}))
"""


def jpeg_pool(size: int, n: int, rng: np.random.Generator) -> list[bytes]:
    """``n`` distinct encoded JPEGs: a coloured shape on a gradient background."""
    ramp = np.linspace(0, 1, size)[None, :, None]
    pool = []
    for _ in range(n):
        a, b = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
        image = Image.fromarray((a + (b - a) * ramp).repeat(size, axis=0).astype(np.uint8))
        x0, y0 = rng.integers(0, size // 2, 2)
        x1, y1 = rng.integers(size // 2, size, 2)
        shape = ImageDraw.Draw(image).ellipse if rng.random() < 0.5 else ImageDraw.Draw(image).rectangle
        shape((int(x0), int(y0), int(x1), int(y1)), fill=tuple(int(v) for v in rng.integers(0, 256, 3)))
        buf = io.BytesIO()
        image.save(buf, format="JPEG", quality=85)
        pool.append(buf.getvalue())
    return pool


def with_comment(jpeg: bytes, text: str) -> bytes:
    """The same JPEG with a COM segment after SOI: still valid, but other bytes (another hash)."""
    payload = text.encode()
    return jpeg[:2] + b"\xff\xfe" + struct.pack(">H", len(payload) + 2) + payload + jpeg[2:]


def make_dataset(folder: Path, n: int, *, seed: int = 0, positive: float = 0.12) -> Path:
    rng = np.random.default_rng(seed)
    pool = jpeg_pool(64, min(n, 2000), rng)
    images = folder / "images"
    images.mkdir(parents=True)
    for i in range(1, n + 1):
        (images / f"{i}.jpg").write_bytes(with_comment(pool[i % len(pool)], f"labelwise bench {i}"))
    labels = np.where(rng.random(n) < positive, "1", "0")
    (folder / "labels.txt").write_text("\n".join(labels) + "\n")
    return images


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000, help="number of images")
    parser.add_argument("--jobs", type=int, default=2, help="explore's n_jobs")
    parser.add_argument("--workdir", type=Path, help="where to write the data (default: a temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the generated data and outputs")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="labelwise-bench-", dir=args.workdir))
    try:
        print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs (other work skews wall times)")
        t = time.perf_counter()
        images = make_dataset(work, args.n)
        print(f"generated {args.n:,} JPEGs in {time.perf_counter() - t:.1f} s ({work})")
        t = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-c", CHILD, str(work / "labels.txt"), str(work / "out"), str(images), str(args.jobs)],
            capture_output=True,
            text=True,
            check=False,
        )
        wall = time.perf_counter() - t
        if done.returncode:
            sys.exit(f"explore failed:\n{done.stderr}")
        r = json.loads(done.stdout.strip().splitlines()[-1])
        print(
            f"explore n={r['n_images']:,} jobs={args.jobs}: {r['explore_s']:.1f} s "
            f"({r['n_images'] / r['explore_s']:,.0f} images/s), CPU {r['cpu_s']:.1f} s; process wall {wall:.1f} s incl. imports"
        )
        print(
            f"peak RSS {r['peak_rss_mb']:,.0f} MB (imports alone {r['imports_rss_mb']:,.0f} MB) "
            f"-> {'OK' if r['peak_rss_mb'] < 1024 else 'OVER'} the 1 GB target"
        )
        print(
            f"classes {r['class_counts']}, imbalance {r['imbalance_ratio']:.2f}:1, "
            f"problems {r['n_problems']}, duplicate groups {r['n_duplicate_groups']}"
        )
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
