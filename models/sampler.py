"""Few-shot episodes: which drawings are support and which are queries."""

from __future__ import annotations

import numpy as np


class EpisodeSampler:
    """Draws N-way K-shot episodes from the labels of a data set.

    Args:
        labels: ``(n_items,)`` ``int64`` class of every item.
        ways, shots, queries: classes per episode, support items and query items per class.
        groups: optional ``(n_classes,)`` group of every class (an alphabet); when given,
            each episode draws all its classes from one group (within-alphabet episodes).
    """

    def __init__(self, labels: np.ndarray, ways: int, shots: int, queries: int,
                 groups: np.ndarray | None = None) -> None:
        if ways < 2 or shots < 1 or queries < 1:
            raise ValueError(f"need ways >= 2, shots >= 1, queries >= 1 (got {ways}, {shots}, {queries})")
        self.items = [np.flatnonzero(labels == c) for c in range(int(labels.max()) + 1)]
        self.ways, self.shots, self.queries = ways, shots, queries
        too_small = [c for c, items in enumerate(self.items) if len(items) < shots + queries]
        if too_small:
            raise ValueError(f"{len(too_small)} classes have fewer than {shots + queries} items")
        if groups is None:
            self.groups = [np.arange(len(self.items))]
        else:
            self.groups = [np.flatnonzero(groups == g) for g in np.unique(groups)]
            self.groups = [g for g in self.groups if len(g) >= ways]
        if not self.groups or max(len(g) for g in self.groups) < ways:
            raise ValueError(f"no group has {ways} classes")

    def sample(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """One episode.

        Returns:
            ``support`` ``(ways * shots,)`` and ``query`` ``(ways * queries,)`` item indices,
            ordered class by class (class j of the episode is ``index // shots``, resp.
            ``// queries``).
        """
        group = self.groups[rng.integers(len(self.groups))]
        classes = rng.choice(group, self.ways, replace=False)
        support, query = [], []
        for c in classes:
            picked = rng.choice(self.items[c], self.shots + self.queries, replace=False)
            support.append(picked[: self.shots])
            query.append(picked[self.shots :])
        return np.concatenate(support), np.concatenate(query)

