"""Render one CellaVision-like May-Grunwald-Giemsa neutrophil from its latent features.

The image is composed in optical density (Beer-Lambert): every stained object adds
an absorbance per colour channel and the transmitted colour is the cream
background times ``exp(-total density)``. Overlapping red cells therefore darken
where they overlap, as on a smear, and the nucleus shows through the cytoplasm.

Every object is drawn inside its own bounding box and the nucleus is a union of
signed-distance shapes (lobes as ellipses, filaments and bands as capsules), so a
360 x 363 cell costs a few tens of milliseconds in NumPy.
"""
from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image
from scipy import ndimage

from .features import CellFeatures

#: CellaVision DM96 image size, (height, width).
IMAGE_SHAPE = (363, 360)

# Transmitted colours (RGB over a white-balanced cream background) of each stained
# object at full strength; converted to optical densities below.
_BACKGROUND = np.array([236.0, 228.0, 210.0])
_RED_CELL = (224.0, 170.0, 166.0)
# Secondary granules give normal cytoplasm its pink-lilac tint; without them it is a
# paler, greyer blue-lilac (the hypogranular look).
_CYTOPLASM = (224.0, 196.0, 212.0)
_CYTOPLASM_AGRANULAR = (214.0, 206.0, 224.0)
_GRANULE = (150.0, 92.0, 160.0)
_NUCLEUS_BLUE = (78.0, 52.0, 140.0)
_NUCLEUS_RED = (112.0, 46.0, 122.0)
_DOHLE = (178.0, 196.0, 224.0)
_PLATELET = (150.0, 100.0, 175.0)


def _od(rgb) -> np.ndarray:
    return (-np.log(np.asarray(rgb, dtype=np.float64) / _BACKGROUND)).astype(np.float32)


OD_RED_CELL = _od(_RED_CELL)
OD_CYTOPLASM = _od(_CYTOPLASM)
OD_CYTOPLASM_AGRANULAR = _od(_CYTOPLASM_AGRANULAR)
OD_GRANULE = _od(_GRANULE)
OD_NUCLEUS_BLUE = _od(_NUCLEUS_BLUE)
OD_NUCLEUS_RED = _od(_NUCLEUS_RED)
OD_DOHLE = _od(_DOHLE)
OD_PLATELET = _od(_PLATELET)


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
        return d


class _Box:
    """A clipped square window of the image with local pixel-centre coordinates."""

    def __init__(self, cy: float, cx: float, half: float, shape=IMAGE_SHAPE):
        h, w = shape
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


def _smooth_noise(rng: np.random.Generator, shape, sigma: float) -> np.ndarray:
    """Band-limited Gaussian noise with zero mean and unit standard deviation."""
    n = ndimage.gaussian_filter(rng.standard_normal(shape).astype(np.float32), sigma, mode="wrap")
    return n / max(float(n.std()), 1e-6)


def _wobbly_radius(rng, theta, radius, amplitude, harmonics):
    r = np.ones_like(theta)
    for k in range(2, 2 + harmonics):
        r += (amplitude / k) * rng.uniform(0.3, 1.0) * np.cos(k * theta + rng.uniform(0, 2 * np.pi))
    return radius * r


def _soft(d):
    """Anti-aliased coverage of a signed distance (negative inside), in [0, 1]."""
    return np.clip(0.5 - d, 0.0, 1.0)


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


def _arc(cy, cx, radius, start, span, n):
    t = start + span * np.linspace(0.0, 1.0, n)
    return np.stack([cy + radius * np.sin(t), cx + radius * np.cos(t)], axis=1), t


def _nucleus_components(f: CellFeatures, rng, cy, cx, R):
    """Signed-distance callables ``(yy, xx) -> d`` whose union (minimum) is the nucleus."""
    s = f.nucleus_scale
    parts = []
    lobes = []
    rot = rng.uniform(0, 2 * np.pi)
    shape = f.nucleus_shape
    if shape in ("segmented", "hypersegmented"):
        k = f.lobe_count
        span = {2: 1.7, 3: 2.6, 4: 3.4, 5: 4.0}.get(k, 4.9) * rng.uniform(0.85, 1.1)
        lobe_a = R * s * (0.32 if k <= 3 else 0.29 if k <= 5 else 0.23) * rng.uniform(0.9, 1.1)
        rc = min(R * rng.uniform(0.36, 0.46), 0.86 * R - lobe_a)
        ocy = cy + rng.uniform(-0.06, 0.06) * R
        ocx = cx + rng.uniform(-0.06, 0.06) * R
        centres, t = _arc(ocy, ocx, rc, rot, span, k)
        # Jitter along and across the chain so lobes are not beads on a circle.
        centres = centres + rng.normal(0, 0.035 * R, centres.shape)
        for (ly, lx), tt in zip(centres, t):
            a = lobe_a * rng.uniform(0.85, 1.15)
            b = a * rng.uniform(0.6, 0.85)
            ang = tt + np.pi / 2 + rng.uniform(-0.7, 0.7)
            parts.append(lambda yy, xx, ly=ly, lx=lx, a=a, b=b, ang=ang: _ellipse_sdf(yy, xx, ly, lx, a, b, ang))
            lobes.append((ly, lx, a))
        fil = rng.uniform(0.9, 1.8)
        parts.append(lambda yy, xx, c=centres, w=fil: _polyline_sdf(yy, xx, c, np.full(len(c), w)))
    elif shape == "dumbbell":
        # Pseudo-Pelger-Huet: two round lobes joined by a thin bridge (spectacles).
        a = R * s * rng.uniform(0.30, 0.36)
        half = a * rng.uniform(1.15, 1.55)
        dy, dx = np.sin(rot) * half, np.cos(rot) * half
        ends = [(cy - dy, cx - dx), (cy + dy, cx + dx)]
        for ly, lx in ends:
            b = a * rng.uniform(0.85, 1.0)
            ang = rot + rng.uniform(-0.4, 0.4)
            parts.append(lambda yy, xx, ly=ly, lx=lx, a=a, b=b, ang=ang: _ellipse_sdf(yy, xx, ly, lx, a, b, ang))
            lobes.append((ly, lx, a))
        bridge = rng.uniform(1.5, 4.5)
        parts.append(lambda yy, xx, c=ends, w=bridge: _polyline_sdf(yy, xx, c, [w, w]))
    elif shape == "band":
        rc = R * s * rng.uniform(0.36, 0.46)
        span = rng.uniform(2.6, 4.2)
        w = R * s * rng.uniform(0.17, 0.21)
        pts, _ = _arc(cy + rng.uniform(-0.06, 0.06) * R, cx + rng.uniform(-0.06, 0.06) * R, rc, rot, span, 10)
        widths = w * (1.0 + 0.12 * rng.standard_normal(len(pts)))
        parts.append(lambda yy, xx, p=pts, ww=widths: _polyline_sdf(yy, xx, p, ww))
        lobes.extend((p[0], p[1], w) for p in pts[[0, -1]])
    elif shape == "round":
        a = R * s * rng.uniform(0.46, 0.54)
        b = a * rng.uniform(0.78, 0.92)
        ly, lx = cy + rng.uniform(-0.1, 0.1) * R, cx + rng.uniform(-0.1, 0.1) * R
        parts.append(lambda yy, xx: _ellipse_sdf(yy, xx, ly, lx, a, b, rot))
        lobes.append((ly, lx, a))
    else:  # ring
        rc = R * s * rng.uniform(0.36, 0.44)
        w = R * s * rng.uniform(0.13, 0.16)
        pts, _ = _arc(cy, cx, rc, rot, 2 * np.pi, 17)
        parts.append(lambda yy, xx, p=pts: _polyline_sdf(yy, xx, p, np.full(len(p), w)))
        lobes.append((pts[0][0], pts[0][1], w))
    if f.drumstick:
        # Drumstick appendage: a small round head on a thin stalk, pointing outwards.
        ly, lx, a = lobes[int(rng.integers(len(lobes)))]
        direction = np.arctan2(ly - cy, lx - cx) + rng.uniform(-0.5, 0.5)
        if abs(ly - cy) + abs(lx - cx) < 1:
            direction = rng.uniform(0, 2 * np.pi)
        head_r = rng.uniform(3.5, 4.8)
        reach = a + rng.uniform(6.0, 10.0)
        hy, hx = ly + reach * np.sin(direction), lx + reach * np.cos(direction)
        d_cell = np.hypot(hy - cy, hx - cx)
        if d_cell > 0.9 * R - head_r:
            k = (0.9 * R - head_r) / d_cell
            hy, hx = cy + (hy - cy) * k, cx + (hx - cx) * k
        parts.append(lambda yy, xx: np.hypot(yy - hy, xx - hx) - head_r)
        parts.append(lambda yy, xx: _polyline_sdf(yy, xx, [(ly, lx), (hy, hx)], [0.8, 0.8]))
    return parts


def _draw_red_cell(od, rng, cy, cx, r, strength):
    box = _Box(cy, cx, r * 1.15 + 2)
    if box.empty:
        return
    dy, dx = box.yy - cy, box.xx - cx
    rr = np.hypot(dy, dx)
    theta = np.arctan2(dy, dx)
    rb = _wobbly_radius(rng, theta, r, 0.06, 3)
    alpha = _soft(rr - rb)
    rn = rr / rb
    # Biconcave disc: pale centre, denser towards the rim.
    pallor = rng.uniform(0.5, 0.75)
    profile = 1.0 - pallor * np.exp(-((rn / rng.uniform(0.45, 0.6)) ** 2)) + 0.12 * np.exp(-(((rn - 0.88) / 0.1) ** 2))
    od[box.slices] += (alpha * profile * strength)[..., None] * OD_RED_CELL


def _draw_platelet(od, rng, cy, cx):
    r = rng.uniform(3.0, 6.5)
    box = _Box(cy, cx, r + 4)
    if box.empty:
        return
    dy, dx = box.yy - cy, box.xx - cx
    theta = np.arctan2(dy, dx)
    rb = _wobbly_radius(rng, theta, r, 0.35, 3)
    alpha = _soft(np.hypot(dy, dx) - rb)
    grain = 0.75 + 0.35 * rng.random(box.shape).astype(np.float32)
    od[box.slices] += (alpha * grain * rng.uniform(0.6, 1.0))[..., None] * OD_PLATELET


def render_cell(features: CellFeatures) -> SyntheticCell:
    """Draw the cell described by ``features``; same features, same JPEG bytes.

    Returns a :class:`SyntheticCell` whose ``rgb`` is the *decoded* JPEG, so the pixels
    match what a file reader sees, and whose masks are the exact drawn regions.
    """
    f = features
    rng = np.random.default_rng(f.seed)
    H, W = IMAGE_SHAPE
    od = np.zeros((H, W, 3), dtype=np.float32)

    cy = H / 2 + rng.uniform(-12, 12)
    cx = W / 2 + rng.uniform(-12, 12)
    R = float(f.cell_radius)

    # Red cells: a few touching or overlapping the neutrophil, the rest spread around it.
    rbc_r = rng.uniform(34, 41)
    placed: list[tuple[float, float, float]] = []
    for _ in range(f.rbc_overlap):
        r = rbc_r * rng.uniform(0.9, 1.1)
        ang = rng.uniform(0, 2 * np.pi)
        dist = R + r * rng.uniform(0.55, 1.0)
        placed.append((cy + dist * np.sin(ang), cx + dist * np.cos(ang), r))
    tries = 0
    while len(placed) < f.rbc_overlap + f.rbc_count and tries < 40 * (f.rbc_count + 1):
        tries += 1
        r = rbc_r * rng.uniform(0.88, 1.12)
        y, x = rng.uniform(-r * 0.5, H + r * 0.5), rng.uniform(-r * 0.5, W + r * 0.5)
        if np.hypot(y - cy, x - cx) < R + r * 1.05:
            continue
        if any(np.hypot(y - py, x - px) < (r + pr) * 0.8 for py, px, pr in placed):
            continue
        placed.append((y, x, r))
    rbc_strength = rng.uniform(0.8, 1.15)
    for y, x, r in placed:
        _draw_red_cell(od, rng, y, x, r, rbc_strength * rng.uniform(0.9, 1.1))
    for _ in range(f.platelets):
        for _try in range(20):
            y, x = rng.uniform(8, H - 8), rng.uniform(8, W - 8)
            if np.hypot(y - cy, x - cx) > R + 12:
                _draw_platelet(od, rng, y, x)
                break

    # The neutrophil, inside one box.
    box = _Box(cy, cx, R * 1.12 + 3)
    yy, xx = box.yy, box.xx
    dy, dx = yy - cy, xx - cx
    rr = np.hypot(dy, dx)
    theta = np.arctan2(dy, dx)
    cell_d = rr - _wobbly_radius(rng, theta, R, 0.05, 4)
    cell_alpha = _soft(cell_d)

    boundary = _smooth_noise(rng, box.shape, 3.0) * 1.2
    nuc_d = None
    for part in _nucleus_components(f, rng, cy, cx, R):
        d = part(yy, xx)
        nuc_d = d if nuc_d is None else np.minimum(nuc_d, d)
    nuc_d = nuc_d + boundary
    nuc_alpha = _soft(nuc_d) * cell_alpha
    cell_m = cell_d < 0
    nuc_m = (nuc_d < 0) & cell_m
    cyto_m = cell_m & ~nuc_m

    # Stain: the hue slides between a bluer and a redder Giemsa, the intensity scales all.
    hue = 0.5 + 0.5 * f.stain_hue
    od_nucleus = (1 - hue) * OD_NUCLEUS_BLUE + hue * OD_NUCLEUS_RED
    intensity = f.stain_intensity

    local = np.zeros(box.shape + (3,), dtype=np.float32)
    cyto_tex = 1.0 + 0.06 * _smooth_noise(rng, box.shape, 6.0)
    tint = float(np.clip(f.granule_density, 0.0, 1.0))
    od_cytoplasm = tint * OD_CYTOPLASM + (1.0 - tint) * OD_CYTOPLASM_AGRANULAR
    local += (cell_alpha * cyto_tex * intensity)[..., None] * od_cytoplasm

    # Chromatin: homogeneous and dense when normal; clumps and lighter patches as
    # heterogeneity rises.
    h = f.chromatin_heterogeneity
    fine = _smooth_noise(rng, box.shape, 1.2)
    clumps = _smooth_noise(rng, box.shape, 2.2)
    patches = _smooth_noise(rng, box.shape, 6.0)
    light = 1.0 / (1.0 + np.exp(-(patches - 0.4) * 3.0))
    density = 1.0 + 0.07 * fine + h * (0.4 * clumps - 0.8 * light) - 0.12 * h
    # Darker rim where the lobe edge is seen edge-on.
    density += 0.12 * np.exp(-np.clip(-nuc_d, 0, None) / 2.0)
    density = np.clip(density, 0.2, None)
    local += (nuc_alpha * density * intensity)[..., None] * od_nucleus

    # Granules: points scattered over the cytoplasm, blurred to their size.
    cyto_idx = np.flatnonzero(cyto_m)
    area_ratio = cyto_idx.size / 15000.0
    n_granules = int(rng.poisson(max(f.granule_density, 0.0) * 1300.0 * area_ratio))
    n_granules = min(n_granules, cyto_idx.size)
    granule_field = np.zeros(box.shape, dtype=np.float32)
    granule_mask = np.zeros(box.shape, dtype=bool)
    if n_granules:
        pick = cyto_idx[rng.choice(cyto_idx.size, size=n_granules, replace=False)]
        weights = rng.uniform(0.6, 1.2, n_granules).astype(np.float32)
        granule_field = np.bincount(pick, weights=weights, minlength=granule_field.size)
        granule_field = granule_field.reshape(box.shape).astype(np.float32)
        sig = f.granule_size * 0.7
        granule_field = ndimage.gaussian_filter(granule_field, sig) * (2 * np.pi * sig * sig)
        granule_mask = (granule_field > 0.35) & cyto_m
    local += (np.minimum(granule_field, 1.8) * cell_alpha * intensity * 0.75)[..., None] * OD_GRANULE

    # Dohle bodies: pale blue patches at the edge of the cytoplasm.
    for _ in range(f.dohle_bodies):
        ang = rng.uniform(0, 2 * np.pi)
        dist = R * rng.uniform(0.72, 0.84)
        by, bx = cy + dist * np.sin(ang), cx + dist * np.cos(ang)
        a, b = rng.uniform(5.0, 9.0), rng.uniform(3.0, 5.0)
        d = _ellipse_sdf(yy, xx, by, bx, a, b, ang + np.pi / 2)
        blob = np.clip(0.5 - d / 2.5, 0, 1) * cyto_m
        local += (blob * rng.uniform(0.7, 1.0))[..., None] * OD_DOHLE

    od[box.slices] += local

    # Illumination: cream background with a gentle vignette and shading drift.
    bg = _BACKGROUND * rng.uniform(0.97, 1.02, 3)
    gy = np.linspace(-1, 1, H, dtype=np.float32)[:, None]
    gx = np.linspace(-1, 1, W, dtype=np.float32)[None, :]
    shade = 1.0 + rng.uniform(-0.015, 0.015) * gy + rng.uniform(-0.015, 0.015) * gx - 0.02 * (gy * gy + gx * gx)
    img = (shade[..., None] * bg.astype(np.float32)) * np.exp(-od)
    # Optics: every capture is slightly soft; focus blur adds to it.
    sigma = float(np.hypot(0.55, f.blur_sigma))
    img = ndimage.gaussian_filter(img, (sigma, sigma, 0))
    img += rng.normal(0.0, 1.6, img.shape).astype(np.float32)
    rgb8 = np.clip(np.rint(img), 0, 255).astype(np.uint8)

    buf = io.BytesIO()
    Image.fromarray(rgb8, "RGB").save(buf, format="JPEG", quality=int(f.jpeg_quality))
    jpeg = buf.getvalue()
    decoded = np.asarray(Image.open(io.BytesIO(jpeg)).convert("RGB"))

    def full(mask):
        out = np.zeros((H, W), dtype=bool)
        out[box.slices] = mask
        return out

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
    )
