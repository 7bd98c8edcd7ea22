"""Tabletop textures and the noise they are made of, as functions of tabletop world coordinates.

Each texture takes the tabletop's world coordinates (:class:`Plane`), a random generator and
the working width, and returns a darkness map in 0..1 (and, for wood, the plank seams), so
grain converges towards the vanishing point like a real table.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


class NoiseField:
    """Smooth value noise sampled at arbitrary coordinates (cubic interpolation of a random grid).

    Coordinates are in grid cells and wrap around (the field tiles seamlessly); OpenCV's
    remap stores them as 16-bit fixed point, so callers keep them within +-30000 cells.
    """

    def __init__(self, rng: np.random.Generator, cells: int) -> None:
        self.grid = rng.random((cells, cells), dtype=np.float32) * 2.0 - 1.0

    def sample(self, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        """Noise in about [-1, 1] at columns ``u`` and rows ``v`` (float32 arrays, same shape)."""
        return cv2.remap(self.grid, u, v, interpolation=cv2.INTER_CUBIC, borderMode=cv2.BORDER_WRAP)


def fbm(rng: np.random.Generator, u: np.ndarray, v: np.ndarray, octaves: int, cells: int = 32) -> np.ndarray:
    """Fractal noise: ``octaves`` layers of value noise, each twice as fine and half as strong."""
    total = np.zeros(u.shape, dtype=np.float32)
    amp, freq, norm = 1.0, 1.0, 0.0
    for _ in range(octaves):
        total += amp * NoiseField(rng, cells).sample(u * freq, v * freq)
        norm += amp
        amp *= 0.5
        freq *= 2.0
    return total / norm


def smooth_noise(rng: np.random.Generator, h: int, w: int, cells: int, octaves: int) -> np.ndarray:
    """(h, w) fractal noise in about [-1, 1] whose coarsest feature is ``1 / cells`` of the image."""
    side = cells * 2 ** (octaves - 1)
    small = fbm(rng, *np.meshgrid(*(np.linspace(0, cells, side, dtype=np.float32),) * 2), octaves, cells)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)


@dataclass(frozen=True)
class Geometry:
    """The scene layout in working pixels."""

    h: int
    w: int
    horizon: float  # row of the tabletop's back edge (first tabletop row)
    eye_drop: float  # rows from the eye line down to the back edge
    focal: float
    light_x: float  # column of the key light's centre


@dataclass(frozen=True)
class Plane:
    """World coordinates of tabletop pixels (rows ``row0`` to the bottom), float32 (rows, w).

    ``x`` runs across and ``z`` into the picture from the back edge towards the viewer, in
    units of one pixel at the back edge; ``footprint`` is image pixels per world unit across.
    """

    x: np.ndarray
    z: np.ndarray
    footprint: np.ndarray


def plane_coordinates(geo: Geometry, ys: np.ndarray, xs: np.ndarray) -> Plane:
    d = np.maximum(ys - (geo.horizon - geo.eye_drop), geo.eye_drop)
    scale = (geo.eye_drop / d).astype(np.float32)  # world units per image pixel across (<= 1)
    big_x, big_z = np.broadcast_arrays((xs - geo.light_x) * scale, geo.focal * (1.0 - scale))
    footprint = np.broadcast_to(1.0 / scale, big_x.shape)
    return Plane(
        np.ascontiguousarray(big_x, dtype=np.float32),
        np.ascontiguousarray(big_z, dtype=np.float32),
        np.ascontiguousarray(footprint, dtype=np.float32),
    )


def _wood(p: Plane, rng: np.random.Generator, w: int) -> tuple[np.ndarray, np.ndarray]:
    """Grain darkness (0 = plain wood, up to 1 = grain colour) of planks running towards the viewer."""
    plank_w = w * rng.uniform(0.17, 0.27)
    plank_pos = (p.x + rng.uniform(0, plank_w)) / plank_w
    plank = np.floor(plank_pos)
    # Per-plank tone and grain phase: a small table of random values indexed by plank number.
    index = np.mod(plank, 64).astype(np.intp)
    plank_tone = rng.normal(0.0, 0.07, size=64).astype(np.float32)[index]
    plank_phase = rng.uniform(0, 50, size=64).astype(np.float32)[index]
    period = rng.uniform(6.0, 9.0)  # grain line spacing in back-edge pixels (>= 4 px: no aliasing)
    warp = fbm(rng, p.x / 70.0 + plank_phase, p.z / 500.0, octaves=3, cells=16)
    rings = p.x / period + warp * 3.0 + plank_phase
    lines = (0.5 + 0.5 * np.cos(2 * np.pi * rings)) ** 6
    strength_along = 0.55 + 0.45 * NoiseField(rng, 32).sample(p.x / 25.0 + plank_phase, p.z / 120.0)
    fibres = NoiseField(rng, 64).sample(p.x / 1.6, p.z / 45.0)
    tone = fbm(rng, p.x / 150.0, p.z / 300.0, octaves=2, cells=16)
    # Plank seams: darken within about one image pixel of a plank boundary.
    frac = plank_pos - plank
    seam = np.exp(-(((np.minimum(frac, 1.0 - frac) * plank_w / p.footprint) / 0.8) ** 2))
    dark = 0.32 * lines * strength_along + 0.07 * fibres + 0.10 * tone + plank_tone
    return dark, seam


def _veins(phase: np.ndarray, width: float) -> np.ndarray:
    """Lines where ``phase`` crosses an integer, ``width`` (phase units) wide, anti-aliased.

    Where the phase changes faster than the line width per pixel, the line is widened to
    the pixel footprint and dimmed by the same factor (box filtering): no dashed lines.
    """
    grad_y, grad_x = np.gradient(phase)
    eff = np.sqrt(width**2 + 0.5 * (grad_x**2 + grad_y**2))
    dist = phase - np.round(phase)
    return (width / eff) * np.exp(-((dist / eff) ** 2))


def _marble(p: Plane, rng: np.random.Generator, w: int) -> tuple[np.ndarray, None]:
    """Vein darkness of a polished marble slab: a few bold meandering veins, many faint ones."""
    angle = rng.uniform(0.3, 1.2) * rng.choice([-1.0, 1.0])
    along = p.x * np.cos(angle) + p.z * np.sin(angle)
    across = p.x * np.cos(angle + 1.1) + p.z * np.sin(angle + 1.1)
    turb = fbm(rng, p.x / 260.0, p.z / 260.0, octaves=4, cells=16)
    period = w * rng.uniform(0.18, 0.28)
    main = _veins(along / period + turb * 0.9, 0.012)
    halo = _veins(along / period + turb * 0.9, 0.06)
    fine = _veins(across / (period * 0.37) + turb * 3.2 + 0.37, 0.02)
    fade = np.clip(0.65 + 0.7 * NoiseField(rng, 16).sample(p.x / 160.0, p.z / 160.0), 0.0, 1.0)
    fade2 = np.clip(0.3 + 1.0 * NoiseField(rng, 16).sample(p.x / 110.0 + 7.0, p.z / 110.0), 0.0, 1.0)
    clouds = fbm(rng, p.x / 180.0, p.z / 220.0, octaves=2, cells=16)
    return (0.55 * main + 0.12 * halo) * fade + 0.3 * fine * fade2 + 0.05 * clouds, None


def _concrete(p: Plane, rng: np.random.Generator, w: int) -> tuple[np.ndarray, None]:
    """Mottled cement: broad clouds and a fine speckle."""
    clouds = fbm(rng, p.x / 160.0, p.z / 200.0, octaves=4, cells=32)
    speckle = NoiseField(rng, 128).sample(p.x / 2.0, p.z / 3.0)
    return 0.22 * clouds + 0.05 * speckle, None


def _sand(p: Plane, rng: np.random.Generator, w: int) -> tuple[np.ndarray, None]:
    """Fine sand with soft wind ripples running across."""
    warp = fbm(rng, p.x / 200.0, p.z / 200.0, octaves=3, cells=16)
    ripples = np.sin(p.z / rng.uniform(18, 26) + warp * 5.0 + p.x / 400.0)
    grains = NoiseField(rng, 128).sample(p.x / 1.5, p.z / 2.5)
    clouds = fbm(rng, p.x / 250.0, p.z / 250.0, octaves=2, cells=16)
    return 0.05 * ripples + 0.06 * grains + 0.10 * clouds, None


def _matte(p: Plane, rng: np.random.Generator, w: int) -> tuple[np.ndarray, None]:
    """A matte painted or paper surface: only a very faint mottling."""
    return 0.05 * fbm(rng, p.x / 250.0, p.z / 250.0, octaves=3, cells=16), None


TEXTURES = {"wood": _wood, "marble": _marble, "concrete": _concrete, "sand": _sand, "matte": _matte}
