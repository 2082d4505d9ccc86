"""Render one CellaVision-like May-Grunwald-Giemsa neutrophil from its latent features.

The image is composed in optical density (Beer-Lambert): every stained object adds
an absorbance per colour channel and the transmitted colour is the warm peach
background times ``exp(-total density)``; the nucleus shows through the cytoplasm.
Red cells are opaque discs: where two touch or overlap, the denser of the two wins
(they do not add up into a darker lens), and the neutrophil lies on top of them.

Colours, sizes and textures are calibrated against real CellaVision DM96 captures of
normal neutrophils (PBC data set, Acevedo et al. 2020; see docs/REALISM.md): warm
peach background, greyish-mauve red cells with a pale centre, packed and touching,
an irregular neutrophil outline with a soft edge, fine dusty pink-lilac granulation
that is barely resolved, and a nucleus with a darker rim, chromatin clumps, pale
clefts and lobes joined by thin filaments.

Every object is drawn inside its own bounding box and the nucleus is a union of
signed-distance shapes (a chain of lobes along a curved path, capsules of varying
width), so a 360 x 363 cell costs a few tens of milliseconds in NumPy.
"""
from __future__ import annotations

import dataclasses
import io
import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple

import numpy as np
from PIL import Image
from scipy import ndimage

from .features import GENERATOR_VERSION, CellFeatures

#: CellaVision DM96 image size, (height, width).
IMAGE_SHAPE = (363, 360)

# Transmitted colours (RGB over the peach background) of each stained object at full
# strength; converted to optical densities below. Measured on the tuning half of the
# real cells (medians of segmented parts), then adjusted for blur, noise and JPEG.
_BACKGROUND = np.array([255.0, 230.0, 203.0])
_RED_CELL = (196.0, 152.0, 160.0)
# Secondary granules give normal cytoplasm its pink-lilac tint; without them it is a
# paler, greyer blue-lilac (the hypogranular look).
_CYTOPLASM = (220.0, 182.0, 184.0)
_CYTOPLASM_AGRANULAR = (222.0, 204.0, 214.0)
_GRANULE = (205.0, 160.0, 180.0)
_GRANULE_DARK = (175.0, 100.0, 160.0)
# Deep violet at unit chromatin density (the bulk of a real nucleus sits near Lab
# (25, 42, -47)); stains vary towards bluer or redder per capture.
_NUCLEUS = (94.0, 42.0, 146.0)
_DOHLE = (190.0, 196.0, 214.0)
_PLATELET = (150.0, 100.0, 175.0)


def _od(rgb) -> np.ndarray:
    return (-np.log(np.asarray(rgb, dtype=np.float64) / _BACKGROUND)).astype(np.float32)


OD_RED_CELL = _od(_RED_CELL)
OD_CYTOPLASM = _od(_CYTOPLASM)
OD_CYTOPLASM_AGRANULAR = _od(_CYTOPLASM_AGRANULAR)
OD_GRANULE = _od(_GRANULE)
OD_GRANULE_DARK = _od(_GRANULE_DARK)
OD_NUCLEUS = _od(_NUCLEUS)
OD_DOHLE = _od(_DOHLE)
OD_PLATELET = _od(_PLATELET)
#: Direction (unit optical density per channel) in which chromatin and granule texture
#: varies in real captures: almost only green is absorbed (a magenta variation); the
#: blue channel of a real nucleus hardly follows its texture (fitted on the tuning cells
#: as the first principal component of fine-scale optical-density residuals).
OD_TEXTURE = np.array([0.28, 0.96, 0.04], np.float32)


@dataclass(frozen=True)
class CaptureModel:
    """How one generator version stains and captures a cell (see docs/REALISM.md).

    Generator 2.0 matched mean colours; 3.0 also matches how real captures vary: texture
    along :data:`OD_TEXTURE`, stain-dependent fine colour grain, axial chromatic
    aberration (red and blue softer than green, a wide blue halo), and per-capture
    part colours drawn from statistics of real captures (``capture_stats.json``). 3.1 also
    matches the real red-cell profile (crisp outline, density ramping up inwards, mottled,
    no flat plateau), camera noise (less fine noise, blotchy chroma noise, red-cell grain),
    stronger chromatic blur with some glare, a paler zone around the nucleus, finer
    chromatin and pale specks between granules; its extra draws use their own random
    stream, so geometry and masks stay those of 2.0 (``capture_stats_3.1.json``). 3.2 gives
    red cells the size and the broad, strong, capture-dependent central pallor of real
    ones (drawn from a stream of their own), fuller nuclei (the same lobes and filaments,
    lobes 10 % wider: real nuclei cover more of the image), floors the darkest chromatin
    at the L* real captures show and draws more bright specks between the granules
    (``capture_stats_3.2.json``). 3.3 is 3.2 whose cytoplasm carries the pixel-scale
    texture of real captures: residual patches of the tuning real cells
    (:mod:`core.synth.texture`, ``data/synth/texture_bank.npz``), laid before the JPEG step.
    """

    version: str
    background: tuple = (255.0, 230.0, 203.0)
    stain_hue_scale: float = 1.0
    texture_mix: float = 0.0          # share of nucleus/granule texture along OD_TEXTURE
    nucleus_texture_gain: float = 1.0
    optics: tuple = (0.6, 0.6, 0.6)   # Gaussian blur per channel (R, G, B), pixels
    blue_halo: tuple = (0.0, 0.0)     # share of blue light spread, and its width (pixels)
    noise: tuple = (2.6, 2.4, 5.5)    # sensor noise per channel before demosaic smoothing
    noise_spread: float = 0.0         # log-normal spread of the noise level between captures
    noise_sigma: float = 0.45         # spatial correlation of the sensor noise (demosaicing), pixels
    noise_coarse: tuple = (0.0, 0.0, 0.0)  # a second, blotchy noise per channel (before smoothing)
    noise_coarse_sigma: float = 2.0
    granule_bright: float = 0.0       # share of fine granule texture drawn as pale specks
    red_cell_pallor: tuple = (0.5, 0.9)  # range of the capture's central pallor of red cells
    red_cell_edge: tuple = (2.2, 4.5)    # range of the capture's red-cell edge softness, pixels
    red_cell_rim: float = 0.08           # extra density of a red cell's rim
    red_cell_density: tuple = (0.75, 1.2)  # range of one red cell's density (relative)
    red_cell_pallor_soft: tuple = (0.09, 0.16)  # range of the pallor edge's softness (share of radius)
    red_cell_ramp: tuple = (1.0, 0.0)    # red-cell density at its outline (share) and inward ramp, pixels
    nucleus_coarse: float = 0.0       # extra coarse (3 px) chromatin density variation
    glare: tuple = (0.0, 0.0)         # share of all light spread, and its width (pixels)
    red_cell_grain: float = 0.0       # colour grain of red cells (stain density per unit red-cell density)
    red_cell_texture: tuple = (0.0, 1.5)  # relative amplitude and scale (px) of red-cell mottling
    shading: float = 0.015            # illumination tilt and vignette (relative)
    nucleus_edge: float = 0.9         # width of the nucleus' soft edge, pixels
    nucleus_windows: float = 1.4      # threshold (in SDs of a smooth noise) above which chromatin has a pale window
    perinuclear: tuple = (0.0, 3.0)   # share of cytoplasm density missing next to the nucleus, decay (px)
    grain: tuple = (0.0, 0.0, 0.0)    # colour grain per channel at unit stain density
    grain_sigma: float = 0.8
    part_statistics: bool = False     # draw per-capture part colours from ``stats_file``
    stats_file: str = "capture_stats.json"
    # Generator 3.2 (all off before): red cells of their own stream, larger, fewer, with a broad pale
    # centre; fuller nuclei whose darkest chromatin saturates.
    red_cell_stream: bool = False     # red cells drawn from a stream of their own (the main one skips them)
    red_cell_scale: float = 1.0       # red-cell radius, relative to 2.0's
    red_cell_count: float = 1.0       # how many red cells are sought, relative to 2.0's
    red_cell_pallor_width: tuple = (0.4, 0.62)  # range of the pallor's radius (share of the cell's)
    dark_floor: tuple = (0.0, 1.0)   # L* below which the darkest chromatin saturates, and how softly
    nucleus_thick: float = 1.0        # width of lobes, bands and rings, relative to 2.0's (filaments kept)
    # Generator 3.3 (off before): the fine texture of each part replaced by residual patches of real
    # captures (core.synth.texture, data/synth/texture_bank.npz), times this gain per part
    # (background, red cells, cytoplasm, nucleus); 0 leaves a part's texture alone.
    texture_transplant: tuple = (0.0, 0.0, 0.0, 0.0)
    texture_fade: float = 2.0         # pixels from a part's edge over which the transplant fades in
    # Edge knobs (off in every version): the variants of docs/REALISM.md, "Edges between parts
    # (fifth round)", kept so that they can be rerun; none made the two-sample test weaker,
    # so no generator version uses them.
    cell_wobble: tuple = (1.0, 1.0)   # neutrophil outline: scale of its harmonics and of its fine noise
    red_cell_wobble: float = 1.0      # red-cell outline: scale of its low harmonics
    red_cell_rough: tuple = (0.0, 64)  # red-cell outline roughness: px per harmonic at k = 12 (~k^-0.8), highest k
    nucleus_rim: tuple = (0.55, 0.0, 2.2)  # nucleus rim density, depth of its peak inside (px; 0: at the edge), width
    cell_rim: tuple = (0.0, 4.5, 2.0)      # purple band inside the neutrophil outline: density, depth, width (px)
    cell_skirt: tuple = (0.0, 3.0)    # share of cytoplasm coverage fading out beyond the outline, and its decay (px)
    glare_outside: float | None = None  # glare share away from the neutrophil (None: ``glare`` everywhere)
    optics_spread: float = 0.0        # log-normal spread of the optics blur between captures
    # Generator 4.0: the cell is drawn into a real capture (core.synth.canvas): background, red
    # cells and outline are the capture's; the nucleus keeps this many pixels inside the outline,
    # and the capture's own pixels are kept in a band this deep inside it, fading out over the next.
    canvas: bool = False
    chromatin_fine: float = 0.04      # amplitude of the fine (1.2 px) chromatin grain, in units of density
    nucleus_tone: bool = False        # map the nucleus' densities through the fitted tone curve (4.0)
    granule_counts: tuple = (1400.0, 110.0)  # fine and dark granules in 12,000 px of cytoplasm at unit density
    cytoplasm_mottle: float = 0.05    # relative amplitude of the cytoplasm's 5 px mottling
    canvas_band: tuple = (1.5, 2.5)
    nucleus_margin: float = 4.0


CAPTURE_MODELS = {
    "2.0": CaptureModel("2.0"),
    "3.0": CaptureModel("3.0", background=(255.0, 230.0, 206.0), stain_hue_scale=0.7, texture_mix=0.85,
                        nucleus_texture_gain=1.3, optics=(0.8, 0.6, 1.0), blue_halo=(0.35, 5.0),
                        noise=(3.2, 3.8, 4.2), noise_spread=0.12,
                        grain=(6.0, 6.0, 8.0), grain_sigma=0.8,
                        part_statistics=True),
}
CAPTURE_MODELS["3.1"] = dataclasses.replace(
    CAPTURE_MODELS["3.0"], version="3.1", optics=(1.3, 0.45, 1.4), glare=(0.15, 3.0), shading=0.012,
    noise=(2.5, 3.1, 3.6), noise_spread=0.25, noise_coarse=(4.0, 6.0, 10.0), noise_coarse_sigma=3.0,
    nucleus_texture_gain=1.5, nucleus_coarse=0.1, nucleus_edge=2.5, nucleus_windows=1.0, perinuclear=(0.5, 4.5),
    granule_bright=0.6,
    red_cell_edge=(1.5, 3.0), red_cell_pallor=(0.3, 0.7), red_cell_pallor_soft=(0.2, 0.32),
    red_cell_density=(0.55, 1.45), red_cell_rim=0.0, red_cell_ramp=(0.4, 7.0), red_cell_texture=(0.08, 2.0),
    red_cell_grain=0.02, stats_file="capture_stats_3.1.json")
CAPTURE_MODELS["3.2"] = dataclasses.replace(
    CAPTURE_MODELS["3.1"], version="3.2", red_cell_stream=True, red_cell_scale=1.1, red_cell_count=0.85,
    red_cell_pallor=(0.35, 0.9), red_cell_pallor_width=(0.3, 0.45), red_cell_pallor_soft=(0.09, 0.15),
    red_cell_texture=(0.12, 2.5), red_cell_grain=0.035, dark_floor=(17.5, 1.5), nucleus_thick=1.1, nucleus_edge=2.0,
    granule_bright=0.9, stats_file="capture_stats_3.2.json")
# 3.3: the cytoplasm's pixel-scale texture comes from real captures. Background, red cells and
# nucleus keep 3.2's own: transplanting theirs made the two-sample test better at telling
# (docs/REALISM.md, "Generator 3.2 -> 3.3"); the bank holds them for such experiments.
CAPTURE_MODELS["3.3"] = dataclasses.replace(
    CAPTURE_MODELS["3.2"], version="3.3", texture_transplant=(0.0, 0.0, 1.0, 0.0), texture_fade=6.0)
# 4.0: 3.3's neutrophil (stain, texture, chromatin, granules) drawn into a real capture; the part
# statistics, red cells, platelets and illumination of the drawn capture are not used.
CAPTURE_MODELS["4.0"] = dataclasses.replace(CAPTURE_MODELS["3.3"], version="4.0", canvas=True, part_statistics=False,
                                             nucleus_thick=0.95, texture_mix=0.5, nucleus_tone=True)


@dataclass(frozen=True)
class SyntheticCell:
    """One rendered cell: the JPEG bytes, their decoded pixels and the ground truth.

    Masks are ``(363, 360) bool`` arrays in image pixels; ``cytoplasm`` is ``cell``
    minus ``nucleus``; ``granules`` marks granule pixels inside the cytoplasm.
    """

    features: CellFeatures
    jpeg: bytes
    rgb: np.ndarray
    cell: np.ndarray
    nucleus: np.ndarray
    cytoplasm: np.ndarray
    granules: np.ndarray
    granule_count: int
    centre: tuple[float, float]
    version: str = GENERATOR_VERSION
    canvas: dict | None = None    # generator 4.0: which real capture, mirrored or not, its touching red cells

    def truth(self) -> dict:
        """Latent features, class and measured geometry, JSON-ready."""
        d = self.features.to_dict()
        d.update(
            granule_count=int(self.granule_count),
            centre_xy=[round(self.centre[1], 2), round(self.centre[0], 2)],
            cell_area_px=int(self.cell.sum()),
            nucleus_area_px=int(self.nucleus.sum()),
            cell_area_fraction=round(float(self.cell.mean()), 4),
            image_size=[IMAGE_SHAPE[1], IMAGE_SHAPE[0]],
        )
        if self.canvas:
            d.update(self.canvas)
        return d


class _Box:
    """A clipped square window of the image with local pixel-centre coordinates."""

    def __init__(self, cy: float, cx: float, half: float, shape=IMAGE_SHAPE):
        h, w = self.image_shape = shape
        self.y0 = max(int(np.floor(cy - half)), 0)
        self.y1 = min(int(np.ceil(cy + half)) + 1, h)
        self.x0 = max(int(np.floor(cx - half)), 0)
        self.x1 = min(int(np.ceil(cx + half)) + 1, w)
        self.empty = self.y1 <= self.y0 or self.x1 <= self.x0
        self.yy = np.arange(self.y0, self.y1, dtype=np.float32)[:, None]
        self.xx = np.arange(self.x0, self.x1, dtype=np.float32)[None, :]

    @property
    def slices(self):
        return slice(self.y0, self.y1), slice(self.x0, self.x1)

    @property
    def shape(self):
        return self.y1 - self.y0, self.x1 - self.x0

    def full(self, mask: np.ndarray) -> np.ndarray:
        """A box-sized mask placed into an all-false image-sized one."""
        out = np.zeros(self.image_shape, dtype=bool)
        out[self.slices] = mask
        return out


def _smooth_noise(rng: np.random.Generator, shape, sigma: float) -> np.ndarray:
    """Band-limited Gaussian noise with zero mean and unit standard deviation."""
    n = ndimage.gaussian_filter(rng.standard_normal(shape).astype(np.float32), sigma, mode="wrap")
    n -= n.mean()
    return n / max(float(n.std()), 1e-6)


def _wobbly_radius(rng, dy, dx, radius, amplitude, harmonics):
    """A radius that wobbles with the angle of (dy, dx): low harmonics of random phase."""
    # cos(k theta + phase) = Re(z^k e^{i phase}) with z = e^{i theta} = (dx + i dy) / r:
    # complex powers are much cheaper than a cosine per harmonic.
    dy, dx = np.broadcast_arrays(np.asarray(dy, np.float32), np.asarray(dx, np.float32))
    z = (dx + 1j * dy).astype(np.complex64)
    z /= np.maximum(np.abs(z), np.float32(1e-6))
    zk = z
    r = np.ones(z.shape, dtype=np.float32)
    for k in range(2, 2 + harmonics):
        zk = zk * z
        coef = (amplitude / k) * rng.uniform(0.3, 1.0) * np.exp(1j * rng.uniform(0, 2 * np.pi))
        r += (zk * np.complex64(coef)).real
    return radius * r


def _soft(d, width: float = 1.0):
    """Coverage of a signed distance (negative inside) with an edge ``width`` pixels wide."""
    return np.clip(0.5 - d / width, 0.0, 1.0)


def _ellipse_sdf(yy, xx, cy, cx, a, b, angle):
    c, s = np.cos(angle), np.sin(angle)
    u = (xx - cx) * c + (yy - cy) * s
    v = -(xx - cx) * s + (yy - cy) * c
    return (np.sqrt((u / a) ** 2 + (v / b) ** 2) - 1.0) * min(a, b)


def _polyline_sdf(yy, xx, points, widths):
    """Distance to a polyline minus its local half-width (capsules with tapered widths)."""
    pts = np.asarray(points, dtype=np.float32)
    w = np.asarray(widths, dtype=np.float32)
    best = None
    for i in range(len(pts) - 1):
        (y0, x0), (y1, x1) = pts[i], pts[i + 1]
        dy, dx = y1 - y0, x1 - x0
        seg2 = max(dy * dy + dx * dx, 1e-6)
        t = np.clip(((yy - y0) * dy + (xx - x0) * dx) / seg2, 0.0, 1.0)
        dist = np.hypot(yy - (y0 + t * dy), xx - (x0 + t * dx)) - (w[i] + t * (w[i + 1] - w[i]))
        best = dist if best is None else np.minimum(best, dist)
    return best


def _curved_path(rng, cy, cx, length, curvature, twist, n):
    """``n`` points along a path of ``length`` pixels whose heading turns at rate
    ``curvature + twist * (s - 1/2)`` (radians per path length): C shapes when
    ``twist`` is 0, S shapes when it dominates. Centred on (cy, cx)."""
    s = np.linspace(0.0, 1.0, n)
    heading = rng.uniform(0, 2 * np.pi) + curvature * s + 0.5 * twist * (s * s - s)
    step = length / (n - 1)
    y = np.concatenate([[0.0], np.cumsum(np.sin(heading[:-1]) * step)])
    x = np.concatenate([[0.0], np.cumsum(np.cos(heading[:-1]) * step)])
    return np.stack([y - y.mean() + cy, x - x.mean() + cx], axis=1)


def _lobe_widths(rng, n, lobes, width, filament):
    """Half-widths along a path split into ``lobes`` rounded lobes joined by filaments."""
    s = np.linspace(0.0, 1.0, n)
    if lobes <= 1:
        # A band: near-constant width with gentle constrictions, rounded ends.
        w = width * (1.0 + 0.12 * np.sin(2 * np.pi * rng.uniform(1.0, 2.5) * s + rng.uniform(0, 6.3)))
        return np.maximum(w * np.clip(np.sin(np.pi * s) * 3.0, 0.35, 1.0), 1.0)
    # Lobes of unequal length; a short gap between them is only a filament.
    sizes = rng.uniform(0.7, 1.3, lobes)
    gap = rng.uniform(0.04, 0.08)
    edges = np.concatenate([[0.0], np.cumsum(sizes / sizes.sum() * (1.0 - gap * (lobes - 1)))])
    w = np.full(n, float(filament))
    for k in range(lobes):
        a = edges[k] + gap * k
        b = edges[k + 1] + gap * k
        u = np.clip((s - a) / max(b - a, 1e-6), 0.0, 1.0)
        inside = (s >= a) & (s <= b)
        lobe_w = width * rng.uniform(0.85, 1.15) * np.sqrt(np.clip(np.sin(np.pi * u), 0.0, 1.0))
        w = np.where(inside, np.maximum(w, lobe_w), w)
    return w


def _nucleus_components(f: CellFeatures, rng, cy, cx, R, thick: float = 1.0):
    """Signed-distance callables ``(yy, xx) -> d`` whose union (minimum) is the nucleus.

    ``thick`` scales the width of lobes, bands and rings (not the filaments between lobes,
    nor where lobes sit): the same nucleus, fuller.
    """
    s = f.nucleus_scale
    parts = []
    anchors = []   # (y, x, half-width) of lobes, for a drumstick
    shape = f.nucleus_shape
    ocy = cy + rng.uniform(-0.08, 0.08) * R
    ocx = cx + rng.uniform(-0.08, 0.08) * R
    n = 36
    if shape in ("segmented", "hypersegmented", "band"):
        k = f.lobe_count if shape != "band" else 1
        width = R * s * (rng.uniform(0.27, 0.33) if k <= 1 else rng.uniform(0.28, 0.34) if k <= 5
                         else rng.uniform(0.21, 0.25))
        length = R * s * (rng.uniform(1.8, 2.5) if k <= 1 else {2: 1.6, 3: 2.2, 4: 2.6, 5: 3.0}.get(k, 3.6)
                          * rng.uniform(0.85, 1.1))
        # Curl the chain so it fits inside the cell: longer chains turn more.
        curvature = rng.choice([-1, 1]) * rng.uniform(2.2, 3.6) * (length / (2.3 * R)) ** 0.7
        twist = rng.choice([0.0, rng.uniform(-7.0, 7.0)], p=[0.6, 0.4])
        pts = _curved_path(rng, ocy, ocx, length, curvature, twist, n)
        pts = pts + rng.normal(0, 0.012 * R, pts.shape)
        widths = _lobe_widths(rng, n, k, width * thick, rng.uniform(0.9, 1.6))
        parts.append(lambda yy, xx, p=pts, w=widths: _polyline_sdf(yy, xx, p, w))
        anchors += [(pts[i][0], pts[i][1], widths[i]) for i in (3, n - 4)]
    elif shape == "dumbbell":
        # Pseudo-Pelger-Huet: two round, dense lobes joined by a thin bridge (spectacles).
        rot = rng.uniform(0, 2 * np.pi)
        a = R * s * rng.uniform(0.30, 0.36)
        half = a * rng.uniform(1.2, 1.6)
        dy, dx = np.sin(rot) * half, np.cos(rot) * half
        ends = [(ocy - dy, ocx - dx), (ocy + dy, ocx + dx)]
        for ly, lx in ends:
            b = a * rng.uniform(0.8, 0.98)
            ang = rot + rng.uniform(-0.5, 0.5)
            parts.append(lambda yy, xx, ly=ly, lx=lx, a=a * thick, b=b * thick, ang=ang:
                         _ellipse_sdf(yy, xx, ly, lx, a, b, ang))
            anchors.append((ly, lx, a))
        bridge = rng.uniform(1.2, 3.5)
        parts.append(lambda yy, xx, c=ends, w=bridge: _polyline_sdf(yy, xx, c, [w, w]))
    elif shape == "round":
        # Unsegmented, round to oval (non-lobulated Pelger form).
        rot = rng.uniform(0, 2 * np.pi)
        a = R * s * rng.uniform(0.45, 0.53)
        b = a * rng.uniform(0.75, 0.92)
        parts.append(lambda yy, xx: _ellipse_sdf(yy, xx, ocy, ocx, a * thick, b * thick, rot))
        anchors.append((ocy, ocx, a))
    else:
        # Ring-like: a band curled into an almost closed, uneven loop (never a perfect
        # doughnut): the ends nearly meet or overlap, the width varies along it.
        length = R * s * rng.uniform(2.6, 3.2)
        curvature = rng.choice([-1, 1]) * rng.uniform(4.9, 5.8)
        pts = _curved_path(rng, ocy, ocx, length, curvature, rng.uniform(-2.0, 2.0), n)
        pts = pts + rng.normal(0, 0.015 * R, pts.shape)
        w = R * s * rng.uniform(0.13, 0.18) * (1.0 + 0.3 * _smooth_noise(rng, (n,), 3.0))
        widths = np.maximum(w * thick, 1.2)
        parts.append(lambda yy, xx, p=pts, ww=widths: _polyline_sdf(yy, xx, p, ww))
        anchors.append((pts[0][0], pts[0][1], widths[0]))
    if f.drumstick:
        # Drumstick appendage: a small round head on a thin stalk, pointing outwards.
        # The head sits clear of the nucleus and inside the cell: of a few candidate
        # directions from a lobe, the one leaving the head farthest from the nucleus.
        ly, lx, a = anchors[int(rng.integers(len(anchors)))]
        head_r = rng.uniform(3.5, 4.8)
        reach = a + rng.uniform(8.0, 12.0)
        best = None
        for direction in rng.uniform(0, 2 * np.pi, 12):
            hy, hx = ly + reach * np.sin(direction), lx + reach * np.cos(direction)
            d_cell = np.hypot(hy - cy, hx - cx)
            if d_cell > 0.86 * R - head_r:
                k = (0.86 * R - head_r) / d_cell
                hy, hx = cy + (hy - cy) * k, cx + (hx - cx) * k
            py, px = np.float32([[hy]]), np.float32([[hx]])
            clear = float(min(part(py, px)[0, 0] for part in parts))
            if best is None or clear > best[0]:
                best = (clear, hy, hx)
        _, hy, hx = best
        parts.append(lambda yy, xx: np.hypot(yy - hy, xx - hx) - head_r)
        parts.append(lambda yy, xx: _polyline_sdf(yy, xx, [(ly, lx), (hy, hx)], [0.8, 0.8]))
    return parts


def _draw_red_cell(field, rng, cy, cx, r, pallor=None, edge=2.6, rim=0.08, density_range=(0.75, 1.2),
                   pallor_soft=(0.09, 0.16), ramp=(1.0, 0.0), texture=(0.0, 1.5), texture_rng=None,
                   pallor_width=(0.4, 0.62), wobble=1.0, rough=(0.0, 64), rough_rng=None):
    """Add one opaque biconcave red cell to the red-cell density ``field`` (max-combined)."""
    box = _Box(cy, cx, r * 1.22 + 4)
    if box.empty:
        return
    dy, dx = box.yy - cy, box.xx - cx
    # Slightly oval and deformed, not a perfect circle.
    ang = rng.uniform(0, np.pi)
    e = rng.uniform(0.0, 0.12)
    u = dx * np.cos(ang) + dy * np.sin(ang)
    v = -dx * np.sin(ang) + dy * np.cos(ang)
    rr = np.hypot(u * (1 - e / 2), v * (1 + e / 2))
    rb = _wobbly_radius(rng, v, u, r, 0.10 * wobble, 4)
    if rough[0]:
        rb = rb + _rough_outline(rough_rng, u, v, rough[0], (6, rough[1]))
    alpha = _soft(rr - rb, edge)
    rn = rr / rb
    # Biconcave disc: pale centre, denser towards the rim.
    # The central pallor has a fairly distinct edge (a flat pale centre, not a dome).
    pallor = rng.uniform(0.3, 0.85) if pallor is None else pallor * rng.uniform(0.85, 1.15)
    width = rng.uniform(*pallor_width)
    centre = 1.0 / (1.0 + np.exp((rn - width) / rng.uniform(*pallor_soft)))
    profile = 1.0 - pallor * centre + rim * np.exp(-(((rn - 0.85) / 0.12) ** 2))
    if ramp[0] < 1.0:
        # A thin edge that thickens inwards over ``ramp[1]`` pixels (real red cells darken
        # gradually from a crisp outline instead of reaching full density at once).
        profile = profile * (ramp[0] + (1.0 - ramp[0]) * (1.0 - np.exp(-np.clip(rb - rr, 0, None) / ramp[1])))
    density = alpha * profile * rng.uniform(*density_range)
    if texture[0]:
        # A faint mottling: real red cells have no flat plateau at the pixel scale.
        density = density * (1.0 + texture[0] * _smooth_noise(rng if texture_rng is None else texture_rng, density.shape, texture[1]))
    field[box.slices] = np.maximum(field[box.slices], density)


#: Scalar draws :func:`_draw_red_cell` takes from its stream per drawn cell (orientation,
#: ellipticity, four harmonics of the outline, pallor, pallor width and softness, density).
_RED_CELL_DRAWS = 14


def _rough_outline(rng, u, v, amplitude, harmonics=(6, 64)):
    """Fine irregularity of an outline (pixels) at the angle of (v, u): harmonics ``k`` of
    random phase, amplitude ``amplitude * (12 / k) ** 0.8`` (real red-cell outlines)."""
    z = (u + 1j * v).astype(np.complex64)
    z /= np.maximum(np.abs(z), np.float32(1e-6))
    k0, k1 = harmonics
    ks = np.arange(k0, k1 + 1)
    coef = amplitude * (12.0 / ks) ** 0.8 * (rng.standard_normal(ks.size) + 1j * rng.standard_normal(ks.size)) / np.sqrt(2)
    zk = z ** k0
    out = np.zeros(z.shape, np.float32)
    for c in coef:
        out += (zk * np.complex64(c)).real
        zk = zk * z
    return out


def _draw_platelet(od, rng, cy, cx):
    r = rng.uniform(3.0, 6.0)
    box = _Box(cy, cx, r + 4)
    if box.empty:
        return
    dy, dx = box.yy - cy, box.xx - cx
    rb = _wobbly_radius(rng, dy, dx, r, 0.35, 3)
    alpha = _soft(np.hypot(dy, dx) - rb, 1.5)
    grain = 0.6 + 0.5 * ndimage.gaussian_filter(rng.random(box.shape).astype(np.float32), 0.7)
    od[box.slices] += (alpha * grain * rng.uniform(0.6, 1.0))[..., None] * OD_PLATELET


def _place_red_cells(rng, f: CellFeatures, cy, cx, R, scale: float = 1.0, count: float = 1.0):
    """Centres and radii of red cells: packed, touching, a few against the neutrophil.
    ``scale`` multiplies their radius, ``count`` the number sought besides those against it."""
    H, W = IMAGE_SHAPE
    rbc_r = rng.uniform(31, 37) * scale
    placed: list[tuple[float, float, float]] = []
    for _ in range(f.rbc_overlap):
        r = rbc_r * rng.uniform(0.9, 1.1)
        ang = rng.uniform(0, 2 * np.pi)
        dist = R + r * rng.uniform(0.55, 0.95)
        placed.append((cy + dist * np.sin(ang), cx + dist * np.cos(ang), r))
    # Packing: the smear's density sets how close neighbours may come (touching or a
    # little overlapping when dense, gaps when thin).
    closeness = rng.uniform(0.84, 1.0)
    target = f.rbc_overlap + int(round(f.rbc_count * count))
    # Candidates drawn in one batch, accepted in order (same result as one at a time).
    n_try = 60 * (f.rbc_count + 1)
    radii = rbc_r * rng.uniform(0.88, 1.12, n_try)
    ys = rng.uniform(0, 1, n_try) * (H + 1.2 * radii) - 0.6 * radii
    xs = rng.uniform(0, 1, n_try) * (W + 1.2 * radii) - 0.6 * radii
    free = np.hypot(ys - cy, xs - cx) >= R + radii * 0.92
    py = np.array([p[0] for p in placed] + [0.0] * target)
    px = np.array([p[1] for p in placed] + [0.0] * target)
    pr = np.array([p[2] for p in placed] + [0.0] * target)
    n = len(placed)
    for y, x, r in zip(ys[free], xs[free], radii[free]):
        if n >= target:
            break
        if n and (np.hypot(y - py[:n], x - px[:n]) < (r + pr[:n]) * closeness).any():
            continue
        py[n], px[n], pr[n] = y, x, r
        n += 1
    return list(zip(py[:n].tolist(), px[:n].tolist(), pr[:n].tolist()))


def capture_model(version: str) -> CaptureModel:
    """The :class:`CaptureModel` of generator ``version``; a one-line error if unknown."""
    from core.errors import DisplasiaError

    try:
        return CAPTURE_MODELS[str(version)]
    except KeyError:
        raise DisplasiaError(f"unknown generator version {version!r}: choose one of "
                             f"{', '.join(CAPTURE_MODELS)}") from None


def _texture_od(od_mean: np.ndarray, cm: CaptureModel) -> np.ndarray:
    """Optical density along which a stained object's texture varies (same strength)."""
    return (1.0 - cm.texture_mix) * od_mean + cm.texture_mix * OD_TEXTURE * float(np.linalg.norm(od_mean))


#: Parts of a capture in the order of ``capture_stats.json`` (each: L*, a*, b* means,
#: then L*, a*, b* standard deviations).
STAT_PARTS = ("background", "red_cells", "cytoplasm", "nucleus")
_STATS_DIR = Path(__file__).parent


def stats_path(name: str = "capture_stats.json") -> Path:
    """Where the part statistics file ``name`` of a capture model lives."""
    return _STATS_DIR / name


@lru_cache(maxsize=4)
def capture_statistics(name: str = "capture_stats.json") -> dict:
    """Per-capture part statistics of real captures and of uncalibrated synthetic ones.

    Derived numbers only (no pixels): the mean of 24 per-capture values (per part Lab
    mean and SD) over the 150 tuning real cells, square roots of their covariance, and
    the same means for synthetic cells before calibration (see the file's ``note``).
    """
    d = json.loads(stats_path(name).read_text(encoding="utf-8"))
    return {k: np.asarray(v, np.float64) if isinstance(v, list) else v for k, v in d.items()}


def _part_statistics(img, rng, weights, stats_file="capture_stats.json", dark_floor=(0.0, 1.0)):
    """Move each part of the capture to per-part Lab colours drawn for this capture.

    ``weights`` are soft coverages of background, red cells, cytoplasm and nucleus.
    Background and red cells are properties of the capture (illumination, smear): their
    own mean is replaced by a draw from the real captures' spread. The neutrophil is only
    shifted and its texture scaled, by a draw from the spread the generator lacks, so
    class differences (paler agranular cytoplasm, lighter heterogeneous chromatin) stay.
    """
    from skimage.color import lab2rgb, rgb2lab

    st = capture_statistics(stats_file)
    d_full = st["real_chol"] @ rng.standard_normal(len(st["real_mean"]))
    d_residual = st["residual_chol"] @ rng.standard_normal(len(st["real_mean"]))
    lab = rgb2lab(np.clip(img / 255.0, 0, 1)).astype(np.float32)
    out = np.zeros_like(lab)
    for k, w in enumerate(weights):
        part = slice(6 * k, 6 * k + 6)
        real, ref, bias = st["real_mean"][part], st["synthetic_mean"][part], st["bias"][part]
        if k < 2:
            d = d_full[part]
            core_w = w * (w > 0.5)
            centre = (lab * core_w[..., None]).sum((0, 1)) / max(float(core_w.sum()), 1.0)
        else:
            d, centre = d_residual[part], ref[:3]
        # The background's spread is noise and shading, drawn by the camera model.
        scale = np.ones(3) if k == 0 else np.clip((real[3:] + d[3:]) / ref[3:], 0.5, 2.0)
        out += w[..., None] * ((lab - centre) * scale + real[:3] + d[:3] + bias[:3]).astype(np.float32)
    floor, softness = dark_floor
    if floor:
        # The darkest chromatin of real captures sits at about the same L* in every capture
        # (2nd percentile of nucleus L* 18-20 in 80 % of the tuning cells, however dark the
        # nucleus is overall); a stain shifted darker would otherwise reach near-black.
        out[..., 0] = floor + softness * np.logaddexp(0.0, (out[..., 0] - floor) / softness)
    return (lab2rgb(out) * 255.0).astype(np.float32)


def _capture(img: np.ndarray, rng: np.random.Generator, f: CellFeatures, cm: CaptureModel,
             stain: np.ndarray, extra: np.random.Generator | None = None, texture=None,
             cell_weight: np.ndarray | None = None) -> np.ndarray:
    """The camera: optics blur, sensor noise and colour grain, quantisation to 8 bits.

    ``stain`` is the neutrophil's mean optical density per pixel: the fine colour grain
    of real captures grows with it (about its square root) and is absent from red cells.
    ``texture``, if given, maps the captured image to another before quantisation.
    ``cell_weight`` (the neutrophil's coverage) is where ``cm.glare_outside`` does not apply.
    """
    if len(set(cm.optics)) == 1:
        # Optics: every capture is slightly soft; focus blur adds to it.
        sigma = float(np.hypot(cm.optics[0], f.blur_sigma))
        img = ndimage.gaussian_filter(img, (sigma, sigma, 0))
    elif cm.optics_spread:
        # Real edges vary more in sharpness between captures (red-cell rise interquartile
        # range 0.9 px real, 0.45 in 3.2): the optics' blur scaled per capture, from a stream
        # of its own. Green's blur is small, so this varies mostly the red and blue fringes.
        k = float(np.random.default_rng([f.seed, 35]).lognormal(0.0, cm.optics_spread))
        img = np.stack([ndimage.gaussian_filter(img[..., c], float(np.hypot(cm.optics[c] * k, f.blur_sigma)))
                        for c in range(3)], axis=-1)
    else:
        # Axial chromatic aberration: focused for green, red and blue softer.
        img = np.stack([ndimage.gaussian_filter(img[..., c], float(np.hypot(cm.optics[c], f.blur_sigma)))
                        for c in range(3)], axis=-1)
    if cm.glare[0]:
        # Veiling glare: a share of the light of every channel spreads a few pixels, giving
        # edges a soft tail outside a crisp core.
        if cm.glare_outside is None or cell_weight is None:
            img = (1.0 - cm.glare[0]) * img + cm.glare[0] * ndimage.gaussian_filter(img, (cm.glare[1], cm.glare[1], 0))
        else:
            # Real captures (docs/REALISM.md, "Edges between parts"): red cells meet the
            # background with no glare tail; the neutrophil's outline keeps a soft one.
            near = np.clip(ndimage.gaussian_filter(cell_weight, cm.glare[1]) * 2.0, 0.0, 1.0)[..., None]
            share = cm.glare_outside + (cm.glare[0] - cm.glare_outside) * near
            img = (1.0 - share) * img + share * ndimage.gaussian_filter(img, (cm.glare[1], cm.glare[1], 0))
    share, width = cm.blue_halo
    if share:
        # Out-of-focus blue spreads several pixels wide: real captures show a yellowish
        # fringe (b* up by about 2) in the background next to every object.
        img[..., 2] = (1.0 - share) * img[..., 2] + share * ndimage.gaussian_filter(img[..., 2], width)
    # Sensor noise, spatially correlated by demosaicing.
    level = np.array(cm.noise, np.float32)
    if cm.noise_spread:
        level = level * np.float32(rng.lognormal(0.0, cm.noise_spread))
    noise = rng.normal(0.0, 1.0, img.shape).astype(np.float32) * level
    img += ndimage.gaussian_filter(noise, (cm.noise_sigma, cm.noise_sigma, 0))
    if any(cm.noise_coarse):
        # Real captures also carry blotchy, mostly chromatic noise a few pixels wide
        # (lag-2 correlation of background noise 0.25 real, 0.11 with fine noise alone).
        coarse = (rng if extra is None else extra).normal(0.0, 1.0, img.shape).astype(np.float32) * (level / np.array(cm.noise, np.float32)
                                                                        * np.array(cm.noise_coarse, np.float32))
        img += ndimage.gaussian_filter(coarse, (cm.noise_coarse_sigma, cm.noise_coarse_sigma, 0))
    if any(cm.grain):
        # Colour grain of the stain: independent per channel (real nuclei: residual
        # correlation of red and blue 0.3, synthetic single-stain texture 0.8).
        amount = np.sqrt(np.clip(ndimage.gaussian_filter(stain, 1.0), 0, None))
        grain = ndimage.gaussian_filter(rng.normal(0, 1, img.shape).astype(np.float32),
                                        (cm.grain_sigma, cm.grain_sigma, 0))
        grain /= max(float(grain.std()), 1e-6)
        img += grain * amount[..., None] * np.array(cm.grain, np.float32)
    if texture is not None:
        img = texture(img)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def _texture_transplant(weights, cm: CaptureModel, rng: np.random.Generator):
    """The camera's last step in generator 3.3: each part's fine texture swapped for
    residual patches of real captures (:mod:`core.synth.texture`), on the captured image."""
    from .texture import BANK_PARTS, load_texture_bank, transplant_texture

    bank = load_texture_bank()
    masks = {part: w > 0.5 for part, w, gain in zip(BANK_PARTS, weights, cm.texture_transplant) if gain}
    gains = dict(zip(BANK_PARTS, cm.texture_transplant))

    def texture(img):
        for part, mask in masks.items():
            img = transplant_texture(img, {part: mask}, rng, bank, gain=gains[part], fade=cm.texture_fade)
        return img

    return texture


def _write_jpeg(rgb8: np.ndarray, quality: int) -> tuple[bytes, np.ndarray]:
    """The JPEG bytes of ``rgb8`` and their decoded pixels (what a file reader sees)."""
    buf = io.BytesIO()
    # CellaVision DM96 writes baseline JPEG at quality 75 without chroma subsampling (4:4:4).
    Image.fromarray(rgb8, "RGB").save(buf, format="JPEG", quality=int(quality), subsampling=0)
    jpeg = buf.getvalue()
    return jpeg, np.asarray(Image.open(io.BytesIO(jpeg)).convert("RGB"))


def _neutrophil_od(f: CellFeatures, cm: CaptureModel, rng, extra, box: _Box, cy, cx, R,
                   cell_alpha, cell_d, cell_m, nucleus_clip=None):
    """The neutrophil's optical density inside ``box``: cytoplasm, granules, nucleus, Dohle bodies.

    Draws from ``rng`` and ``extra`` in the order every generator version has always used.
    ``nucleus_clip`` (signed distance, negative inside) keeps the nucleus inside a cell whose
    outline is not a circle (generator 4.0's real outlines). Returns ``(local, nucleus_layer,
    nuc_alpha, nuc_m, cyto_m, granule_mask, n_granules)``; ``nucleus_layer`` is the nucleus'
    own share of ``local``.
    """
    yy, xx = box.yy, box.xx
    boundary = _smooth_noise(rng, box.shape, 2.5) * 0.6
    nuc_d = None
    for part in _nucleus_components(f, rng, cy, cx, R, cm.nucleus_thick):
        d = part(yy, xx)
        nuc_d = d if nuc_d is None else np.minimum(nuc_d, d)
    nuc_d = nuc_d + boundary
    if nucleus_clip is not None:
        nuc_d = np.maximum(nuc_d, nucleus_clip)
    nuc_alpha = _soft(nuc_d, cm.nucleus_edge) * cell_alpha
    cyto_alpha = cell_alpha
    if cm.perinuclear[0]:
        # A paler zone in the cytoplasm around the nucleus (real cells: green up to +11
        # levels 1-3 px from the nucleus, fading over about 7 px).
        cyto_alpha = cell_alpha * (1.0 - cm.perinuclear[0] * np.exp(-np.clip(nuc_d, 0, None) / cm.perinuclear[1]))
    nuc_m = (nuc_d < 0) & cell_m
    cyto_m = cell_m & ~nuc_m

    # Stain: the hue slides between a bluer and a redder Giemsa, the intensity scales all.
    hue = f.stain_hue * cm.stain_hue_scale
    od_nucleus = OD_NUCLEUS * np.array([1.0 - 0.18 * hue, 1.0, 1.0 + 0.25 * hue], np.float32)
    intensity = f.stain_intensity

    local = np.zeros(box.shape + (3,), dtype=np.float32)
    cyto_tex = 1.0 + cm.cytoplasm_mottle * _smooth_noise(rng, box.shape, 5.0)
    tint = float(np.clip(f.granule_density, 0.0, 1.0))
    od_cytoplasm = tint * OD_CYTOPLASM + (1.0 - tint) * OD_CYTOPLASM_AGRANULAR
    local += (cyto_alpha * cyto_tex * intensity)[..., None] * od_cytoplasm
    if cm.cell_rim[0]:
        # Real cytoplasm is darker and more purple in a band a few pixels inside the outline.
        amount, depth, width = cm.cell_rim
        band = amount * np.exp(-(((-cell_d - depth) / width) ** 2)) * cell_alpha * (1.0 - _soft(nuc_d, cm.nucleus_edge))
        local += (band * intensity)[..., None] * OD_GRANULE_DARK

    # Chromatin: a dense network with small pale windows and thin pale clefts in every
    # nucleus; heterogeneity adds coarse clumping and larger lighter patches.
    h = f.chromatin_heterogeneity
    fine = _smooth_noise(rng, box.shape, 1.2)
    clumps = _smooth_noise(rng, box.shape, 2.2)
    windows = 1.0 / (1.0 + np.exp(-(_smooth_noise(rng, box.shape, 1.8) - cm.nucleus_windows) * 6.0))
    cleft_field = _smooth_noise(rng, box.shape, 3.0)
    clefts = np.exp(-((cleft_field / 0.2) ** 2))
    patches = _smooth_noise(rng, box.shape, 5.0)
    light = 1.0 / (1.0 + np.exp(-(patches - 0.5) * 3.0))
    density = (1.1 + cm.chromatin_fine * fine + (0.05 + 0.38 * h) * clumps - 0.75 * windows - (0.15 + 0.15 * h) * clefts
               - h * 0.6 * light - 0.08 * h)
    # Darker rim where the lobe edge is seen edge-on: a crisp blue-black outline.
    inside = np.clip(-nuc_d, 0, None)
    rim, depth, width = cm.nucleus_rim
    if depth:
        # Real nuclei are darkest and most violet a few pixels inside their edge.
        density += rim * np.exp(-(((inside - depth) / width) ** 2))
    else:
        density += 0.55 * np.exp(-inside / 2.2)
    if cm.nucleus_coarse:
        density += cm.nucleus_coarse * _smooth_noise(extra, box.shape, 3.0)
    density = np.clip(density, 0.25, None)
    if cm.texture_mix:
        # Real chromatin texture varies mostly along OD_TEXTURE (the nucleus' blue channel
        # hardly follows it); the nucleus' mean keeps the stain colour.
        w = nuc_alpha * intensity
        d_mean = float((density * w).sum() / max(float(w.sum()), 1e-6))
        nucleus = (w * d_mean)[..., None] * od_nucleus
        nucleus += (w * (density - d_mean) * cm.nucleus_texture_gain)[..., None] * _texture_od(od_nucleus, cm)
        # Pale windows stay pale lilac: no channel drops below the 2.0 floor (a quarter of
        # the stain), else green would shine through as bright speckles.
        nucleus_layer = np.maximum(nucleus, (w * 0.25)[..., None] * od_nucleus)
    else:
        nucleus_layer = (nuc_alpha * density * intensity)[..., None] * od_nucleus
    local += nucleus_layer

    # Granules: dense, faint and soft (a barely resolved pink-lilac dust), and fewer,
    # larger, darker purple ones; neither reads as discrete dark dots.
    cyto_idx = np.flatnonzero(cyto_m)
    area_ratio = cyto_idx.size / 12000.0
    n_fine = int(rng.poisson(max(f.granule_density, 0.0) * cm.granule_counts[0] * area_ratio))
    n_dark = int(rng.poisson(max(f.granule_density, 0.0) * cm.granule_counts[1] * area_ratio))
    n_granules = min(n_fine + n_dark, cyto_idx.size)
    granule_field = np.zeros(box.shape, dtype=np.float32)
    dark_field = np.zeros(box.shape, dtype=np.float32)
    granule_mask = np.zeros(box.shape, dtype=bool)
    if n_granules:
        pick = cyto_idx[rng.choice(cyto_idx.size, size=n_granules, replace=False)]
        weights = rng.uniform(0.5, 1.1, n_granules).astype(np.float32)
        sig = f.granule_size * 1.3
        norm = 2 * np.pi * sig * sig
        fine_pick, dark_pick = pick[:n_fine], pick[n_fine:]
        granule_field = np.bincount(fine_pick, weights=weights[:n_fine], minlength=granule_field.size)
        granule_field = ndimage.gaussian_filter(granule_field.reshape(box.shape).astype(np.float32), sig) * norm
        if len(dark_pick):
            dark_field = np.bincount(dark_pick, weights=weights[n_fine:], minlength=dark_field.size)
            dark_field = ndimage.gaussian_filter(dark_field.reshape(box.shape).astype(np.float32), sig * 1.3)
            dark_field *= norm * 1.69
        granule_mask = ((granule_field + dark_field) > 0.4) & cyto_m
    fine_field = granule_field
    if cm.granule_bright and n_fine:
        # Pale specks between the granules (not granules: not in the mask or the count):
        # real cytoplasm texture is less skewed towards dark dots.
        n_pale = int(extra.poisson(cm.granule_bright * n_fine))
        pale = np.bincount(cyto_idx[extra.integers(0, cyto_idx.size, n_pale)],
                           weights=extra.uniform(0.5, 1.1, n_pale), minlength=granule_field.size)
        fine_field = granule_field - ndimage.gaussian_filter(pale.reshape(box.shape).astype(np.float32), sig) * norm
    granules = ((np.minimum(fine_field, 2.0) * 0.25, OD_GRANULE), (np.minimum(dark_field, 1.2) * 0.9, OD_GRANULE_DARK))
    for field, od_granule in granules:
        if cm.texture_mix and cyto_m.any():
            # Same for granules: their mean over the cytoplasm keeps the tint.
            mean = float(field[cyto_m].mean())
            local += (cyto_alpha * intensity * np.where(cyto_m, mean, field))[..., None] * od_granule
            local += (cyto_alpha * intensity * np.where(cyto_m, field - mean, 0.0))[..., None] * _texture_od(od_granule, cm)
        else:
            local += (field * cyto_alpha * intensity)[..., None] * od_granule

    # Dohle bodies: pale blue-grey patches at the edge of the cytoplasm.
    for _ in range(f.dohle_bodies):
        ang = rng.uniform(0, 2 * np.pi)
        dist = R * rng.uniform(0.72, 0.84)
        by, bx = cy + dist * np.sin(ang), cx + dist * np.cos(ang)
        a, b = rng.uniform(5.0, 9.0), rng.uniform(3.0, 5.0)
        d = _ellipse_sdf(yy, xx, by, bx, a, b, ang + np.pi / 2)
        blob = np.clip(0.5 - d / 2.5, 0, 1) * cyto_m
        local += (blob * rng.uniform(0.7, 1.0))[..., None] * OD_DOHLE

    return local, nucleus_layer, nuc_alpha, nuc_m, cyto_m, granule_mask, n_granules


def render_cell(features: CellFeatures, *, version: str = GENERATOR_VERSION) -> SyntheticCell:
    """Draw the cell described by ``features``; same features and version, same JPEG bytes.

    ``version`` picks the generator's stain and capture model (:data:`CAPTURE_MODELS`).
    Returns a :class:`SyntheticCell` whose ``rgb`` is the *decoded* JPEG, so the pixels
    match what a file reader sees, and whose masks are the exact drawn regions.
    """
    cm = capture_model(version)
    if cm.canvas:
        return _render_on_canvas(features, cm)
    f = features
    rng = np.random.default_rng(f.seed)
    # Draws that only newer capture models make come from their own stream, so the
    # geometry (red cells, nucleus, granules) of a cell stays that of every version.
    extra = np.random.default_rng([f.seed, 31])
    H, W = IMAGE_SHAPE
    od = np.zeros((H, W, 3), dtype=np.float32)

    cy = H / 2 + rng.uniform(-10, 10)
    cx = W / 2 + rng.uniform(-10, 10)
    R = float(f.cell_radius)

    # The neutrophil's outline first: red cells are hidden where it lies on them.
    box = _Box(cy, cx, R * 1.2 + 4)
    yy, xx = box.yy, box.xx
    dy, dx = yy - cy, xx - cx
    rr = np.hypot(dy, dx)
    wobble, fine_wobble = cm.cell_wobble
    outline = _wobbly_radius(rng, dy, dx, R, rng.uniform(0.08, 0.16) * wobble, 5)
    outline = outline * (1.0 + 0.012 * fine_wobble * _smooth_noise(rng, box.shape, 4.0))
    cell_d = rr - outline
    cell_alpha = _soft(cell_d, 2.2)
    if cm.cell_skirt[0]:
        # Real neutrophils fade into the background over a few pixels beyond the outline.
        cell_alpha = np.maximum(cell_alpha, cm.cell_skirt[0] * np.exp(-np.clip(cell_d, 0, None) / cm.cell_skirt[1]))
    cell_m = cell_d < 0

    red = np.zeros((H, W), dtype=np.float32)
    # Pallor and edge sharpness are properties of the smear (drying, focus), shared by
    # the red cells of one capture.
    pallor, edge = rng.uniform(*cm.red_cell_pallor), rng.uniform(*cm.red_cell_edge)
    placed = _place_red_cells(rng, f, cy, cx, R)
    red_rng = rng
    if cm.red_cell_stream:
        # Red cells of their own stream (another size changes how many fit): the main
        # stream skips exactly the draws 2.0 makes for its red cells, so the neutrophil
        # that follows keeps the outline and nucleus of every version (3.2 only thickens
        # the lobes, which moves the granules).
        for y, x, r in placed:
            if not _Box(y, x, r * 1.22 + 4).empty:
                rng.uniform(size=_RED_CELL_DRAWS)
        red_rng = np.random.default_rng([f.seed, 32])
        pallor, edge = red_rng.uniform(*cm.red_cell_pallor), red_rng.uniform(*cm.red_cell_edge)
        placed = _place_red_cells(red_rng, f, cy, cx, R, cm.red_cell_scale, cm.red_cell_count)
    # Red-cell outline roughness draws from a stream of its own: every other draw stays put.
    edge_rng = np.random.default_rng([f.seed, 34])
    for y, x, r in placed:
        _draw_red_cell(red, red_rng, y, x, r, pallor, edge, cm.red_cell_rim, cm.red_cell_density,
                       cm.red_cell_pallor_soft, cm.red_cell_ramp, cm.red_cell_texture, extra,
                       cm.red_cell_pallor_width, cm.red_cell_wobble, cm.red_cell_rough, edge_rng)
    red[box.slices] *= 1.0 - 0.92 * cell_alpha
    rbc_strength = rng.uniform(0.82, 1.15) * (1.0 + 0.07 * rng.standard_normal(3)).astype(np.float32)
    od += red[..., None] * (OD_RED_CELL * rbc_strength)
    for _ in range(f.platelets):
        for _try in range(20):
            y, x = rng.uniform(8, H - 8), rng.uniform(8, W - 8)
            if np.hypot(y - cy, x - cx) > R + 12:
                _draw_platelet(od, rng, y, x)
                break

    local, _, nuc_alpha, nuc_m, cyto_m, granule_mask, n_granules = _neutrophil_od(
        f, cm, rng, extra, box, cy, cx, R, cell_alpha, cell_d, cell_m)
    od[box.slices] += local
    stain = np.zeros((H, W), dtype=np.float32)
    stain[box.slices] = local.mean(-1)
    if cm.red_cell_grain:
        # Real red cells carry a faint pixel-scale grain too (Immerkaer noise estimate
        # 0.44 in red cells vs 0.16-0.23 in the background, per 8-bit channel).
        stain += cm.red_cell_grain * red

    # Illumination: peach background, white balance varying between captures, a gentle
    # vignette and shading drift.
    bg = np.array(cm.background) * rng.uniform([0.99, 0.985, 0.95], [1.01, 1.01, 1.03]) * rng.uniform(0.99, 1.01)
    gy = np.linspace(-1, 1, H, dtype=np.float32)[:, None]
    gx = np.linspace(-1, 1, W, dtype=np.float32)[None, :]
    k = cm.shading
    shade = 1.0 + rng.uniform(-k, k) * gy + rng.uniform(-k, k) * gx - k * (gy * gy + gx * gx)
    img = (shade[..., None] * bg.astype(np.float32)) * np.exp(-od)
    texture = None
    if cm.part_statistics:
        w_cell = np.zeros((H, W), np.float32)
        w_cell[box.slices] = cell_alpha
        w_nucleus = np.zeros((H, W), np.float32)
        w_nucleus[box.slices] = nuc_alpha
        w_red = np.clip(red / 0.08, 0, 1) * (1 - w_cell)
        w_background = np.clip(1.0 - w_cell - w_red, 0, 1)
        weights = (w_background, w_red, np.clip(w_cell - w_nucleus, 0, 1), w_nucleus)
        img = _part_statistics(img, rng, weights, cm.stats_file, cm.dark_floor)
        if any(cm.texture_transplant):
            texture = _texture_transplant(weights, cm, np.random.default_rng([f.seed, 33]))
    w_cell = np.zeros((H, W), np.float32)
    w_cell[box.slices] = cell_alpha
    rgb8 = _capture(img, rng, f, cm, stain, extra, texture, w_cell)

    jpeg, decoded = _write_jpeg(rgb8, f.jpeg_quality)
    full = box.full
    return SyntheticCell(
        features=f,
        jpeg=jpeg,
        rgb=decoded,
        cell=full(cell_m),
        nucleus=full(nuc_m),
        cytoplasm=full(cyto_m),
        granules=full(granule_mask),
        granule_count=int(n_granules),
        centre=(float(cy), float(cx)),
        version=cm.version,
    )


class CanvasDrawing(NamedTuple):
    """Generator 4.0's drawing of one cell over its canvas, before stain and capture."""

    features: CellFeatures    # as recorded: the canvas' radius, stain, quality and counts
    rng: np.random.Generator  # the cell's main stream and its extra one, after the drawing
    extra: np.random.Generator
    box: _Box                 # the window around the canvas' neutrophil
    inside: np.ndarray        # depth inside the real outline, pixels (box-sized)
    cell_alpha: np.ndarray    # the outline's soft coverage (box-sized)
    layers: tuple             # what :func:`_neutrophil_od` returns


def canvas_drawing(features: CellFeatures, canvas, cm: CaptureModel) -> CanvasDrawing:
    """Draw the neutrophil of ``features`` inside ``canvas``' real outline (generator 4.0)."""
    # What the canvas decides is recorded as it is there, not as drawn by older versions. The
    # latent rbc_overlap stays (it chose the canvas); the truth adds the touching red cells counted.
    f = dataclasses.replace(features, cell_radius=round(canvas.radius, 2), stain_hue=0.0,
                            stain_intensity=1.0, jpeg_quality=75, rbc_count=canvas.red_cells,
                            platelets=canvas.platelets)
    rng = np.random.default_rng(f.seed)
    extra = np.random.default_rng([f.seed, 31])
    cy, cx = canvas.centre
    box = _Box(cy, cx, canvas.reach + 8)
    cell_m = canvas.cell[box.slices]
    inside = ndimage.distance_transform_edt(cell_m).astype(np.float32)
    cell_d = ndimage.distance_transform_edt(~cell_m).astype(np.float32) - inside
    cell_alpha = _soft(cell_d + 0.5, 2.2)
    layers = _neutrophil_od(f, cm, rng, extra, box, cy, cx, canvas.radius, cell_alpha, cell_d, cell_m,
                            nucleus_clip=cm.nucleus_margin - inside)
    return CanvasDrawing(f, rng, extra, box, inside, cell_alpha, layers)


def _render_on_canvas(features: CellFeatures, cm: CaptureModel, *, stain: str = "fitted") -> SyntheticCell:
    """Generator 4.0: draw the neutrophil of ``features`` into a real capture.

    The canvas (one of the bundled real captures, maybe mirrored) is picked from the seed.
    Its neutrophil's outline becomes the cell's: the cell radius is the outline's, the
    stain is the capture's (the drawn cytoplasm and nucleus are scaled, per colour
    channel, so that a normal cell's densities match the real ones of that capture; a
    hypogranular cytoplasm or a pale heterogeneous chromatin stays paler by as much as
    in every other version), and the JPEG quality is the capture's (75). Everything
    inside the outline but a thin band at its edge is drawn; the real nucleus is covered.
    ``stain``: "fitted" (the default), "untoned" (no tone curve) or "raw" (no stain matching
    at all): the last two serve :func:`core.synth.canvas.fit_stain`.
    """
    from .canvas import load_canvas, pick_canvas, wants_touching

    canvas = load_canvas(*pick_canvas(features.seed, wants_touching(features.rbc_overlap)))
    d = canvas_drawing(features, canvas, cm)
    f, rng, extra, box, inside, cell_alpha = d.features, d.rng, d.extra, d.box, d.inside, d.cell_alpha
    local, nucleus_layer, _, nuc_m, cyto_m, granule_mask, n_granules = d.layers
    cy, cx = canvas.centre
    if stain == "raw":
        od = local
    else:
        from .canvas import stain_statistics

        st = stain_statistics(cm.version)
        s_cyto = np.clip(canvas.cytoplasm_od / st["cytoplasm_od"], 0.4, 2.5).astype(np.float32)
        s_nucleus = np.clip(canvas.nucleus_od / st["nucleus_od"], 0.4, 2.5).astype(np.float32)
        cyto_od = (local - nucleus_layer) * s_cyto
        nucleus_od = nucleus_layer * s_nucleus
        if cm.nucleus_tone and stain == "fitted":
            # Real chromatin saturates: the total density, over the canvas' real median, is
            # mapped through the fitted tone curve (monotone, so paler chromatin stays paler).
            norm = float(canvas.nucleus_od.sum())
            total = (cyto_od + nucleus_od).sum(-1)
            target = np.interp(total / norm, st["tone_before"], st["tone_after"]) * norm
            own = nucleus_od.sum(-1)
            k = np.where(own > 1e-3, np.clip(target - (total - own), 0.0, None) / np.maximum(own, 1e-3), 1.0)
            nucleus_od = nucleus_od * k[..., None].astype(np.float32)
        od = cyto_od + nucleus_od
    drawn = canvas.background.astype(np.float32) * np.exp(-od)
    drawn = _capture(drawn, rng, f, cm, od.mean(-1), extra, None, cell_alpha).astype(np.float32)
    # Where the drawn cell replaces the capture: all of it but a thin band inside the real
    # outline, and wherever the real nucleus (and its blur) was.
    depth, fade = cm.canvas_band
    weight = np.clip((inside - depth) / fade, 0.0, 1.0)
    real_nucleus = ndimage.binary_dilation(canvas.nucleus[box.slices], iterations=2).astype(np.float32)
    weight = np.maximum(weight, np.clip(2.0 * ndimage.gaussian_filter(real_nucleus, 1.0), 0.0, 1.0))[..., None]
    img = canvas.rgb.astype(np.float32)
    img[box.slices] = (1.0 - weight) * img[box.slices] + weight * drawn

    full = box.full
    # Real pixel-scale texture: the cytoplasm's as strong as its granulation, the nucleus' as is.
    gains = {"cytoplasm": cm.texture_transplant[2] * float(np.clip(f.granule_density, 0.0, 1.0)),
             "nucleus": cm.texture_transplant[3]}
    masks = {"cytoplasm": full(cyto_m), "nucleus": full(nuc_m)}
    texture_rng = np.random.default_rng([f.seed, 33])
    for part, gain in gains.items():
        if gain:
            from .texture import load_texture_bank, transplant_texture

            img = transplant_texture(img, {part: masks[part]}, texture_rng, load_texture_bank(), gain=gain,
                                     fade=cm.texture_fade if part == "cytoplasm" else 2.0)
    jpeg, decoded = _write_jpeg(np.clip(np.rint(img), 0, 255).astype(np.uint8), f.jpeg_quality)
    nucleus = full(nuc_m)
    return SyntheticCell(
        features=f, jpeg=jpeg, rgb=decoded, cell=canvas.cell.copy(), nucleus=nucleus,
        cytoplasm=canvas.cell & ~nucleus, granules=full(granule_mask) & ~nucleus,
        granule_count=int(n_granules), centre=(float(cy), float(cx)), version=cm.version,
        canvas={"canvas": canvas.name, "canvas_mirrored": canvas.mirrored, "touching_red_cells": canvas.touching})
