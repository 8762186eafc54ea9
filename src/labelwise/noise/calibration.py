"""Temperature scaling: one number that makes a source's probabilities as confident as its
record on the given labels warrants."""

from __future__ import annotations

import numpy as np

_EPS = 1e-6


def log_probs(probs: np.ndarray) -> np.ndarray:
    return np.log(np.clip(probs, _EPS, 1.0))


def softmax(logits: np.ndarray) -> np.ndarray:
    z = np.exp(logits - logits.max(1, keepdims=True))
    return z / z.sum(1, keepdims=True)


def fit_temperature(probs: np.ndarray, labels: np.ndarray) -> float:
    """The temperature ``T`` that makes ``softmax(log(probs) / T)`` most likely to give ``labels``."""
    from scipy.optimize import minimize_scalar

    logp = log_probs(probs)
    rows = np.arange(len(labels))

    def nll(log_t: float) -> float:
        z = logp / np.exp(log_t)
        z = z - z.max(1, keepdims=True)
        return float(-(z[rows, labels] - np.log(np.exp(z).sum(1))).mean())

    return float(np.exp(minimize_scalar(nll, bounds=(-3.0, 3.0), method="bounded").x))


def calibrate(probs: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, float]:
    """``probs`` rescaled by its fitted temperature, and the temperature."""
    t = fit_temperature(probs, labels)
    return softmax(log_probs(probs) / t), t
