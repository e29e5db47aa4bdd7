"""Seeded toy problems, drawn the way TensorFlow Playground draws them (its ``dataset.ts``).

Coordinates live in Playground's plane, roughly ``[-6, 6]²``, and ``noise`` is Playground's
slider as a fraction (its 0-50 % is 0-0.5 here; up to 1 is allowed). What noise does follows
Playground per set:

* circle, xor, plane, multi_gaussian: the point is drawn clean, but its label is computed at
  ``point + noise * U(-r, r)²`` (r = 5 for circle and xor, 6 for the regressions), so noise
  blurs the boundary rather than moving points;
* gaussians: noise widens the clusters, variance ``0.5 + 7 * noise`` (0.5 at 0, 4 at 0.5);
* spiral: noise moves points by ``noise * U(-1, 1)`` on each axis.

Two sets are not in Playground: ``moons`` (scikit-learn's ``make_moons`` scaled by 3.5 and
centred, noise = Gaussian jitter with std ``3.5 * noise``, i.e. make_moons' own noise in unit
coordinates) and ``sine`` (``y = sin(x) + N(0, noise²)`` for ``x ~ U(-6, 6)``).

Labels are Playground's -1/+1 mapped to 0/1 (class 1 is Playground's positive, blue class).
Each generator returns float64 ``x`` of shape (n, d) and ``y`` (class ids, or float targets);
:mod:`bplab.datasets.base` casts and splits.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from bplab.datasets.base import DatasetInfo

__all__ = ["GENERATED_INFO", "GENERATORS", "PLANE_BOUNDS"]

# Playground draws its plane over [-6, 6] on both axes.
PLANE_BOUNDS = ((-6.0, 6.0), (-6.0, 6.0))


def _halves(n: int) -> tuple[int, int]:
    """Sizes of the two classes: n // 2 and the rest, so the total is exactly n."""
    return n // 2, n - n // 2


def _polar(rng: np.random.Generator, n: int, r_low: float, r_high: float) -> np.ndarray:
    r = rng.uniform(r_low, r_high, n)
    angle = rng.uniform(0.0, 2.0 * np.pi, n)
    # Playground's convention: x = r sin(angle), y = r cos(angle)
    return np.stack([r * np.sin(angle), r * np.cos(angle)], axis=1)


def circle(rng: np.random.Generator, n: int, noise: float):
    """Class 1 inside radius 2.5, class 0 in the ring 3.5..5 (Playground classifyCircleData)."""
    radius = 5.0
    n_in, n_out = _halves(n)
    x = np.concatenate([_polar(rng, n_in, 0.0, 0.5 * radius),
                        _polar(rng, n_out, 0.7 * radius, radius)])
    jitter = rng.uniform(-radius, radius, x.shape) * noise
    y = (np.hypot(*(x + jitter).T) < 0.5 * radius).astype(np.int64)
    return x, y


def xor(rng: np.random.Generator, n: int, noise: float):
    """Class 1 where x1 * x2 >= 0 (same sign), a 0.3 gap along the axes (classifyXORData)."""
    padding = 0.3
    x = rng.uniform(-5.0, 5.0, (n, 2))
    x += np.where(x > 0, padding, -padding)
    jitter = rng.uniform(-5.0, 5.0, x.shape) * noise
    moved = x + jitter
    y = (moved[:, 0] * moved[:, 1] >= 0).astype(np.int64)
    return x, y


def gaussians(rng: np.random.Generator, n: int, noise: float):
    """Class 1 around (2, 2), class 0 around (-2, -2) (classifyTwoGaussData)."""
    variance = 0.5 + (4.0 - 0.5) * noise / 0.5  # d3 linear scale [0, .5] -> [.5, 4]
    n_pos, n_neg = _halves(n)
    std = np.sqrt(variance)
    pos = rng.normal(2.0, std, (n_pos, 2))
    neg = rng.normal(-2.0, std, (n_neg, 2))
    x = np.concatenate([pos, neg])
    y = np.concatenate([np.ones(n_pos, np.int64), np.zeros(n_neg, np.int64)])
    return x, y


def spiral(rng: np.random.Generator, n: int, noise: float):
    """Two interleaved arms of 1.75 turns out to radius 5 (classifySpiralData)."""
    parts, labels = [], []
    for count, delta, label in zip(_halves(n), (0.0, np.pi), (1, 0)):
        i = np.arange(count) / max(count, 1)
        r = 5.0 * i
        t = 1.75 * 2.0 * np.pi * i + delta
        arm = np.stack([r * np.sin(t), r * np.cos(t)], axis=1)
        arm += rng.uniform(-1.0, 1.0, arm.shape) * noise
        parts.append(arm)
        labels.append(np.full(count, label, np.int64))
    return np.concatenate(parts), np.concatenate(labels)


def moons(rng: np.random.Generator, n: int, noise: float):
    """Two interleaving half circles (scikit-learn make_moons), scaled to Playground's plane."""
    scale = 3.5
    n_upper, n_lower = _halves(n)
    t_upper = np.linspace(0.0, np.pi, n_upper)
    t_lower = np.linspace(0.0, np.pi, n_lower)
    upper = np.stack([np.cos(t_upper), np.sin(t_upper)], axis=1)
    lower = np.stack([1.0 - np.cos(t_lower), 0.5 - np.sin(t_lower)], axis=1)
    # make_moons spans x in [-1, 2], y in [-0.5, 1]: centre it on the origin, then scale
    x = (np.concatenate([upper, lower]) - [0.5, 0.25]) * scale
    x += rng.normal(0.0, scale * noise, x.shape)
    y = np.concatenate([np.zeros(n_upper, np.int64), np.ones(n_lower, np.int64)])
    return x, y


def plane(rng: np.random.Generator, n: int, noise: float):
    """Target (x1 + x2) / 10, in [-1.2, 1.2] without noise (Playground regressPlane)."""
    radius = 6.0
    x = rng.uniform(-radius, radius, (n, 2))
    moved = x + rng.uniform(-radius, radius, x.shape) * noise
    return x, (moved.sum(axis=1) / 10.0)[:, None]


# (centre x, centre y, sign) of Playground's six bumps
_BUMPS = np.array([[-4, 2.5, 1], [0, 2.5, -1], [4, 2.5, 1],
                   [-4, -2.5, -1], [0, -2.5, 1], [4, -2.5, -1]], dtype=np.float64)


def multi_gaussian(rng: np.random.Generator, n: int, noise: float):
    """Six +-1 bumps falling linearly to 0 at distance 2; the largest in size wins.

    Playground's regressGaussian: target = sign_k * clamp(1 - d_k / 2, 0, 1) for the bump k
    with the largest |value| (0 away from all bumps).
    """
    radius = 6.0
    x = rng.uniform(-radius, radius, (n, 2))
    moved = x + rng.uniform(-radius, radius, x.shape) * noise
    dist = np.hypot(moved[:, None, 0] - _BUMPS[:, 0], moved[:, None, 1] - _BUMPS[:, 1])
    height = np.clip(1.0 - dist / 2.0, 0.0, 1.0)
    best = height.argmax(axis=1)
    rows = np.arange(n)
    return x, (height[rows, best] * _BUMPS[best, 2])[:, None]


def sine(rng: np.random.Generator, n: int, noise: float):
    """y = sin(x) plus Gaussian noise of std ``noise``, x uniform in [-6, 6] (about 2 periods)."""
    x = rng.uniform(-6.0, 6.0, (n, 1))
    y = np.sin(x) + rng.normal(0.0, noise, (n, 1)) if noise else np.sin(x)
    return x, y


@dataclass(frozen=True)
class Generator:
    """A generator with what load_dataset needs to label its output."""

    fn: Callable
    feature_names: tuple[str, ...]
    class_names: tuple[str, ...] | None = None
    bounds: tuple[tuple[float, float], ...] = PLANE_BOUNDS


XY = ("x1", "x2")

GENERATORS: dict[str, Generator] = {
    "circle": Generator(circle, XY, ("outside", "inside")),
    "xor": Generator(xor, XY, ("opposite signs", "same sign")),
    "gaussians": Generator(gaussians, XY, ("around (-2, -2)", "around (2, 2)")),
    "spiral": Generator(spiral, XY, ("arm 0", "arm 1")),
    "moons": Generator(moons, XY, ("upper moon", "lower moon")),
    "plane": Generator(plane, XY),
    "multi_gaussian": Generator(multi_gaussian, XY),
    "sine": Generator(sine, ("x",), bounds=((-6.0, 6.0),)),
}


def _info(name, title, task, samples, description, n_classes=2, noise=0.0, shape=(2,)):
    return DatasetInfo(
        name=name, title=title, task=task, kind="generated", samples=samples,
        description=description, input_shape=shape,
        n_classes=n_classes if task == "classification" else None, noise=noise,
        source="TensorFlow Playground (dataset.ts)" if name not in ("moons", "sine") else "",
    )


# Playground's defaults: 500 points to classify, 1200 to regress, noise 0.
GENERATED_INFO: dict[str, DatasetInfo] = {
    info.name: info for info in (
        _info("circle", "Circle", "classification", 500,
              "A disc of radius 2.5 (class 1) inside a ring from 3.5 to 5 (class 0). "
              "Noise blurs which side of radius 2.5 a point is labelled."),
        _info("xor", "Exclusive or", "classification", 500,
              "Quadrants: class 1 where x1 and x2 have the same sign. Not linearly separable; "
              "a product feature or a hidden layer solves it."),
        _info("gaussians", "Two Gaussians", "classification", 500,
              "Two Gaussian clusters around (2, 2) (class 1) and (-2, -2) (class 0). Noise "
              "widens them until they overlap."),
        _info("spiral", "Spiral", "classification", 500,
              "Two interleaved spiral arms of 1.75 turns. Noise jitters the points. The hard "
              "one: it needs depth or hand-made features."),
        _info("moons", "Two moons", "classification", 500,
              "Two interleaving half circles (scikit-learn's make_moons, scaled to the plane). "
              "Noise is Gaussian jitter.", noise=0.1),
        _info("plane", "Plane", "regression", 1200,
              "Target (x1 + x2) / 10: a tilted plane, learnable by a single linear unit."),
        _info("multi_gaussian", "Multi Gaussian", "regression", 1200,
              "Six bumps of height +1 or -1 on a 3 × 2 grid; the target is the strongest "
              "bump under the point."),
        _info("sine", "Sine wave", "regression", 500,
              "One input x in [-6, 6], target sin(x) plus Gaussian noise: curve fitting in 1-D.",
              noise=0.1, shape=(1,)),
    )
}
