"""How many of a folder's items are of none of the classes, estimated from the folder itself.

The calibration's open-set term (``classifier.OpenSetTerm``) was fitted on episodes with as many
unknown as known items, so its ``p_unknown`` assumes that half of what it sees is of no class.
A person's folder may hold none (every item is one of the classes) or mostly others; at the
wrong share the shown confidence is off by up to 16 points (model card, "The folder's own
share of unknowns"). The share ``π`` is estimated by maximum likelihood over the folder's items,
as Saerens, Latinne and Decaestecker (2002, "Adjusting the outputs of a classifier to new a
priori probabilities: a simple procedure") do with EM: with the term's log-odds ``z_i`` (its
likelihood ratio at the prior 1/2), an item's likelihood is ``π e^{z_i} + (1 - π)``, the
log-likelihood is concave in ``π``, and each item's probability then becomes
``sigmoid(z_i + ln(π / (1 - π)))``. Items a person reviewed count as what they said, and a
weak prior (``PSEUDO_ITEMS`` items, half of each) keeps a small folder's estimate from the
extremes. Nothing here knows Qt.
"""

from __future__ import annotations

import math

import numpy as np

#: The Beta prior's weight on the share, in items (half unknown, half known).
PSEUDO_ITEMS = 2.0
#: The share stays within [LIMIT, 1 - LIMIT].
LIMIT = 1e-3
_STEPS = 64  # Newton steps at most (each at least halves the bracket when it falls back to bisection)
_TOLERANCE = 1e-12  # the share to within this
_Z_LIMIT = 40.0  # log-odds beyond this are certain either way (and e^z stays finite)


def estimate(log_odds: np.ndarray, reviewed_known: int = 0, reviewed_unknown: int = 0,
             pseudo_items: float = PSEUDO_ITEMS) -> float:
    """The most likely share of items of none of the classes.

    Args:
        log_odds: ``(n,)`` the open-set term's log-odds of "unknown" at the prior 1/2 for the
            items nobody reviewed (non-finite values are left out).
        reviewed_known, reviewed_unknown: items a person said are of a class / of none.
        pseudo_items: the prior's weight (0: plain maximum likelihood).
    Returns:
        ``π`` in ``[LIMIT, 1 - LIMIT]``; 1/2 when there is nothing to go on.
    """
    z = np.asarray(log_odds, np.float64)
    z = np.clip(z[np.isfinite(z)], -_Z_LIMIT, _Z_LIMIT)
    a = 0.5 * pseudo_items + reviewed_unknown  # counts that say "unknown" (log π)
    b = 0.5 * pseudo_items + reviewed_known  # counts that say "known" (log(1 - π))
    if not len(z) and a == b:
        return 0.5
    excess = np.expm1(z)  # e^z - 1: an item's likelihood is 1 + π (e^z - 1)

    def slopes(share: float) -> tuple[float, float]:
        """The log-posterior's first and second derivatives in the share."""
        q = excess / (1.0 + share * excess)
        return (float(q.sum()) + a / share - b / (1.0 - share),
                -float((q * q).sum()) - a / share**2 - b / (1.0 - share) ** 2)

    low, high = LIMIT, 1.0 - LIMIT
    if slopes(low)[0] <= 0.0:
        return low
    if slopes(high)[0] >= 0.0:
        return high
    # Newton's method kept inside the bracket that holds the root (bisection where a step would
    # leave it), always from one half: the same items give the same share, bit for bit, in
    # whatever order they arrived. About 6 passes over the items instead of bisection's 48.
    share = 0.5
    for _ in range(_STEPS):
        first, second = slopes(share)
        if first > 0.0:
            low = share
        else:
            high = share
        step = share - first / second if second < 0.0 else 0.5 * (low + high)
        if abs(step - share) <= _TOLERANCE:  # converged (before the bracket test: the root is at its edge)
            return min(max(step, LIMIT), 1.0 - LIMIT)
        if not low < step < high:
            step = 0.5 * (low + high)
        share = step
    return share


def shift(share: float) -> float:
    """What to add to the term's log-odds for a share ``share`` of unknown items (0 at 1/2)."""
    return math.log(share / (1.0 - share))


def unknown_probability(log_odds: np.ndarray, share: float) -> np.ndarray:
    """``(n,)`` ``float64`` ``p_unknown`` of the term's log-odds at the share ``share``."""
    z = np.asarray(log_odds, np.float64) + shift(share)
    out: np.ndarray = 0.5 * (1.0 + np.tanh(0.5 * z))  # the logistic, without overflow
    return out
