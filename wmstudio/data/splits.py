"""The seeded, recorded split of a data set into owner, attacker and test indices."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from wmstudio.errors import ConfigError


@dataclass
class Splits:
    owner: np.ndarray  # indices into the training split
    attacker: np.ndarray  # indices into the training split, disjoint from owner
    test: np.ndarray  # indices into the test split
    seed: int

    def as_dict(self) -> dict[str, np.ndarray]:
        return {"owner": self.owner, "attacker": self.attacker, "test": self.test}


def make_splits(n_train: int, n_test: int, *, seed: int, attacker_fraction: float = 0.3,
                attacker_size: int = 0, owner_size: int = 0, test_size: int = 0) -> Splits:
    """Disjoint owner and attacker index sets from one seeded permutation of the training split."""
    n_att = attacker_size if attacker_size > 0 else int(round(attacker_fraction * n_train))
    if n_att >= n_train:
        raise ConfigError("data.attacker_size", f"{n_att} attacker images leave none of the {n_train} training images to the owner")
    rest = n_train - n_att
    n_own = owner_size if owner_size > 0 else rest
    if n_own > rest:
        raise ConfigError("data.owner_size", f"{n_own} requested but only {rest} training images are left after the attacker's {n_att}")
    if test_size > n_test:
        raise ConfigError("data.test_size", f"{test_size} requested but the test split has {n_test} images")
    rng = np.random.default_rng(seed)
    perm = rng.permutation(n_train)
    attacker = np.sort(perm[:n_att])
    owner = np.sort(perm[n_att:n_att + n_own])
    test = np.sort(rng.permutation(n_test)[:test_size]) if test_size else np.arange(n_test)
    return Splits(owner.astype(np.int64), attacker.astype(np.int64), test.astype(np.int64), seed)
