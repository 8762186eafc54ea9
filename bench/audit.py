"""Image-issue audit vs the anchor: ``labelwise.audit`` and CleanVision on a planted set of real images.

The set (built once with a fixed seed and cached in ``--data-dir``): the 10,000 CIFAR-10 test
images (``--quick``: 2,000 of them) as PNG files, 80% ``train`` / 20% ``test`` at random, listed
with their class in ``dataset.csv`` (``path,label,split``, paths relative to it), plus about 2%
of the base count of each planted kind (200 each; ``--quick`` 40), shuffled among them under
neutral names (``images/NNNNN.png|jpg``). Each planted image has its own source image (none is
used twice):

- ``near_duplicate``: a copy in the same split, by one transform, the kinds in equal numbers:
  ``jpeg`` (re-encoded, quality 60-90), ``resize`` (square, 29-35 px), ``crop`` (1-3 px off each
  edge), ``mirror`` (horizontal), ``brightness`` (×0.9 or ×1.1);
- ``leak``: the same kinds of copies placed in the other split;
- ``dark``: ``scale`` (brightness ×0.1-0.3) or ``gamma`` (γ 3-5, which keeps highlights);
  ``light``: blended with white (0.6-0.85); ``blurry``: Gaussian blur of radius 1.5-3; these
  keep the source's label and split (they are transformed copies too, but their issue is theirs);
- ``low_information``: ``flat`` (one colour ± 3 noise) or ``gradient`` (two colours at most 6
  levels apart), 32×32; ``outlier``: ``mnist`` test digits resized to 32×32 and saved as RGB, and
  uniform RGB ``noise``; both with a random class and split.

``truth.csv`` lists the planted images (``path, issue, source_path, split, label, kind, detail,
grayscale``), ``base.csv`` the base images (``path, label, split, cifar_index, grayscale``).

Scoring, per issue type, precision / recall / F1 of each tool against the truth:

- ``near_duplicate``: positives are the planted near-duplicate and leak copies. A copy is found
  when the tool links it to its source: labelwise by a ``near_duplicate`` or ``leak`` finding
  (same ``group`` or ``related_sample_id``), CleanVision by one of its ``near_duplicates`` or
  ``exact_duplicates`` sets. Recall is over the copies (also per transform kind). A flagged image
  is a false positive when it is not a planted copy (of any kind: a dark copy matched to its
  source is a true near-duplicate), not the source of one and not in a set with one;
  precision = 1 - false positives / flagged images.
- ``leak``: the same rule over labelwise's ``leak`` findings and the planted leak copies only
  (a same-split copy flagged as a leak is a false positive); CleanVision has no such type (n/a).
- ``dark``, ``light``, ``blurry``, ``low_information``, ``outlier``: the flagged images against
  the planted ones of that type (recall also per kind: ``mnist`` / ``noise`` for outliers).
  CleanVision has no outlier type (n/a).
- ``grayscale``: the truth is every file whose decoded channels are all equal (the MNIST
  outliers, any gray base image and its copies). ``odd_aspect_ratio``, ``odd_size``,
  ``conflict``, ``class_outlier``: nothing is planted, so every flag counts as a false positive.

Unplanted CIFAR images that truly are dark, blurry or near-duplicates of each other count as
false positives; the breakdown of false positives by what they are (``base`` or a planted type)
says where they come from. Each tool runs in its own process (CleanVision in its own virtual
environment, with its default thresholds); the time is that of the call, without imports.

Writes to ``--out``: ``figures.json`` (every figure), ``cleanvision_scores.csv`` (CleanVision's
per-image ``is_<type>_issue`` / ``<type>_score``), ``labelwise_findings.csv`` (``audit.csv``),
both with the truth joined, and ``copies.csv`` (each planted copy: was it linked to its source).

    python bench/audit.py                       # both tools, full size
    python bench/audit.py --quick --labelwise-only
    python bench/audit.py --skip-labelwise      # the CleanVision anchor only
    python bench/audit.py --scale 100000        # time and memory on 100,000 generated images

``--scale N``: no planted issues and no scoring; N distinct images (cached in ``scale-N``), each a
random crop (20-32 px a side), a horizontal flip half the time and a brightness / contrast /
saturation jitter (×0.7-1.3 each) of a random CIFAR-10 test image, resized to 48-64 px a side
(PNG), split 80/20 and listed in ``dataset.csv`` (``warmup.csv``: its first rows). Each tool then runs in its own process, one
after the other: ``labelwise.audit(backbone="none")`` (image statistics and near-duplicates, no
embeddings; the time includes ``load_dataset``) and CleanVision's default checks. Reported per
tool: the call's seconds and images/s, the process's wall seconds, the peak RSS of its largest
process (``wait4``), the peak RSS and PSS summed over its processes (sampled from /proc every
0.5 s; CleanVision's workers are processes, labelwise's threads), and for labelwise the memory of
the loaded table (RSS after ``load_dataset`` minus before, once a warm-up load has made the
imports) and the peak above it. Added to
``figures.json`` under ``scale.N``; logs and the tools' outputs in ``--out``/``scale-N``.

The anchor's environment: python -m venv /work/scratch/cv-venv && /work/scratch/cv-venv/bin/pip install cleanvision==0.3.7
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from _npz import SHARED
from PIL import Image, ImageEnhance, ImageFilter, ImageOps

from labelwise import load_dataset

CIFAR = SHARED / "cifar10h" / "cifar10h_test.npz"
MNIST = SHARED / "mnist" / "mnist_test10k.npz"
SCRATCH = Path("/work/scratch/audit-bench")
BUILD_VERSION = 1
PLANT_SHARE = 0.02
TRAIN_SHARE = 0.8
COPY_KINDS = ("jpeg", "resize", "crop", "mirror", "brightness")
COPY_ISSUES = ("near_duplicate", "leak", "dark", "light", "blurry")
ROWS = (
    "near_duplicate",
    "leak",
    "dark",
    "light",
    "blurry",
    "low_information",
    "outlier",
    "grayscale",
    "odd_aspect_ratio",
    "odd_size",
    "conflict",
    "class_outlier",
)
CLEANVISION_TYPES = ("dark", "light", "blurry", "low_information", "grayscale", "odd_aspect_ratio", "odd_size")

CLEANVISION_CHILD = """
import json, sys, time
start = time.perf_counter()
import cleanvision
from cleanvision import Imagelab
paths = [line for line in open(sys.argv[1]).read().splitlines() if line]
t = time.perf_counter()
imagelab = Imagelab(filepaths=paths)
imagelab.find_issues(n_jobs=int(sys.argv[3]))
seconds = time.perf_counter() - t
imagelab.issues.to_csv(sys.argv[2] + "/cleanvision_issues.csv", index_label="path")
sets = {k: [list(s) for s in imagelab.info.get(k, {}).get("sets", [])] for k in ("exact_duplicates", "near_duplicates")}
with open(sys.argv[2] + "/cleanvision_sets.json", "w") as f:
    json.dump(sets, f)
print(json.dumps({"seconds": seconds, "imports_s": t - start, "version": cleanvision.__version__}))
"""

LABELWISE_CHILD = """
import json, sys, time
start = time.perf_counter()
import labelwise
if not hasattr(labelwise, "audit"):
    sys.exit(3)
t = time.perf_counter()
labelwise.audit(sys.argv[1], sys.argv[2], n_jobs=int(sys.argv[3]))
print(json.dumps({"seconds": time.perf_counter() - t, "imports_s": t - start, "version": labelwise.__version__}))
"""


# ---------------------------------------------------------------- the planted set


@dataclass
class Item:
    """One image of the set before it is written."""

    image: Image.Image
    label: str
    split: str
    issue: str = ""
    source: int = -1
    kind: str = ""
    detail: str = ""
    quality: int = 0
    path: str = ""


def copy_transform(image: Image.Image, kind: str, rng: np.random.Generator) -> tuple[Image.Image, str, int]:
    """``image`` after one near-duplicate transform: (image, detail, JPEG quality or 0 for PNG)."""
    if kind == "jpeg":
        quality = int(rng.integers(60, 91))
        return image, f"quality={quality}", quality
    if kind == "resize":
        side = int(rng.choice([29, 30, 31, 33, 34, 35]))
        return image.resize((side, side), Image.Resampling.BICUBIC), f"size={side}", 0
    if kind == "crop":
        left, top, right, bottom = (int(v) for v in rng.integers(1, 4, 4))
        w, h = image.size
        return image.crop((left, top, w - right, h - bottom)), f"crop={left},{top},{right},{bottom}", 0
    if kind == "mirror":
        return ImageOps.mirror(image), "", 0
    factor = float(rng.choice([0.9, 1.1]))
    return ImageEnhance.Brightness(image).enhance(factor), f"factor={factor}", 0


def dark_copy(image: Image.Image, rng: np.random.Generator) -> tuple[Image.Image, str, str]:
    if rng.random() < 0.5:
        factor = float(rng.uniform(0.1, 0.3))
        return ImageEnhance.Brightness(image).enhance(factor), "scale", f"factor={factor:.2f}"
    gamma = float(rng.uniform(3.0, 5.0))
    out = 255.0 * (np.asarray(image, dtype=np.float64) / 255.0) ** gamma
    return Image.fromarray(np.rint(out).astype(np.uint8)), "gamma", f"gamma={gamma:.2f}"


def light_copy(image: Image.Image, rng: np.random.Generator) -> tuple[Image.Image, str, str]:
    alpha = float(rng.uniform(0.6, 0.85))
    out = (1 - alpha) * np.asarray(image, dtype=np.float64) + alpha * 255.0
    return Image.fromarray(np.rint(out).astype(np.uint8)), "white", f"alpha={alpha:.2f}"


def blurry_copy(image: Image.Image, rng: np.random.Generator) -> tuple[Image.Image, str, str]:
    radius = float(rng.uniform(1.5, 3.0))
    return image.filter(ImageFilter.GaussianBlur(radius)), "gaussian", f"radius={radius:.2f}"


def low_information_image(rng: np.random.Generator) -> tuple[Image.Image, str, str]:
    colour = rng.integers(40, 216, 3)
    if rng.random() < 0.5:
        noisy = colour + rng.integers(-3, 4, (32, 32, 3))
        return Image.fromarray(noisy.astype(np.uint8)), "flat", f"colour={tuple(int(c) for c in colour)}"
    delta = rng.integers(-6, 7, 3)
    axis = int(rng.integers(0, 2))
    ramp = np.linspace(0, 1, 32)[:, None] if axis == 0 else np.linspace(0, 1, 32)[None, :]
    out = colour + delta * np.broadcast_to(ramp, (32, 32))[..., None]
    detail = f"colour={tuple(int(c) for c in colour)} delta={tuple(int(d) for d in delta)} axis={axis}"
    return Image.fromarray(np.rint(out).astype(np.uint8)), "gradient", detail


def build(data_dir: Path, *, n_base: int, seed: int) -> None:
    """Write the planted set into ``data_dir`` (through a temporary folder renamed at the end)."""
    rng = np.random.default_rng(seed)
    cifar = np.load(CIFAR)
    pixels, labels, classes = cifar["images"], cifar["labels"], [str(c) for c in cifar["classes"]]
    rows = np.sort(rng.choice(len(labels), n_base, replace=False))
    n_train = round(TRAIN_SHARE * n_base)
    splits = np.where(rng.permutation(n_base) < n_train, "train", "test")
    items = [
        Item(Image.fromarray(pixels[r]), classes[int(labels[r])], str(s)) for r, s in zip(rows, splits, strict=True)
    ]
    n_plant = round(PLANT_SHARE * n_base)
    sources = rng.choice(n_base, n_plant * len(COPY_ISSUES), replace=False).reshape(len(COPY_ISSUES), n_plant)
    for issue, picked in zip(COPY_ISSUES, sources, strict=True):
        kinds = rng.permutation(np.resize(COPY_KINDS, n_plant)) if issue in ("near_duplicate", "leak") else None
        for k, src in enumerate(picked):
            base = items[src]
            quality = 0
            if kinds is not None:
                image, detail, quality = copy_transform(base.image, str(kinds[k]), rng)
                kind = str(kinds[k])
            else:
                image, kind, detail = {"dark": dark_copy, "light": light_copy, "blurry": blurry_copy}[issue](
                    base.image, rng
                )
            split = ({"train": "test", "test": "train"}[base.split]) if issue == "leak" else base.split
            items.append(Item(image, base.label, split, issue, int(src), kind, detail, quality))
    for _ in range(n_plant):
        image, kind, detail = low_information_image(rng)
        items.append(Item(image, "", "", "low_information", kind=kind, detail=detail))
    digits = np.load(MNIST)["images"]
    n_mnist = n_plant // 2
    for r in rng.choice(len(digits), n_mnist, replace=False):
        digit = Image.fromarray(digits[r]).resize((32, 32), Image.Resampling.BILINEAR).convert("RGB")
        items.append(Item(digit, "", "", "outlier", kind="mnist", detail=f"mnist_index={int(r)}"))
    for _ in range(n_plant - n_mnist):
        items.append(
            Item(Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)), "", "", "outlier", kind="noise")
        )
    for item in items:
        if not item.label:
            item.label = classes[int(rng.integers(len(classes)))]
            item.split = "train" if rng.random() < TRAIN_SHARE else "test"
    for item, name in zip(items, rng.permutation(len(items)), strict=True):
        item.path = f"images/{name:05d}.{'jpg' if item.quality else 'png'}"

    tmp = data_dir.with_name(data_dir.name + ".building")
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "images").mkdir(parents=True)
    gray = []
    for item in items:
        if item.quality:
            item.image.save(tmp / item.path, quality=item.quality)
        else:
            item.image.save(tmp / item.path)
        decoded = np.asarray(Image.open(tmp / item.path).convert("RGB"))
        gray.append(int((decoded == decoded[..., :1]).all()))
    table = pd.DataFrame(
        {
            "path": [it.path for it in items],
            "label": [it.label for it in items],
            "split": [it.split for it in items],
            "issue": [it.issue for it in items],
            "source_path": [items[it.source].path if it.source >= 0 else "" for it in items],
            "kind": [it.kind for it in items],
            "detail": [it.detail for it in items],
            "grayscale": gray,
        }
    )
    table.sort_values("path")[["path", "label", "split"]].to_csv(tmp / "dataset.csv", index=False)
    planted = table[table["issue"] != ""]
    planted[["path", "issue", "source_path", "split", "label", "kind", "detail", "grayscale"]].to_csv(
        tmp / "truth.csv", index=False
    )
    base = table.iloc[:n_base].assign(cifar_index=rows)
    base[["path", "label", "split", "cifar_index", "grayscale"]].to_csv(tmp / "base.csv", index=False)
    manifest = {"version": BUILD_VERSION, "seed": seed, "n_base": n_base, "n_images": len(items)}
    (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    shutil.rmtree(data_dir, ignore_errors=True)
    tmp.rename(data_dir)


def ensure_data(data_dir: Path, *, n_base: int, seed: int, rebuild: bool) -> None:
    want = {"version": BUILD_VERSION, "seed": seed, "n_base": n_base}
    manifest = data_dir / "manifest.json"
    if data_dir.exists() and not rebuild:
        if not manifest.exists():
            sys.exit(f"{data_dir} exists but holds no manifest.json: not a set this script built; choose --data-dir")
        have = json.loads(manifest.read_text())
        if {k: have.get(k) for k in want} == want:
            print(f"planted set: {data_dir} (cached, {have['n_images']:,} images)")
            return
        print(f"{data_dir} was built with {have}, not {want}: rebuilding")
    elif data_dir.exists() and not manifest.exists():
        sys.exit(f"{data_dir} exists but holds no manifest.json: refusing to replace it")
    t = time.perf_counter()
    build(data_dir, n_base=n_base, seed=seed)
    n = json.loads(manifest.read_text())["n_images"]
    read = load_dataset(data_dir / "dataset.csv", check=False).table
    if len(read) != n or set(read["split"]) != {"train", "test"}:
        sys.exit(f"labelwise reads {len(read)} rows, splits {set(read['split'])} from {data_dir / 'dataset.csv'}")
    print(f"planted set: built {n:,} images in {time.perf_counter() - t:.1f} s into {data_dir}")


def load_truth(data_dir: Path) -> pd.DataFrame:
    """Every file of the set: base rows with an empty ``issue``, planted rows as in ``truth.csv``."""
    base = pd.read_csv(data_dir / "base.csv", keep_default_na=False).drop(columns="cifar_index")
    planted = pd.read_csv(data_dir / "truth.csv", keep_default_na=False)
    table = pd.concat([base.assign(issue="", source_path="", kind="", detail=""), planted], ignore_index=True)
    table.index = pd.Index(table["path"].to_list())
    return table


# ---------------------------------------------------------------- the tools


@dataclass
class Findings:
    """What one tool said: flagged paths per issue type, and sets of paths it says are copies."""

    tool: str
    seconds: float
    version: str
    flags: dict[str, set[str]] = field(default_factory=dict)
    links: dict[str, list[set[str]]] = field(default_factory=dict)


def run_child(python: str, code: str, args: list[str], log: Path) -> tuple[int, dict[str, Any], float]:
    t = time.perf_counter()
    done = subprocess.run(
        [python, "-c", code, *args],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "MPLBACKEND": "Agg"},
    )
    wall = time.perf_counter() - t
    log.write_text(done.stdout + done.stderr)
    if done.returncode:
        return done.returncode, {}, wall
    return 0, json.loads(done.stdout.strip().splitlines()[-1]), wall


def relative(data_dir: Path, value: str) -> str:
    """A tool's file path (absolute, or relative to the working directory) as a path in the set."""
    return Path(value).resolve().relative_to(data_dir).as_posix()


def run_cleanvision(python: str, data_dir: Path, out: Path, truth: pd.DataFrame, jobs: int) -> Findings | None:
    if not Path(python).exists():
        print(
            f"CleanVision anchor skipped: no {python}; make it with\n"
            f"  python -m venv {Path(python).parents[1]} && {Path(python).parent}/pip install cleanvision==0.3.7"
        )
        return None
    listing = out / "cleanvision_files.txt"
    listing.write_text("\n".join(str(data_dir / p) for p in truth["path"]) + "\n")
    rc, result, wall = run_child(
        python, CLEANVISION_CHILD, [str(listing), str(out), str(jobs)], out / "cleanvision.log"
    )
    if rc:
        sys.exit(f"CleanVision failed (exit {rc}); see {out / 'cleanvision.log'}")
    print(
        f"CleanVision {result['version']}: {result['seconds']:.1f} s (process {wall:.1f} s, imports {result['imports_s']:.1f} s)"
    )
    issues = pd.read_csv(out / "cleanvision_issues.csv")
    issues["path"] = [relative(data_dir, p) for p in issues["path"]]
    joined = issues.merge(truth[["path", "issue", "kind", "source_path", "split"]], on="path", how="left")
    joined.to_csv(out / "cleanvision_scores.csv", index=False)
    found = Findings("cleanvision", result["seconds"], result["version"])
    for t in CLEANVISION_TYPES:
        column = f"is_{t}_issue"
        if column in issues:
            found.flags[t] = set(issues.loc[issues[column].astype(bool), "path"])
    sets = json.loads((out / "cleanvision_sets.json").read_text())
    found.links["near_duplicate"] = [
        {relative(data_dir, p) for p in s} for k in ("exact_duplicates", "near_duplicates") for s in sets[k]
    ]
    return found


def run_labelwise(data_dir: Path, out: Path, truth: pd.DataFrame, jobs: int) -> Findings | None:
    run_dir = out / "labelwise"
    shutil.rmtree(run_dir, ignore_errors=True)
    rc, result, wall = run_child(
        sys.executable, LABELWISE_CHILD, [str(data_dir / "dataset.csv"), str(run_dir), str(jobs)], out / "labelwise.log"
    )
    if rc == 3:
        print("labelwise skipped: this labelwise has no labelwise.audit yet")
        return None
    if rc:
        sys.exit(f"labelwise.audit failed (exit {rc}); see {out / 'labelwise.log'}")
    print(
        f"labelwise {result['version']}: {result['seconds']:.1f} s (process {wall:.1f} s, imports {result['imports_s']:.1f} s)"
    )
    rows = pd.read_csv(run_dir / "audit.csv", keep_default_na=False, dtype={"group": str, "related_sample_id": str})
    known = set(truth["path"])
    rows["path"] = [
        s if s in known else relative(data_dir, p) for s, p in zip(rows["sample_id"], rows["path"], strict=True)
    ]
    to_path = dict(zip(rows["sample_id"], rows["path"], strict=True))
    rows["related_path"] = [to_path.get(s, s) if s else "" for s in rows["related_sample_id"]]
    unknown = set(rows["related_path"]) - known - {""}
    if unknown:
        sys.exit(f"audit.csv: related_sample_id not a file of the set, e.g. {sorted(unknown)[0]!r}")
    rows.merge(
        truth[["path", "issue", "kind", "source_path", "split"]].add_prefix("truth_"),
        left_on="path",
        right_on="truth_path",
        how="left",
    ).drop(columns="truth_path").to_csv(out / "labelwise_findings.csv", index=False)
    found = Findings("labelwise", result["seconds"], result["version"])
    for issue, part in rows.groupby("issue"):
        found.flags[str(issue)] = set(part["path"])
    links: list[set[str]] = []
    for issue in ("near_duplicate", "leak"):
        part = rows[rows["issue"] == issue]
        grouped = [set(g["path"]) for key, g in part.groupby("group") if key not in ("", "-1")]
        pairs = [{a, b} for a, b in zip(part["path"], part["related_path"], strict=True) if b]
        found.links[issue] = grouped + pairs
        links += grouped + pairs
    found.links["near_duplicate"] = links
    return found


# ---------------------------------------------------------------- scoring


def f1(precision: float | None, recall: float | None) -> float | None:
    if precision is None or recall is None:
        return None
    return 2 * precision * recall / (precision + recall) if precision + recall else 0.0


def category(truth: pd.DataFrame, paths: set[str]) -> dict[str, int]:
    """How many of ``paths`` are base images or planted images of each type."""
    labels = truth.loc[sorted(paths), "issue"].replace("", "base")
    return {str(k): int(v) for k, v in labels.value_counts().items()}


def recall_by_kind(part: pd.DataFrame, hit: np.ndarray) -> dict[str, float]:
    return {str(k): float(hit[(part["kind"] == k).to_numpy()].mean()) for k in sorted(part["kind"].unique())}


class Links:
    """Sets of paths that a tool says are copies of each other, indexed by path."""

    def __init__(self, sets: list[set[str]]) -> None:
        self.sets = sets
        self.member: dict[str, set[int]] = defaultdict(set)
        for k, members in enumerate(sets):
            for path in members:
                self.member[path].add(k)

    def linked(self, pairs: pd.DataFrame) -> np.ndarray:
        """Whether each row's ``path`` and ``source_path`` share a set."""
        empty: set[int] = set()
        return np.array(
            [
                bool(self.member.get(a, empty) & self.member.get(b, empty))
                for a, b in zip(pairs["path"], pairs["source_path"], strict=True)
            ],
            dtype=bool,
        )


def score_links(links: Links, truth: pd.DataFrame, positives: tuple[str, ...], related: tuple[str, ...]) -> dict:
    """Copies of ``positives`` linked to their source; flagged images not about a copy of ``related``."""
    copies = truth[truth["issue"].isin(related)]
    excused = set(copies["path"]) | set(copies["source_path"])
    for path in copies["path"]:
        for k in links.member.get(path, ()):
            excused |= links.sets[k]
    flagged = set(links.member)
    fp = flagged - excused
    pos = truth[truth["issue"].isin(positives)]
    hit = links.linked(pos)
    precision = 1 - len(fp) / len(flagged) if flagged else None
    recall = float(hit.mean()) if len(hit) else None
    result: dict[str, Any] = {
        "n_truth": len(pos),
        "n_flagged": len(flagged),
        "n_found": int(hit.sum()),
        "n_fp": len(fp),
    }
    result.update(precision=precision, recall=recall, f1=f1(precision, recall))
    result["recall_by_kind"] = recall_by_kind(pos, hit)
    if len(positives) > 1:
        result["recall_by_issue"] = {i: float(hit[(pos["issue"] == i).to_numpy()].mean()) for i in positives}
    others = copies[~copies["issue"].isin(positives)]
    linked = links.linked(others)
    result["linked_other_copies"] = {
        str(i): int(linked[(others["issue"] == i).to_numpy()].sum()) for i in others["issue"].unique()
    }
    result["fp_by_category"] = category(truth, fp)
    return result


def score_flags(flagged: set[str], truth_paths: set[str], truth: pd.DataFrame) -> dict:
    tp = flagged & truth_paths
    result: dict[str, Any] = {
        "n_truth": len(truth_paths),
        "n_flagged": len(flagged),
        "n_found": len(tp),
        "n_fp": len(flagged - truth_paths),
    }
    precision = len(tp) / len(flagged) if flagged else None
    recall = len(tp) / len(truth_paths) if truth_paths else None
    result.update(precision=precision, recall=recall, f1=f1(precision, recall))
    part = truth.loc[sorted(truth_paths)]
    if len(part) and (part["kind"] != "").all():
        result["recall_by_kind"] = recall_by_kind(part, part["path"].isin(flagged).to_numpy())
    result["fp_by_category"] = category(truth, flagged - truth_paths)
    return result


def truth_sets(truth: pd.DataFrame) -> dict[str, set[str]]:
    """The images each issue type should flag (for near-duplicates: the planted copies, not their sources)."""
    sets = {issue: set(truth.loc[truth["issue"] == issue, "path"]) for issue in ROWS}
    sets["near_duplicate"] |= sets["leak"]
    sets["grayscale"] = set(truth.loc[truth["grayscale"] == 1, "path"])
    return sets


def score(found: Findings, truth: pd.DataFrame) -> dict[str, dict | None]:
    out: dict[str, dict | None] = {}
    expected = truth_sets(truth)
    for issue in ROWS:
        if issue == "near_duplicate" and issue in found.links:
            out[issue] = score_links(Links(found.links[issue]), truth, ("near_duplicate", "leak"), COPY_ISSUES)
        elif issue == "leak" and issue in found.links:
            out[issue] = score_links(Links(found.links[issue]), truth, ("leak",), ("leak",))
        elif issue in found.flags or (found.tool == "labelwise" and issue not in ("near_duplicate", "leak")):
            out[issue] = score_flags(found.flags.get(issue, set()), expected[issue], truth)
        else:
            out[issue] = None
    return out


# ---------------------------------------------------------------- report


def fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def print_table(scores: dict[str, dict], n_truth: dict[str, int]) -> None:
    tools = list(scores)
    head = f"{'issue':<17}{'truth':>6}" + "".join(f" | {t:^28}" for t in tools)
    sub = f"{'':<23}" + "".join(f" | {'flagged':>7} {'P':>6} {'R':>6} {'F1':>6}" for _ in tools)
    print(head + "\n" + sub + "\n" + "-" * len(sub))
    for issue in ROWS:
        line = f"{issue:<17}{n_truth[issue]:>6}"
        for t in tools:
            s = scores[t][issue]
            cell = (
                "n/a"
                if s is None
                else f"{s['n_flagged']:>7} {fmt(s['precision']):>6} {fmt(s['recall']):>6} {fmt(s['f1']):>6}"
            )
            line += f" | {cell:>28}"
        print(line)
    print("\nrecall by kind" + "".join(f" | {t:>11}" for t in tools))
    for issue in ROWS:
        kinds = sorted({k for s in scores.values() if s[issue] for k in s[issue].get("recall_by_kind", {})})
        for kind in kinds:
            cells = [
                fmt((s[issue] or {}).get("recall_by_kind", {}).get(kind)) if s[issue] else "n/a"
                for s in scores.values()
            ]
            print(f"  {issue + '/' + kind:<28}" + "".join(f" | {c:>11}" for c in cells))
    for t, s in scores.items():
        nd = s["near_duplicate"]
        if nd:
            by = nd.get("recall_by_issue", {})
            print(
                f"{t}: near-duplicate recall same-split {fmt(by.get('near_duplicate'))}, across splits {fmt(by.get('leak'))}; "
                f"dark/light/blurry copies linked to their source {nd['linked_other_copies']}"
            )
        fps = {i: v["fp_by_category"] for i, v in s.items() if v and v["n_fp"]}
        print(f"{t}: false positives by what they are: " + "; ".join(f"{i} {c}" for i, c in fps.items()))


def write_copies(out: Path, truth: pd.DataFrame, found: list[Findings]) -> None:
    copies = truth[truth["source_path"] != ""][["path", "source_path", "issue", "split", "kind", "detail"]].copy()
    for f in found:
        for issue, sets in f.links.items():
            copies[f"{f.tool}_{issue}_linked"] = Links(sets).linked(copies)
    copies.to_csv(out / "copies.csv", index=False)


# ---------------------------------------------------------------- the scale run

SCALE_VERSION = 1

SCALE_LABELWISE_CHILD = """
import json, resource, sys, time
def rss_mb():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
start = time.perf_counter()
import labelwise
labelwise.load_dataset(sys.argv[1].replace("dataset.csv", "warmup.csv"), check=False)  # the imports it makes
before = rss_mb()
t = time.perf_counter()
ds = labelwise.load_dataset(sys.argv[1], check=False, n_jobs=int(sys.argv[3]))
load_s = time.perf_counter() - t
loaded = rss_mb()
table_mb = int(ds.table.memory_usage(deep=True).sum()) / 2**20
t2 = time.perf_counter()
result = labelwise.audit(ds, sys.argv[2], backbone="none", n_jobs=int(sys.argv[3]))
audit_s = time.perf_counter() - t2
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({
    "seconds": load_s + audit_s, "load_s": load_s, "audit_s": audit_s, "imports_s": t - start,
    "version": labelwise.__version__, "rss_before_load_mb": before, "rss_after_load_mb": loaded,
    "table_rss_mb": loaded - before, "table_deep_mb": table_mb, "peak_self_mb": peak,
    "audit_over_table_mb": peak - loaded, "findings": result.findings["issue"].value_counts().to_dict(),
}))
"""


def scale_build(data_dir: Path, *, n: int, seed: int) -> None:
    """``n`` distinct images, each a random crop, flip and colour jitter of a CIFAR-10 test image
    resized to 48-64 px a side (PNG), listed in ``dataset.csv`` (``path,label,split``)."""
    rng = np.random.default_rng(seed)
    cifar = np.load(CIFAR)
    pixels, labels, classes = cifar["images"], cifar["labels"], [str(c) for c in cifar["classes"]]
    tmp = data_dir.with_name(data_dir.name + ".building")
    shutil.rmtree(tmp, ignore_errors=True)
    seen: set[bytes] = set()
    rows: list[tuple[str, str, str, int]] = []
    while len(rows) < n:
        base = int(rng.integers(len(labels)))
        cw, ch = (int(v) for v in rng.integers(20, 33, 2))
        left, top = int(rng.integers(0, 33 - cw)), int(rng.integers(0, 33 - ch))
        image = Image.fromarray(pixels[base]).crop((left, top, left + cw, top + ch))
        if rng.random() < 0.5:
            image = ImageOps.mirror(image)
        for enhance in (ImageEnhance.Brightness, ImageEnhance.Contrast, ImageEnhance.Color):
            image = enhance(image).enhance(float(rng.uniform(0.7, 1.3)))
        size = tuple(int(v) for v in rng.integers(48, 65, 2))
        image = image.resize(size, Image.Resampling.BICUBIC)
        key = image.tobytes() + bytes(size)
        if key in seen:
            continue
        seen.add(key)
        k = len(rows)
        path = f"images/{k // 1000:03d}/{k:06d}.png"
        if k % 1000 == 0:
            (tmp / path).parent.mkdir(parents=True)
        image.save(tmp / path)
        split = "train" if rng.random() < TRAIN_SHARE else "test"
        rows.append((path, classes[int(labels[base])], split, base))
    table = pd.DataFrame(rows, columns=["path", "label", "split", "cifar_index"])
    table[["path", "label", "split"]].to_csv(tmp / "dataset.csv", index=False)
    table[["path", "label", "split"]].head(2).to_csv(tmp / "warmup.csv", index=False)
    table[["path", "cifar_index"]].to_csv(tmp / "sources.csv", index=False)
    manifest = {"version": SCALE_VERSION, "seed": seed, "n_images": n, "n_sources": int(table["cifar_index"].nunique())}
    (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    shutil.rmtree(data_dir, ignore_errors=True)
    tmp.rename(data_dir)


def scale_data(data_dir: Path, *, n: int, seed: int, rebuild: bool) -> float | None:
    """Build the scale set unless cached; the seconds the build took (None when cached)."""
    want = {"version": SCALE_VERSION, "seed": seed, "n_images": n}
    manifest = data_dir / "manifest.json"
    if data_dir.exists() and not manifest.exists():
        sys.exit(f"{data_dir} exists but holds no manifest.json: refusing to replace it")
    if data_dir.exists() and not rebuild:
        have = json.loads(manifest.read_text())
        if {k: have.get(k) for k in want} == want:
            print(f"scale set: {data_dir} (cached, {n:,} images from {have['n_sources']:,} CIFAR images)")
            return None
        print(f"{data_dir} was built with {have}, not {want}: rebuilding")
    t = time.perf_counter()
    scale_build(data_dir, n=n, seed=seed)
    seconds = time.perf_counter() - t
    print(f"scale set: built {n:,} images in {seconds:.1f} s into {data_dir}")
    return seconds


def tree_memory(pid: int) -> tuple[float, float]:
    """Resident and proportional set size (MiB) of ``pid`` and its descendants, from /proc."""
    parents: dict[int, list[int]] = defaultdict(list)
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                stat = Path(entry.path, "stat").read_text()
            except OSError:
                continue
            parents[int(stat.rsplit(")", 1)[1].split()[1])].append(int(entry.name))
    todo, rss, pss = [pid], 0, 0
    while todo:
        p = todo.pop()
        todo += parents.get(p, [])
        try:
            for line in Path(f"/proc/{p}/smaps_rollup").read_text().splitlines():
                if line.startswith("Rss:"):
                    rss += int(line.split()[1])
                elif line.startswith("Pss:"):
                    pss += int(line.split()[1])
        except OSError:
            continue
    return rss / 1024, pss / 1024


def run_measured(command: list[str], log: Path) -> dict[str, Any]:
    """Run ``command``; its result line (JSON), wall seconds, the peak RSS of its largest process
    (``wait4``'s ``ru_maxrss``) and the peak RSS / PSS summed over its process tree (sampled)."""
    t = time.perf_counter()
    with log.open("w") as out:
        child = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, "MPLBACKEND": "Agg"})
        tree_rss = tree_pss = 0.0
        while True:
            pid, status, usage = os.wait4(child.pid, os.WNOHANG)
            if pid:
                break
            rss, pss = tree_memory(child.pid)
            tree_rss, tree_pss = max(tree_rss, rss), max(tree_pss, pss)
            time.sleep(0.5)
    child.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - t
    if child.returncode:
        sys.exit(f"{command[0]} failed (exit {child.returncode}); see {log}")
    result = json.loads(log.read_text().strip().splitlines()[-1])
    result.update(
        wall_s=wall,
        peak_rss_mb=usage.ru_maxrss / 1024,
        peak_tree_rss_mb=tree_rss,
        peak_tree_pss_mb=tree_pss,
    )
    return result


def scale_cleanvision(python: str, data_dir: Path, out: Path, jobs: int) -> dict[str, Any]:
    listing = out / "cleanvision_files.txt"
    paths = pd.read_csv(data_dir / "dataset.csv")["path"]
    listing.write_text("".join(f"{data_dir / p}\n" for p in paths))
    result = run_measured([python, "-c", CLEANVISION_CHILD, str(listing), str(out), str(jobs)], out / "cleanvision.log")
    issues = pd.read_csv(out / "cleanvision_issues.csv")
    result["findings"] = {
        c[3:-6]: int(issues[c].sum()) for c in issues.columns if c.startswith("is_") and issues[c].any()
    }
    sets = json.loads((out / "cleanvision_sets.json").read_text())
    result["findings"].update({f"{k}_sets": len(v) for k, v in sets.items()})
    return result


def run_scale(args: argparse.Namespace, out: Path) -> None:
    n = args.scale
    data_dir = (args.data_dir or SCRATCH / f"scale-{n}").resolve()
    run_dir = out / f"scale-{n}"
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs (other work skews wall times)")
    build_s = scale_data(data_dir, n=n, seed=args.seed, rebuild=args.rebuild)
    shutil.rmtree(run_dir, ignore_errors=True)
    run_dir.mkdir(parents=True)
    csv = data_dir / "dataset.csv"
    results: dict[str, dict[str, Any]] = {}
    if not args.skip_labelwise:
        command = [sys.executable, "-c", SCALE_LABELWISE_CHILD, str(csv), str(run_dir / "labelwise"), str(args.jobs)]
        results["labelwise"] = run_measured(command, run_dir / "labelwise.log")
        print(f"labelwise done: {results['labelwise']['wall_s']:.1f} s")
    if not args.labelwise_only:
        if not Path(args.cleanvision_python).exists():
            print(f"CleanVision skipped: no {args.cleanvision_python}")
        else:
            results["cleanvision"] = scale_cleanvision(args.cleanvision_python, data_dir, run_dir, args.jobs)
            print(f"CleanVision done: {results['cleanvision']['wall_s']:.1f} s")
    for r in results.values():
        r["images_per_s"] = n / r["seconds"]
    print(f"\n{n:,} images, n_jobs={args.jobs}, load average {os.getloadavg()[0]:.1f}")
    head = f"{'tool':<12}{'call s':>8}{'process s':>10}{'images/s':>10}{'peak RSS':>10}{'tree RSS':>10}{'tree PSS':>10}"
    print(head + "   (memory in MiB)\n" + "-" * len(head))
    for tool, r in results.items():
        print(
            f"{tool:<12}{r['seconds']:>8.1f}{r['wall_s']:>10.1f}{r['images_per_s']:>10,.0f}"
            f"{r['peak_rss_mb']:>10,.0f}{r['peak_tree_rss_mb']:>10,.0f}{r['peak_tree_pss_mb']:>10,.0f}"
        )
    if "labelwise" in results:
        r = results["labelwise"]
        print(
            f"labelwise: load_dataset {r['load_s']:.1f} s + audit {r['audit_s']:.1f} s; table {r['table_rss_mb']:.0f} MiB "
            f"RSS ({r['table_deep_mb']:.0f} MiB in pandas), peak {r['audit_over_table_mb']:,.0f} MiB above the loaded table"
        )
    for tool, r in results.items():
        print(f"{tool} findings: {r['findings']}")
    figures_path = out / "figures.json"
    figures = json.loads(figures_path.read_text()) if figures_path.exists() else {}
    figures.setdefault("scale", {})[str(n)] = {
        "data_dir": str(data_dir),
        "seed": args.seed,
        "n_images": n,
        "n_jobs": args.jobs,
        "build_s": build_s,
        "load_average": os.getloadavg()[0],
        "cpus": os.cpu_count(),
        "tools": results,
    }
    figures_path.write_text(json.dumps(figures, indent=1) + "\n")
    print(f"figures: {figures_path} (scale.{n}); logs and outputs in {run_dir}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, help=f"the planted set (default {SCRATCH}/data, --quick: data-quick)")
    parser.add_argument(
        "--out", type=Path, help=f"figures and score tables (default {SCRATCH}/out, --quick: out-quick)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="2,000 base images, planted in proportion")
    parser.add_argument("--rebuild", action="store_true", help="rebuild the planted set even if cached")
    parser.add_argument("--jobs", type=int, default=2, help="n_jobs of both tools")
    parser.add_argument("--cleanvision-python", default="/work/scratch/cv-venv/bin/python")
    parser.add_argument(
        "--scale", type=int, metavar="N", help=f"time and memory on N generated images ({SCRATCH}/scale-N), no scoring"
    )
    tools = parser.add_mutually_exclusive_group()
    tools.add_argument("--labelwise-only", action="store_true", help="skip the CleanVision anchor")
    tools.add_argument("--skip-labelwise", action="store_true", help="run the CleanVision anchor only")
    args = parser.parse_args()

    suffix = "-quick" if args.quick else ""
    out = (args.out or SCRATCH / f"out{suffix}").resolve()
    if args.scale:
        run_scale(args, out)
        return
    data_dir = (args.data_dir or SCRATCH / f"data{suffix}").resolve()
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs (other work skews wall times)")
    ensure_data(data_dir, n_base=2000 if args.quick else 10_000, seed=args.seed, rebuild=args.rebuild)
    truth = load_truth(data_dir)
    planted = truth[truth["issue"] != ""]
    print(
        f"{len(truth):,} images: {len(truth) - len(planted):,} base, planted {planted['issue'].value_counts().to_dict()}"
    )
    out.mkdir(parents=True, exist_ok=True)

    found = []
    if not args.skip_labelwise:
        found.append(run_labelwise(data_dir, out, truth, args.jobs))
    if not args.labelwise_only:
        found.append(run_cleanvision(args.cleanvision_python, data_dir, out, truth, args.jobs))
    done = [f for f in found if f is not None]
    if not done:
        return
    scores = {f.tool: score(f, truth) for f in done}
    print()
    print_table(scores, {issue: len(paths) for issue, paths in truth_sets(truth).items()})
    for f in done:
        print(f"{f.tool}: {f.seconds:.1f} s, {len(truth) / f.seconds:,.0f} images/s (n_jobs={args.jobs})")
    write_copies(out, truth, done)
    figures = {
        "data_dir": str(data_dir),
        "seed": args.seed,
        "n_images": len(truth),
        "planted": planted["issue"].value_counts().to_dict(),
        "n_jobs": args.jobs,
        "tools": {
            f.tool: {
                "version": f.version,
                "seconds": f.seconds,
                "images_per_s": len(truth) / f.seconds,
                "scores": scores[f.tool],
            }
            for f in done
        },
    }
    if (out / "figures.json").exists():
        figures["scale"] = json.loads((out / "figures.json").read_text()).get("scale", {})
    (out / "figures.json").write_text(json.dumps(figures, indent=1) + "\n")
    print(f"figures: {out / 'figures.json'}; score tables and copies.csv in {out}")


if __name__ == "__main__":
    main()
