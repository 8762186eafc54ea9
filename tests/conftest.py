"""Small real images for tests: scikit-learn's digits written as files."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image


def unavailable(reason: str) -> None:
    """Skip a test whose system requirement (a browser, a database server) is missing here; under
    ``LABELWISE_TEST_STRICT=1`` (CI, which installs them) fail instead, so that nothing CI must test
    is skipped unseen."""
    if os.environ.get("LABELWISE_TEST_STRICT") == "1":
        pytest.fail(f"required in CI: {reason}", pytrace=False)
    pytest.skip(reason, allow_module_level=True)


@pytest.fixture(scope="session", autouse=True)
def _own_embedding_cache(tmp_path_factory):
    """The tests' embeddings go to a cache of their own: never read from, or written into, the
    user's ``~/.cache/labelwise`` (a stale entry there must not pass or fail a test)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LABELWISE_CACHE_DIR", str(tmp_path_factory.mktemp("embedding-cache")))
        yield


@pytest.fixture(scope="session")
def digits():
    from sklearn.datasets import load_digits

    d = load_digits()
    return (np.clip(d.images * 16, 0, 255).astype(np.uint8), d.target)


def write_png(path: Path, pixels: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)
    return path


@pytest.fixture
def image_folder(tmp_path, digits):
    """root/<digit>/<i>.png for 3 classes × 4 images, plus root/_unlabeled/ with 2 images."""
    images, target = digits
    root = tmp_path / "images"
    count = {0: 0, 1: 0, 2: 0}
    for i, (img, y) in enumerate(zip(images, target)):
        if y in count and count[y] < 4:
            write_png(root / str(y) / f"{i}.png", img)
            count[y] += 1
        if all(c == 4 for c in count.values()):
            break
    write_png(root / "_unlabeled" / "u1.png", images[100])
    write_png(root / "_unlabeled" / "u2.png", images[101])
    return root
