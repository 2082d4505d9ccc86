"""How a raw explanation map is shown: its sign and units, the colour scale, negligible and
flat maps, and the overlay on the cell.

Maps are computed raw at model resolution; everything here is a display choice. Every
map the engine returns follows one convention: positive = supports the explained class
(``MethodSpec.sign == "supports"``), or a non-negative magnitude without a direction
(``"magnitude"``, e.g. |gradient|, the same for both classes).

The default scale is zero-centred and diverging (:func:`diverging_ramp`: blue = opposes,
orange = supports; white = no effect; straight lines in CIELAB, so lightness falls evenly
from the centre to both ends, and the two arms differ along the blue-yellow axis that
red-green colour-blind viewers keep), in the map's own units. Magnitudes use viridis.
Per-image min-max stretching stays available as an option. The overlay's opacity grows
with the size of the effect, so a place with no effect shows the cell itself.

Maps are drawn registered on the original image by resizing them to its size, which
inverts the geometry of the preprocessing resize.
"""
from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image

from core.errors import DisplasiaError

#: Colour maps offered by the dashboard. "auto": diverging blue-orange for signed maps,
#: viridis for magnitudes. Rainbow maps (jet, turbo) are not perceptually ordered and are
#: not offered; old links and callers asking for them get "auto".
COLORMAPS = ("auto", "blue-orange", "viridis", "cividis", "RdBu_r")
_RETIRED = {"jet": "auto", "turbo": "auto", "inferno": "auto"}
#: "raw": zero-centred, the map's own units (on Compare: one scale per method family);
#: "percentile": zero-centred, clipped at a percentile of |value|; "minmax": each map
#: stretched from its own minimum to its maximum (per-image normalisation).
NORMALISATIONS = ("raw", "percentile", "minmax")

#: A probability change below this is negligible: the cell header reports scores to 4
#: decimals, so a change under 1e-4 cannot show in any score on screen, and it can move a
#: prediction only for a cell within 1e-4 of the threshold.
NEGLIGIBLE_PROBABILITY = 1e-4
#: The same bound in log-odds: dp = p (1 - p) dlogit <= dlogit / 4, so a logit change under
#: 4e-4 changes the probability by less than 1e-4 whatever the cell's score.
NEGLIGIBLE_LOGIT = 4e-4
#: A map whose values vary by no more than this many float32 steps (ulps) at the scale of
#: the scores it was computed from carries no information: it is called flat, never stretched.
FLAT_ULPS = 4


@dataclass(frozen=True)
class DisplayOptions:
    """Shared display settings of every map view (hashable: part of figure caches)."""

    cmap: str = "auto"
    opacity: float = 0.75  # opacity of the strongest effect; weaker effects are fainter
    normalisation: str = "raw"
    percentile: float = 99.0
    signed: bool = True  # False: only the part that supports the class

    def __post_init__(self):
        if self.cmap in _RETIRED:
            object.__setattr__(self, "cmap", _RETIRED[self.cmap])
        if self.cmap not in COLORMAPS:
            raise DisplasiaError(f"Unknown colour map '{self.cmap}': choose one of {', '.join(COLORMAPS)}.")
        if self.normalisation not in NORMALISATIONS:
            raise DisplasiaError(f"Unknown normalisation '{self.normalisation}'.")
        if not 0.0 <= self.opacity <= 1.0 or not 50.0 <= self.percentile <= 100.0:
            raise DisplasiaError("Opacity must be within [0, 1] and the percentile within [50, 100].")


# ---------------------------------------------------------------------------------------
# Colour ramps


def lab_to_srgb(lab) -> np.ndarray:
    """CIELAB (D65) to sRGB in [0, 1], clipped to the gamut; ``(..., 3)``.

    >>> lab_to_srgb([100.0, 0.0, 0.0]).round(3).tolist()
    [1.0, 1.0, 1.0]
    """
    lab = np.asarray(lab, dtype=np.float64)
    fy = (lab[..., 0] + 16.0) / 116.0
    fx, fz = fy + lab[..., 1] / 500.0, fy - lab[..., 2] / 200.0
    delta = 6.0 / 29.0

    def finv(t):
        return np.where(t > delta, t ** 3, 3 * delta ** 2 * (t - 4.0 / 29.0))

    xyz = np.stack([0.95047 * finv(fx), finv(fy), 1.08883 * finv(fz)], axis=-1)
    matrix = np.array([[3.2404542, -1.5371385, -0.4985314],
                       [-0.9692660, 1.8760108, 0.0415560],
                       [0.0556434, -0.2040259, 1.0572252]])
    linear = np.clip(xyz @ matrix.T, 0.0, 1.0)
    return np.clip(np.where(linear <= 0.0031308, 12.92 * linear, 1.055 * linear ** (1 / 2.4) - 0.055), 0.0, 1.0)


#: CIELAB ends of the diverging ramp: same lightness, opposite sides of the blue-yellow axis,
#: about the same distance (Delta E 74-75) from the near-white centre.
_OPPOSES_LAB = (45.0, 10.0, -52.0)  # blue
_SUPPORTS_LAB = (45.0, 28.0, 46.0)  # burnt orange
_CENTRE_LAB = (97.0, 0.0, 0.0)


def diverging_ramp(n: int = 256) -> np.ndarray:
    """``(n, 3)`` sRGB in [0, 1]: blue (opposes) - white (no effect) - orange (supports).

    Each arm is a straight line in CIELAB, so equal steps of value are equal steps of
    perceived colour, and lightness rises monotonically to the centre.

    >>> ramp = diverging_ramp(5)
    >>> ramp.shape, bool(ramp[2].min() > 0.95)
    ((5, 3), True)
    """
    t = np.linspace(-1.0, 1.0, n)[:, None]
    centre, low, high = (np.asarray(c, dtype=np.float64) for c in (_CENTRE_LAB, _OPPOSES_LAB, _SUPPORTS_LAB))
    lab = np.where(t < 0, centre + (-t) * (low - centre), centre + t * (high - centre))
    return lab_to_srgb(lab)


def ramp(name: str, n: int = 256) -> np.ndarray:
    """``(n, 3)`` sRGB in [0, 1] of a colour map name of :data:`COLORMAPS` (not "auto")."""
    if name == "blue-orange":
        return diverging_ramp(n)
    from matplotlib import colormaps

    return np.asarray(colormaps[name](np.linspace(0.0, 1.0, n))[:, :3], dtype=np.float64)


def plotly_colorscale(name: str, stops: int = 11) -> list:
    """The ramp as a plotly colour scale ``[[0, "rgb(...)"], ..., [1, "rgb(...)"]]``."""
    colours = np.round(ramp(name, stops) * 255).astype(int)
    return [[i / (stops - 1), f"rgb({r},{g},{b})"] for i, (r, g, b) in enumerate(colours)]


# ---------------------------------------------------------------------------------------
# What a map means: sign and units


@dataclass(frozen=True)
class Units:
    """How one map's values read: colour bar title, hover wording, negligible threshold.

    ``quantity`` is the score a perturbation changes ("P(normal)", "logit of normal"), or
    "" when the values have no score units (gradients, CAMs, activations); ``space`` is
    "probability", "logit" or "".
    """

    title: str
    hover: str
    quantity: str = ""
    space: str = ""
    negligible: float | None = None
    region: str = "place"

    def effect_text(self, value: float) -> str:
        """One sentence for one value, in the target's own units.

        >>> units_for("supports", "perturbation", "normal", space="probability").effect_text(0.4)
        'hiding this place lowers P(normal) by 0.4'
        """
        if not self.quantity:
            return f"{self.hover} {value:.3g}"
        verb = "lowers" if value >= 0 else "raises"
        return f"hiding this {self.region} {verb} {self.quantity} by {abs(value):.3g}"


def score_quantity(target: str, space: str) -> str:
    """'P(normal)' or 'logit of normal' (log-odds)."""
    return f"P({target})" if space == "probability" else f"logit of {target}"


def units_for(sign: str, family: str, target: str, *, space: str = "", region: str = "place") -> Units:
    """The :class:`Units` of a map from its registry sign and family and its score space.

    >>> units_for("magnitude", "gradient", "normal").title
    '|gradient| of the logit (magnitude, same for both classes)'
    >>> units_for("supports", "perturbation", "dysplastic", space="logit").title
    'drop in logit of dysplastic when hidden (log-odds)'
    """
    if family == "perturbation" and sign == "supports":
        space = space or "probability"
        quantity = score_quantity(target, space)
        unit = "probability" if space == "probability" else "log-odds"
        negligible = NEGLIGIBLE_PROBABILITY if space == "probability" else NEGLIGIBLE_LOGIT
        return Units(f"drop in {quantity} when hidden ({unit})", f"drop in {quantity}", quantity, space,
                     negligible, region)
    if family == "gradient":
        if sign == "magnitude":
            return Units("|gradient| of the logit (magnitude, same for both classes)", "|gradient|")
        return Units(f"gradient x input (logit units, + supports {target})", "gradient x input")
    if family == "cam":
        # Score-CAM weighs channels by a score, the gradient CAMs by gradients: values of the
        # two kinds differ by orders of magnitude and never share a scale.
        if space:
            return Units(f"activation x {score_quantity(target, space)} ({'probability' if space == 'probability' else 'log-odds'}"
                         f" weights), + supports {target}", "score-weighted activation")
        return Units(f"activation x logit gradient (relative units), + supports {target}", "gradient-weighted activation")
    if family == "activation":
        return Units("activation", "activation")
    return Units("value", "value")


def spec_sign(spec, params=None) -> str:
    """The registry sign of a method with these parameters (``sign_for`` when it exists)."""
    sign_for = getattr(spec, "sign_for", None)
    return sign_for(params) if sign_for is not None else spec.sign


def to_evidence(values, sign: str, baseline: float) -> tuple[np.ndarray, str]:
    """A map under the one convention: a "score" map (the target's score with the place
    hidden) becomes the drop, baseline minus map, of sign "supports"; others stay.

    >>> v, sign = to_evidence(np.array([0.9, 0.5], np.float32), "score", 0.9)
    >>> [round(float(x), 3) for x in v], sign
    ([0.0, 0.4], 'supports')
    """
    data = np.asarray(values, dtype=np.float32)
    if sign == "score":
        return (np.float32(baseline) - data).astype(np.float32), "supports"
    return data, sign


def evidence(exp, index: int = 0, values=None) -> tuple[np.ndarray, str]:
    """The map of one explanation under the one convention, and its sign.

    ``values`` (an extra of ``exp``, a channel) is taken as it is.
    """
    from core.explain import get_method

    sign = spec_sign(get_method(exp.method), exp.params)
    if values is not None:
        return np.asarray(values, dtype=np.float32), ("magnitude" if sign == "score" else sign)
    return to_evidence(exp.maps[index], sign, float(extra(exp, "baseline_score", index, float(exp.baseline[index]))))


def units_of(exp, *, sign: str | None = None, region: str | None = None) -> Units:
    """:class:`Units` of an explanation's map (family from the registry, space from extras)."""
    from core.explain import get_method

    spec = get_method(exp.method)
    sign = sign or spec_sign(spec, exp.params)
    space = str(exp.extras.get("score_space", exp.params.get("score", ""))) or ""
    if spec.family == "perturbation" and not space:
        space = "probability"  # before score spaces existed, every perturbation map was in probability
    region = region or ("superpixel" if "labels" in exp.extras else "patch" if "window_scores" in exp.extras else "place")
    return units_for("supports" if sign == "score" else sign, spec.family, exp.target, space=space, region=region)


def extra(exp, name: str, index: int, default):
    """One image's value of a per-image extra of ``exp`` (``default`` when absent)."""
    if name not in exp.extras:
        return default
    value = np.asarray(exp.extras[name]).reshape(-1)
    return value[index] if len(value) > index else default


def is_saturated(exp, index: int = 0) -> bool:
    """The explanation worked in probability space on a cell whose probability is within
    1e-6 of 0 or 1 (``extras["saturated"]`` when the engine gives it)."""
    if "saturated" in exp.extras:
        return bool(extra(exp, "saturated", index, False))
    return False


# ---------------------------------------------------------------------------------------
# Scale and negligible/flat maps


@dataclass(frozen=True)
class Scale:
    """The colour range of one map: ``low``..``high`` on ramp ``cmap``; ``centre`` is the
    value drawn transparent (no effect), ``diverging`` says the scale is zero-centred."""

    low: float
    high: float
    cmap: str
    diverging: bool

    def fraction(self, values: np.ndarray) -> np.ndarray:
        """Position on the ramp in [0, 1]."""
        span = (self.high - self.low) or 1.0
        return np.clip((np.asarray(values, dtype=np.float64) - self.low) / span, 0.0, 1.0)

    def strength(self, values: np.ndarray) -> np.ndarray:
        """Size of the effect in [0, 1]: distance from zero (diverging) or from the low end."""
        if self.diverging:
            half = max(abs(self.low), abs(self.high)) or 1.0
            return np.clip(np.abs(np.asarray(values, dtype=np.float64)) / half, 0.0, 1.0)
        return self.fraction(values)


def shown_values(values: np.ndarray, sign: str, options: DisplayOptions) -> np.ndarray:
    """The values that get a colour: the positive part only when ``options.signed`` is off."""
    data = np.asarray(values, dtype=np.float64)
    if not options.signed and sign == "supports":
        data = np.maximum(data, 0.0)
    return data


def peak(values: np.ndarray, sign: str, options: DisplayOptions) -> float:
    """The value a zero-centred scale of this map would end at (max |value| or the percentile)."""
    data = np.abs(shown_values(values, sign, options))
    if not data.size:
        return 0.0
    if options.normalisation == "percentile":
        return float(np.percentile(data, options.percentile))
    return float(data.max())


def scale_for(values: np.ndarray, sign: str, options: DisplayOptions, *, limit: float | None = None) -> Scale:
    """The colour range of one map.

    ``limit`` (zero-centred modes only) replaces the map's own peak, e.g. the peak over a
    method family so that tiles share one scale. A map with negative values is always drawn
    diverging, even when it is a "magnitude" (a linear conv layer's activations).

    Examples
    --------
    >>> s = scale_for(np.array([[-2.0, 1.0], [0.0, 4.0]]), "supports", DisplayOptions())
    >>> s.low, s.high, s.cmap, s.diverging
    (-4.0, 4.0, 'blue-orange', True)
    >>> s = scale_for(np.array([[0.0, 3.0]]), "magnitude", DisplayOptions())
    >>> s.low, s.high, s.cmap
    (0.0, 3.0, 'viridis')
    >>> s = scale_for(np.array([[1.0, 3.0]]), "supports", DisplayOptions(normalisation="minmax"))
    >>> s.low, s.high, s.cmap, s.diverging
    (1.0, 3.0, 'viridis', False)
    """
    data = shown_values(values, sign, options)
    has_negative = bool(data.size and data.min() < 0)
    diverging = sign == "supports" or has_negative
    if options.normalisation == "minmax":  # a stretch is not zero-centred: sequential ramp
        cmap = options.cmap if options.cmap != "auto" else "viridis"
        low = float(data.min()) if data.size else 0.0
        high = float(data.max()) if data.size else 1.0
        return Scale(low, high if high > low else low + 1.0, cmap, False)
    cmap = options.cmap if options.cmap != "auto" else ("blue-orange" if diverging else "viridis")
    top = peak(values, sign, options) if limit is None else float(limit)
    top = top if top > 0 and np.isfinite(top) else 1.0
    if diverging:
        return Scale(-top, top, cmap, True)
    return Scale(0.0, top, cmap, False)


@dataclass(frozen=True)
class Assessment:
    """Is a map worth drawing? ``state`` is "ok", "negligible" or "flat"; ``message`` says
    why in plain words ("" when ok)."""

    state: str
    peak: float
    resolution: float
    message: str = ""


def float_resolution(reference: float, peak_value: float = 0.0) -> float:
    """:data:`FLAT_ULPS` float32 steps at the size of the scores a map was computed from.

    >>> float_resolution(1.0) == 4 * float(np.spacing(np.float32(1.0)))
    True
    """
    scale = max(abs(float(reference)), abs(float(peak_value)))
    return FLAT_ULPS * float(np.spacing(np.float32(scale)))


def assess(values: np.ndarray, units: Units, *, reference: float = 0.0) -> Assessment:
    """Flat (no information: variation within float resolution), negligible (the largest
    effect is below the units' threshold), or ok.

    ``reference`` is the size of the scores the map's values are differences of (the
    baseline score of a perturbation map): a probability map of a cell at P = 1.0 moves in
    steps of 6e-8, and those steps are noise, whatever a min-max stretch makes of them.

    Examples
    --------
    >>> u = units_for("supports", "perturbation", "normal", space="probability")
    >>> assess(np.array([0.0, 5.96e-8, -5.96e-8]), u, reference=1.0).state
    'flat'
    >>> assess(np.array([0.0, 3e-5]), u, reference=0.5).state
    'negligible'
    >>> assess(np.array([0.0, 0.2]), u, reference=0.5).state
    'ok'
    """
    data = np.asarray(values, dtype=np.float64)
    data = data[np.isfinite(data)]
    if not data.size:
        return Assessment("flat", 0.0, 0.0, "flat: the map has no finite values.")
    top = float(np.abs(data).max())
    spread = float(data.max() - data.min())
    resolution = float_resolution(reference, top)
    if spread <= resolution:
        what = "no effect anywhere" if top <= resolution else "the same value everywhere"
        return Assessment("flat", top, resolution,
                          f"Flat map: {what} (it varies by {spread:.2g}, within the float resolution "
                          f"{resolution:.1g} of its values); not stretched.")
    if units.negligible is not None and top < units.negligible:
        bound = _amount(units.negligible, units.space)
        return Assessment("negligible", top, resolution,
                          f"Negligible: no {units.region} changes {units.quantity} by more than {bound} "
                          f"(largest {_amount(top, units.space)}); drawn faint.")
    return Assessment("ok", top, resolution)


def _amount(value: float, space: str) -> str:
    """A probability as a percentage ('0.01%'), a logit as a number.

    >>> _amount(1e-4, "probability"), _amount(4e-4, "logit")
    ('0.01%', '0.0004')
    """
    return f"{value * 100:.2g}%" if space == "probability" else f"{value:.2g}"


# ---------------------------------------------------------------------------------------
# Drawing


def to_image_size(values: np.ndarray, shape) -> np.ndarray:
    """Resize a model-resolution map to an image of ``shape`` (H, W), bilinear."""
    height, width = int(shape[0]), int(shape[1])
    image = Image.fromarray(np.asarray(values, dtype=np.float32))
    return np.asarray(image.resize((width, height), Image.Resampling.BILINEAR), dtype=np.float32)


def block_mean(values: np.ndarray, side: int) -> np.ndarray:
    """The map averaged over blocks, at most ``side`` x ``side`` (hover grids)."""
    values = np.asarray(values, dtype=np.float32)
    h, w = values.shape
    if max(h, w) <= side:
        return values
    size = (max(1, round(w * side / max(h, w))), max(1, round(h * side / max(h, w))))
    return np.asarray(Image.fromarray(values).resize(size, Image.Resampling.BOX), dtype=np.float32)


def colorize(values: np.ndarray, scale: Scale) -> np.ndarray:
    """Values to RGB uint8 on the scale's ramp."""
    colours = ramp(scale.cmap, 256)
    index = np.round(scale.fraction(values) * 255).astype(np.intp)
    return (colours[index] * 255).round().astype(np.uint8)


def overlay(rgb: np.ndarray, values: np.ndarray, options: DisplayOptions, *, sign: str = "supports",
            scale: Scale | None = None, faint: bool = False) -> np.ndarray:
    """The map coloured and blended over the original cell, ``(H, W, 3)`` uint8.

    Opacity grows with the size of the effect (up to ``options.opacity``; the square root of
    its share of the scale on diverging scales): where nothing happens the cell shows unchanged. ``faint`` draws
    a negligible map at a quarter of that.
    """
    scale = scale or scale_for(values, sign, options)
    data = to_image_size(shown_values(values, sign, options), rgb.shape[:2])
    coloured = colorize(data, scale).astype(np.float32)
    strength = scale.strength(data)
    # Diverging: the square root lets weak effects show as pale tints; sequential ramps start
    # dark, so their opacity follows the value itself (the background stays clean).
    alpha = options.opacity * (np.sqrt(strength) if scale.diverging else strength) * (0.25 if faint else 1.0)
    alpha = alpha[..., None].astype(np.float32)
    blended = (1.0 - alpha) * rgb[..., :3].astype(np.float32) + alpha * coloured
    return np.clip(np.round(blended), 0, 255).astype(np.uint8)


def png_bytes(rgb: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.asarray(rgb, dtype=np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def webp_bytes(rgb: np.ndarray, *, max_side: int | None = None, quality: int = 88) -> bytes:
    """A compact lossy copy for the browser (about a tenth of the PNG); ``max_side`` shrinks it."""
    image = Image.fromarray(np.asarray(rgb, dtype=np.uint8))
    if max_side and max(image.size) > max_side:
        factor = max_side / max(image.size)
        image = image.resize((max(1, round(image.width * factor)), max(1, round(image.height * factor))),
                             Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    image.save(buffer, format="WEBP", quality=quality, method=4)
    return buffer.getvalue()


def webp_data_url(webp: bytes) -> str:
    """A ``data:`` URL of WebP bytes (:func:`webp_bytes`, thumbnails) for the browser."""
    import base64

    return "data:image/webp;base64," + base64.b64encode(webp).decode("ascii")


def superpixel_boundaries(image: np.ndarray, labels: np.ndarray, colour=(255, 255, 0)) -> np.ndarray:
    """``image`` (float [0, 1] or uint8) with superpixel boundaries drawn, uint8."""
    from skimage.segmentation import find_boundaries

    rgb = _as_uint8(image).copy()
    rgb[find_boundaries(labels, mode="inner")] = colour
    return rgb


#: The ends of the diverging ramp as uint8 colours: what "supports" and "opposes" look like.
SUPPORTS_RGB = tuple(int(round(c * 255)) for c in lab_to_srgb(_SUPPORTS_LAB))
OPPOSES_RGB = tuple(int(round(c * 255)) for c in lab_to_srgb(_OPPOSES_LAB))


def superpixel_evidence(image: np.ndarray, labels: np.ndarray, positive, negative, *, alpha: float = 0.55,
                        positive_colour=SUPPORTS_RGB, negative_colour=OPPOSES_RGB) -> np.ndarray:
    """Tint the superpixels that push towards the target (orange, as "supports" on every
    colour bar) and against it (blue)."""
    rgb = _as_uint8(image).astype(np.float32)
    for ids, colour in ((positive, positive_colour), (negative, negative_colour)):
        ids = [int(i) for i in np.asarray(ids).ravel() if i >= 0]
        region = np.isin(labels, ids)
        rgb[region] = (1 - alpha) * rgb[region] + alpha * np.asarray(colour, np.float32)
    return superpixel_boundaries(np.clip(np.round(rgb), 0, 255).astype(np.uint8), labels, colour=(250, 250, 250))


def _as_uint8(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.dtype == np.uint8:
        return image
    return np.clip(np.round(image * 255.0), 0, 255).astype(np.uint8)
