"""Registry of explanation methods: names, parameters and their ranges.

The dashboard, the CLI and the cache read this table; it imports nothing heavy, and each
method's module is imported only when the method runs.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass

from core.errors import DisplasiaError
from core.explain.base import Params


def _short(value) -> str:
    """A value as a user typed it, cut short (1e308 as an int has 309 digits).

    >>> _short(10 ** 40)
    '1e+40'
    """
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10 ** 12:
        return f"{float(value):.3g}"
    text = str(value)
    return text if len(text) <= 40 else text[:37] + "..."


@dataclass(frozen=True)
class Param:
    """One parameter of a method.

    ``kind`` is "int", "float", "choice" or "layer" (a layer name of the model; ``None``
    means the model's default layer). ``low``/``high`` bound numbers (inclusive).
    """

    name: str
    kind: str
    default: object
    help: str
    low: float | None = None
    high: float | None = None
    choices: tuple = ()
    optional: bool = False  # None is allowed (means "derived", e.g. stride = patch)

    def coerce(self, value, method: str):
        """Parse (CLI strings too) and range-check one value; DisplasiaError if invalid."""
        where = f"parameter '{self.name}' of {method}"
        if value is None or (isinstance(value, str) and value.lower() in ("none", "default", "")):
            if self.optional or self.default is None:
                return None
            return self.default
        if self.kind == "int":
            try:
                number = float(value)
            except (TypeError, ValueError):
                raise DisplasiaError(f"{where} must be a whole number, not '{_short(value)}'.") from None
            if number != number or number in (float("inf"), float("-inf")):
                raise DisplasiaError(f"{where} must be a finite whole number.")
            if isinstance(value, bool) or number != int(number):
                raise DisplasiaError(f"{where} must be a whole number, not '{_short(value)}'.")
            value = int(number)
        elif self.kind == "float":
            try:
                value = float(value)
            except (TypeError, ValueError):
                raise DisplasiaError(f"{where} must be a number, not '{_short(value)}'.") from None
            if value != value or value in (float("inf"), float("-inf")):
                raise DisplasiaError(f"{where} must be a finite number.")
        elif self.kind == "choice":
            value = str(value).lower()
            if value not in self.choices:
                raise DisplasiaError(f"{where} must be one of {', '.join(self.choices)}, not '{_short(value)}'.")
        elif self.kind == "layer":
            value = str(value)
        if self.low is not None and value < self.low:
            raise DisplasiaError(f"{where} is {_short(value)}; it must be at least {self.low:g}.")
        if self.high is not None and value > self.high:
            raise DisplasiaError(f"{where} is {_short(value)}; it must be at most {self.high:g}.")
        return value


#: What a map's values mean (``MethodSpec.sign``).
#: "supports": positive supports the explained class, negative opposes it (zero: no effect).
#: "magnitude": non-negative importance without a direction (e.g. |gradient|): the same for
#: both classes.
#: "score": the explained class's score with the place hidden; evidence is the baseline
#: minus the map. (No registered method returns such a map any more: occlusion's map is the
#: drop, "supports"; its raw score map is ``extras["occluded_score"]``.)
SIGNS = ("supports", "magnitude", "score")


@dataclass(frozen=True)
class MethodSpec:
    """A registered method: everything a consumer (page, CLI, summary, cache, tests) needs.

    Attributes
    ----------
    name, title, module, params, summary
        Registry name, display title, module with ``explain(model, images, target, **params)``,
        its :class:`Param` s and a one-line description.
    version : int
        The method's algorithm version; the one number in its cache keys and results.
    kind : {"image", "dataset"}
        "image": one map per cell; "dataset": needs many images (projection).
    needs_mask : bool
        Needs ``cell_mask=`` (background test).
    page : str or None
        Script of the dashboard page that explores it (``pages/x.py``).
    compare : bool
        Shown on the Compare page.
    precompute : bool
        Run by ``python -m core precompute`` when no ``--methods`` are given.
    localisation : bool
        In the summary's evidence tables (localisation, deletion/insertion, randomisation).
    sign : str
        What the map's values mean, one of :data:`SIGNS`.
    empty_positive_ok : bool
        An all-zero positive map is a real answer (nothing supports the class), not a failure.
    display_signed : bool
        Default display: both signs (True) or the positive part only.
    family : str
        Methods of one family share a colour scale on the Compare page ("gradient", "cam",
        "perturbation", "activation").
    reference : str
        The paper, for the README's method table.
    signed_param : str or None
        A "choice" parameter that switches a "magnitude" method to signed maps: with the
        value "yes" the map's sign is "supports" (see :meth:`sign_for`).
    """

    name: str
    title: str
    module: str
    params: tuple
    summary: str
    version: int = 1
    kind: str = "image"
    needs_mask: bool = False
    page: str | None = None
    compare: bool = False
    precompute: bool = False
    localisation: bool = False
    sign: str = "supports"
    empty_positive_ok: bool = False
    display_signed: bool = True
    family: str = ""
    reference: str = ""
    signed_param: str | None = None

    def __post_init__(self):
        if self.kind not in ("image", "dataset"):
            raise ValueError(f"{self.name}: kind must be 'image' or 'dataset'")
        if self.sign not in SIGNS:
            raise ValueError(f"{self.name}: sign must be one of {SIGNS}")

    def sign_for(self, params=None) -> str:
        """What the map's values mean with these parameters (one of :data:`SIGNS`).

        ``sign`` unless ``signed_param`` is set to "yes" (then "supports"): saliency's
        default |gradient| is a magnitude, its signed form supports the class.

        >>> spec = get_method("saliency")
        >>> spec.sign_for(), spec.sign_for({"signed": "yes"}), get_method("occlusion").sign_for()
        ('magnitude', 'supports', 'supports')
        """
        if self.signed_param is not None:
            values = self.validate(params)
            if values[self.signed_param] == "yes":
                return "supports"
        return self.sign

    def param(self, name: str) -> Param:
        for p in self.params:
            if p.name == name:
                return p
        known = ", ".join(p.name for p in self.params) or "none"
        raise DisplasiaError(f"{self.name} has no parameter '{name}' (known: {known}).")

    def defaults(self) -> Params:
        return Params({p.name: p.default for p in self.params})

    def validate(self, params=None) -> Params:
        """Fill defaults, coerce and range-check; unknown names raise DisplasiaError."""
        values = {p.name: p.default for p in self.params}
        for name, value in dict(params or {}).items():
            values[name] = self.param(name).coerce(value, self.name)
        return Params(values)

    def load(self):
        """Import and return the method's module (TensorFlow loads here, not before)."""
        return importlib.import_module(self.module)

    @property
    def per_cell(self) -> bool:
        """One map per cell from the image alone (no outline, no whole dataset)."""
        return self.kind == "image" and not self.needs_mask


_LAYER = Param("layer", "layer", None, "Layer to explain; empty = post-ReLU output of the last conv block.",
               optional=True)
_EVIDENCE = Param("evidence", "choice", "positive",
                  "positive: ReLU of the map, as in the papers (may be blank when nothing supports the class); "
                  "signed: keep negative values (evidence against the class).", choices=("positive", "signed"))
_SEED = Param("seed", "int", 0, "Random seed (same seed, same result).", 0, 2**31 - 1)
_SCORE = Param("score", "choice", "logit",
               "Score the map is measured in: logit = log-odds of the class (never saturates); probability = "
               "P(class), flat on cells the model is sure of (P = 1.0 in float32).", choices=("logit", "probability"))
_SIGNED = Param("signed", "choice", "no",
                "no: |gradient|, max over colour channels (the same map for both classes); yes: gradient x input "
                "summed over colour channels (+ supports the class, - opposes it).", choices=("no", "yes"))

_CAM = dict(kind="image", page="pages/cams.py", compare=True, precompute=True, localisation=True,
            empty_positive_ok=True, display_signed=False, family="cam")

METHODS = {spec.name: spec for spec in (
    MethodSpec("feature_maps", "Feature maps", "core.explain.feature_maps", (
        Param("layer", "layer", None, "Layer whose channel mean is the summary map; empty = CAM layer.",
              optional=True),
    ), "Activations of every conv/activation/pool layer, and each channel's mean.",
        page="pages/feature_maps.py", sign="magnitude", display_signed=False, family="activation"),
    MethodSpec("features", "Deep-feature projection", "core.explain.features", (
        Param("perplexity", "float", 30.0, "t-SNE perplexity (capped below the number of images).", 2, 100),
        _SEED,
    ), "Last pooling output of every image, projected to 2-D with t-SNE and PCA.", kind="dataset",
        page="pages/projection.py", precompute=True, sign="magnitude", family="activation",
        reference="van der Maaten & Hinton (2008), t-SNE"),
    MethodSpec("saliency", "Vanilla saliency", "core.explain.saliency", (_SIGNED,),
               "|gradient| of the target logit w.r.t. the pixels, max over colour channels (or signed).",
               version=2, page="pages/saliency.py", compare=True, precompute=True, localisation=True,
               sign="magnitude", signed_param="signed", display_signed=False, family="gradient",
               reference="Simonyan et al. (2014)"),
    MethodSpec("smoothgrad", "SmoothGrad", "core.explain.smoothgrad", (
        Param("samples", "int", 40, "Number of noisy copies (above 50 gains nothing).", 1, 500),
        Param("noise", "float", 0.15, "Noise sigma as a fraction of the image's value range.", 0.0, 1.0),
        _SEED, _SIGNED,
    ), "Saliency averaged over noisy copies of the image.", version=2, page="pages/saliency.py", compare=True,
        precompute=True, localisation=True, sign="magnitude", signed_param="signed", display_signed=False,
        family="gradient", reference="Smilkov et al. (2017)"),
    MethodSpec("occlusion", "Occlusion sensitivity", "core.explain.occlusion", (
        Param("patch", "int", 20, "Side of the square patch, pixels.", 1, 299),
        Param("stride", "int", None, "Step between patches; empty = patch size (no overlap).", 1, 299,
              optional=True),
        Param("fill", "choice", "mean", "Patch content: its own mean colour, grey (0.5) or blurred.",
              choices=("mean", "grey", "blur")),
        _SCORE,
    ), "Drop of the target's score when a patch hides each place.", version=2, page="pages/occlusion.py",
        compare=True, precompute=True, localisation=True, sign="supports", family="perturbation",
        reference="Zeiler & Fergus (2014)"),
    MethodSpec("lime", "LIME", "core.explain.lime", (
        Param("samples", "int", 700, "Number of random perturbations.", 10, 10000),
        Param("ratio", "float", 0.5, "Quickshift colour/space balance.", 0.0, 1.0),
        Param("kernel_size", "float", 2.0, "Quickshift Gaussian kernel width.", 0.5, 20),
        Param("max_dist", "float", 150.0, "Quickshift cut-off distance (study: text 100, code 150).", 1, 1000),
        Param("sigma", "float", 0.0, "Gaussian smoothing before quickshift.", 0.0, 10),
        Param("kernel_width", "float", 0.25, "Width of the exponential kernel on cosine distance.", 0.01, 10),
        Param("top_k", "int", 10, "Superpixels reported as top positive and top negative.", 1, 100),
        Param("fill", "choice", "mean", "Hidden superpixels: their mean colour, or grey (0.5).",
              choices=("mean", "grey")),
        _SEED, _SCORE,
        Param("stability_runs", "int", 3, "Perturbation seeds run to measure how stable the weights are "
              "(1 = no stability measure).", 1, 10),
    ), "Linear surrogate over superpixels switched on and off.", version=2, page="pages/lime.py", compare=True,
        precompute=True, localisation=True, family="perturbation", reference="Ribeiro et al. (2016)"),
    MethodSpec("gradcam", "Grad-CAM", "core.explain.gradcam", (_LAYER, _EVIDENCE),
               "Channels weighted by their mean gradient.", reference="Selvaraju et al. (2017)", **_CAM),
    MethodSpec("gradcam_pp", "Grad-CAM++", "core.explain.gradcam_pp", (_LAYER, _EVIDENCE),
               "Channels weighted by alpha-weighted positive gradients.",
               reference="Chattopadhay et al. (2018)", **_CAM),
    MethodSpec("scorecam", "Score-CAM", "core.explain.scorecam", (_LAYER, _EVIDENCE, _SCORE, Param(
        "weights", "choice", "increase", "increase: the masked image's score minus the unchanged image's (the "
        "paper's increase of confidence); score: the masked image's score alone.", choices=("increase", "score"))),
               "Channels weighted by the target's score on the image masked by each channel (no softmax).",
               version=2, reference="Wang et al. (2020)", **_CAM),
    MethodSpec("xgradcam", "XGrad-CAM", "core.explain.xgradcam", (_LAYER, _EVIDENCE),
               "Channels weighted by the activation-weighted mean gradient.", reference="Fu et al. (2020)", **_CAM),
    MethodSpec("layercam", "LayerCAM", "core.explain.layercam", (_LAYER, _EVIDENCE),
               "Every activation weighted by its own positive gradient.", reference="Jiang et al. (2021)", **_CAM),
    MethodSpec("tcav", "Concept sensitivity (TCAV)", "core.concepts.method", (
        Param("layer", "layer", None, "Layer of the concept directions; empty = post-ReLU output of the last conv "
              "block.", optional=True),
        Param("cells", "int", 20, "Generated cells on each side of a concept (and twice as many random cells).", 4,
              200),
        Param("runs", "int", 20, "CAVs per concept and random CAVs for the t-test (the paper: at least 20).", 2, 100),
        _SEED,
    ), "How often moving a cell's activations towards a morphological concept raises the class logit.",
        kind="dataset", page="pages/concepts.py", sign="magnitude", family="concept",
        reference="Kim et al. (2018)"),
    MethodSpec("background", "Background test", "core.explain.background", (
        Param("colour", "choice", "median", "Uniform background: median or mean of the pixels outside the cell.",
              choices=("median", "mean")),
    ), "Score with everything outside the cell replaced by one uniform colour.", needs_mask=True,
        page="pages/background.py", sign="magnitude", display_signed=False, family="perturbation"),
)}


def method_names(**where) -> tuple:
    """Registry names in order, optionally only those whose attributes equal ``where``.

    >>> method_names(family="cam")
    ('gradcam', 'gradcam_pp', 'scorecam', 'xgradcam', 'layercam')
    """
    return tuple(name for name, spec in METHODS.items()
                 if all(getattr(spec, attr) == value for attr, value in where.items()))


def get_method(name: str) -> MethodSpec:
    try:
        return METHODS[str(name)]
    except KeyError:
        raise DisplasiaError(f"Unknown explanation method '{name}'; known: {', '.join(METHODS)}.") from None
