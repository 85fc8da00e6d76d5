"""The built-in data set: scikit-learn's bundled handwritten digits (1,797 real 8x8 images).

It ships inside scikit-learn, so the demo and the fast tests need no download. There is no
official train/test split; a fixed, seeded 80/20 split stands in for one.
"""

from __future__ import annotations

import numpy as np

from wmstudio.data.tensorset import DataPair, ImageTensors

TEST_FRACTION = 0.2


def load_digits() -> DataPair:
    from sklearn.datasets import load_digits as sk_load_digits

    bunch = sk_load_digits()
    images = np.rint(bunch.images * (255.0 / 16.0)).astype(np.uint8)  # 0..16 -> 0..255
    labels = bunch.target.astype(np.int64)
    order = np.random.default_rng(0).permutation(len(labels))
    n_test = int(round(TEST_FRACTION * len(labels)))
    test, train = order[:n_test], order[n_test:]
    classes = [str(c) for c in range(10)]
    return DataPair(
        ImageTensors.from_numpy(images[train], labels[train], classes, "digits/train", layout="NHW"),
        ImageTensors.from_numpy(images[test], labels[test], classes, "digits/test", layout="NHW"),
        "digits",
    )
