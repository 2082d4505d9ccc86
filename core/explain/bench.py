"""``python -m core bench explain``: explanation speed against the reference libraries.

Every line prints the project's time, the reference's time measured in the same run, and
their ratio. Nothing here asserts: speed is reported, not tested. The study's occlusion
loop (one ``model.predict`` per occluded image) takes minutes for 3,600 windows, so a
subset of its calls is timed and extrapolated, which the line says.
"""
from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time

import numpy as np

SPEED_GOALS = {
    "occlusion vs study loop": 20.0,  # at least this much faster
    "occlusion vs batched forwards": 1.5,  # at most this much slower
    "smoothgrad": 4.0,
    "lime": 4.0,
    "scorecam": 3.0,
}
PATCH = 5


def _image(size):
    """A bundled demo cell if there is one, else a synthetic cell (core.synth)."""
    from core.config import DEMO_DIR
    from core.preprocess import load_input, to_model_input

    demo = sorted(DEMO_DIR.glob("*.jpg")) if DEMO_DIR.is_dir() else []
    if demo:
        return load_input(demo[0], size), demo[0].name
    from core.synth import generate_cell

    return to_model_input(generate_cell(0, 0).rgb, size), "synthetic cell (core.synth seed 0)"


def _timed(fn):
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def _best(fn, repeats):
    fn()
    return min(_timed(fn)[0] for _ in range(max(1, repeats)))


def _line(name, ours, ref, ref_label, note=""):
    ratio = ref / ours
    print(f"{name:34s} project {ours:8.3f} s | {ref_label} {ref:8.3f} s | ratio {ratio:6.1f}x{note}", flush=True)
    return ratio


def occlusion_memory(model_args) -> dict:
    """Peak memory of a 5 px occlusion map, measured in a fresh process."""
    code = (
        "import json, resource, sys, tracemalloc, numpy as np\n"
        "from core.bench import bench_model\n"
        "from core.explain.bench import _image, _args, _peak_rss_mb\n"
        "from core.explain import occlusion\n"
        f"loaded = bench_model(_args({model_args!r}))\n"
        "image, _ = _image(loaded.description.image_size)\n"
        "loaded.score_fn(image[None])\n"
        "before = _peak_rss_mb()\n"
        "tracemalloc.start()\n"
        f"occlusion.explain(loaded, image[None], 'dysplastic', patch={PATCH})\n"
        "_, peak = tracemalloc.get_traced_memory()\n"
        "after = _peak_rss_mb()\n"
        "print(json.dumps({'rss_before_mb': before, 'rss_peak_mb': after,"
        " 'python_peak_mb': peak / 2**20}))\n"
    )
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=900)
    if out.returncode != 0:
        return {"error": out.stderr.strip().splitlines()[-1] if out.stderr.strip() else "failed"}
    return json.loads(out.stdout.strip().splitlines()[-1])


def _peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM; ru_maxrss would include the parent's
    memory at fork time on Linux)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class _args:
    """The bench's model arguments, picklable into a subprocess."""

    def __init__(self, values):
        self.model, self.weights = values


def run(args) -> int:
    from core.bench import bench_model
    from core.explain import lime as project_lime
    from core.explain import occlusion, scorecam, smoothgrad
    from core.explain._model import handle_for

    model_args = (getattr(args, "model", None), getattr(args, "weights", None))
    repeats = max(1, int(getattr(args, "repeats", 3) or 3))
    loaded = bench_model(_args(model_args))
    handle = handle_for(loaded)
    size = loaded.description.image_size
    image, image_name = _image(size)
    x = image[None]
    target = "dysplastic"
    print(f"model: {loaded.source}; image: {image_name} {size}; {os.cpu_count()} CPUs; "
          f"load average {os.getloadavg()[0]:.2f}; best of {repeats} for the project", flush=True)
    ratios = {}

    # ---------------------------------------------------------------- occlusion
    windows = int(np.ceil(size[0] / PATCH) * np.ceil(size[1] / PATCH))
    ours = _best(lambda: occlusion.explain(loaded, x, target, patch=PATCH), repeats)
    model = loaded.model

    def study_call(k):
        iy, ix = divmod(k, int(np.ceil(size[1] / PATCH)))
        occluded = image.copy()
        y, xx = iy * PATCH, ix * PATCH
        patch = occluded[y:y + PATCH, xx:xx + PATCH]
        patch[...] = patch.reshape(-1, 3).mean(axis=0)
        return model.predict(occluded[None], verbose=0)

    subset = 100
    study_call(0)
    t_subset, _ = _timed(lambda: [study_call(k * (windows // subset)) for k in range(subset)])
    study = t_subset * windows / subset
    ratios["occlusion vs study loop"] = _line(
        f"occlusion {PATCH} px ({windows} windows)", ours, study, "study loop",
        f"  (model.predict per image: {subset} calls timed, x{windows / subset:.0f} extrapolated)")
    batch = np.repeat(x, 64, axis=0)
    per_image = {}
    for bs in (8, 16, 32, 64):
        per_image[bs] = _best(lambda: handle.p_normal(batch[:bs]), 3) / bs
    best_bs = min(per_image, key=per_image.get)
    chunks = [batch[:best_bs]] * (windows // best_bs) + [batch[:windows % best_bs]] * bool(windows % best_bs)
    forwards = _best(lambda: [handle.p_normal(c) for c in chunks], 1)
    ratio = _line(f"occlusion {PATCH} px vs forwards", ours, forwards, f"{windows} fwd @bs{best_bs}")
    ratios["occlusion vs batched forwards"] = 1 / ratio

    # ---------------------------------------------------------------- SmoothGrad
    from tf_keras_vis.saliency import Saliency
    from tf_keras_vis.utils.model_modifiers import ReplaceToLinear

    ours = _best(lambda: smoothgrad.explain(loaded, x, target, samples=40, noise=0.15), repeats)
    vis = Saliency(model, model_modifier=ReplaceToLinear(), clone=True)
    ref = _best(lambda: vis(lambda out: -out[:, 0], x, smooth_samples=40, smooth_noise=0.15), 1)
    ratios["smoothgrad"] = _line("smoothgrad N=40", ours, ref, "tf-keras-vis")

    # ---------------------------------------------------------------- LIME
    from lime.lime_image import LimeImageExplainer
    from lime.wrappers.scikit_image import SegmentationAlgorithm

    ours = _best(lambda: project_lime.explain(loaded, x, target, samples=700), repeats)

    def classifier(batch):
        p = model.predict(batch, verbose=0)[:, 0]
        return np.stack([1 - p, p], axis=1)

    def reference_lime():
        segmentation = SegmentationAlgorithm("quickshift", kernel_size=2, max_dist=150, ratio=0.5, rng=0)
        explainer = LimeImageExplainer(kernel_width=0.25, random_state=0)
        return explainer.explain_instance(image, classifier, labels=(0,), top_labels=None, hide_color=None,
                                          num_samples=700, segmentation_fn=segmentation, random_seed=0)

    import contextlib
    import io

    with contextlib.redirect_stderr(io.StringIO()):  # lime's tqdm bar
        ref, _ = _timed(reference_lime)
    ratios["lime"] = _line("lime 700 samples", ours, ref, "lime package")

    # ---------------------------------------------------------------- Score-CAM
    from tf_keras_vis.scorecam import Scorecam

    layer = loaded.description.cam_layer
    ours = _best(lambda: scorecam.explain(loaded, x, target), repeats)
    vis = Scorecam(model, clone=True)
    ref = _best(lambda: vis(lambda out: 1 - out[:, 0], x, penultimate_layer=layer,
                            seek_penultimate_conv_layer=False), 1)
    ratios["scorecam"] = _line(f"scorecam ({layer})", ours, ref, "tf-keras-vis")

    # ---------------------------------------------------------------- cache and memory
    import tempfile

    from core.cache import ExplanationCache
    from core.explain import compute

    with tempfile.TemporaryDirectory() as folder:
        cache = ExplanationCache(folder)
        compute("occlusion", loaded, x, target, params={"patch": PATCH}, cache=cache)
        hit = _best(lambda: compute("occlusion", loaded, x, target, params={"patch": PATCH}, cache=cache), 5)
        compute("feature_maps", loaded, x, target, cache=cache)
        hit_fm = _best(lambda: compute("feature_maps", loaded, x, target, cache=cache), 5)
    print(f"{'cache hit (occlusion / feature maps)':34s} {hit * 1000:8.1f} ms / {hit_fm * 1000:.1f} ms", flush=True)
    memory = occlusion_memory(model_args)
    if "error" in memory:
        print(f"occlusion {PATCH} px peak memory: could not measure ({memory['error']})")
    else:
        print(f"occlusion {PATCH} px peak memory: process RSS peak {memory['rss_peak_mb']:.0f} MB "
              f"(after loading TF and the model: {memory['rss_before_mb']:.0f} MB); "
              f"Python/NumPy allocations peak {memory['python_peak_mb']:.1f} MB (tracemalloc)")
    met = []
    for name, goal in SPEED_GOALS.items():
        value = ratios[name]
        ok = value <= goal if name == "occlusion vs batched forwards" else value >= goal
        met.append(f"{name}: {'met' if ok else 'MISSED'}")
    print("targets: " + "; ".join(met))
    print(f"load average at the end {os.getloadavg()[0]:.2f}; resource maxrss of this process "
          f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
    return 0
