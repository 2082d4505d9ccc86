"""Train the bundled demo DisplasiaNet on generated cells, and select the demo set.

``python -m core train-demo`` trains the exact published architecture
(:func:`core.architecture.displasianet`) on synthetic neutrophils from
:mod:`core.synth`, preprocessed exactly as at inference (decoded JPEG -> NEAREST
resize to 299 x 299 -> / 255, :func:`core.preprocess.to_model_input`), with fixed
seeds on the CPU. It writes the model twice, as Keras-2 JSON + H5 weights (how the
published model is distributed) and as ``.keras``, plus ``metrics.json`` measured on a
fresh, balanced test set of generated cells.

``python -m core build-demo`` scores generated cells with that model and writes the
56-cell demo set that mirrors the study set (23 + 23 correctly classified at the
study threshold, 5 + 5 misclassified), with ground truth and demo annotations.

TensorFlow is imported inside the functions only, so ``python -m core --help`` stays fast.
"""
from __future__ import annotations

import argparse
import json
import platform
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core import config
from core.errors import DisplasiaError
from core.synth import GENERATOR_VERSION, GENERATOR_VERSIONS, cell_features, render_cell

#: Seeds of the committed demo model; changing one changes the model.
TRAIN_SEED = 20261126
VALIDATION_SEED = 20261127
TEST_SEED = 20261128
INIT_SEED = 1234
DEFAULT_EPOCHS = 7
DEFAULT_N_TRAIN = 2400
DEFAULT_N_TEST = 600
DEFAULT_N_VALIDATION = 0
DEFAULT_BATCH = 32
DEFAULT_LEARNING_RATE = 1e-3
#: Loss weight of normal cells. The published model's ROC optimum is 0.979: normal cells
#: score very close to 1. Weighting normal cells up reproduces that on the demo model, so
#: the study threshold suits it too (the ROC-optimal threshold is still measured).
DEFAULT_NORMAL_WEIGHT = 8.0
PROBE_CELLS = 32


# --------------------------------------------------------------------------- data

def balanced_kind(index: int) -> str:
    """Even indices normal, odd dysplastic: test sets are exactly balanced."""
    return "normal" if index % 2 == 0 else "dysplastic"


def generate_set(seed: int, n: int, size=(299, 299), *, balanced: bool = True, progress=None,
                 version: str = GENERATOR_VERSION):
    """Render ``n`` cells of set ``seed`` and preprocess them like inference.

    Returns
    -------
    images : (n, H, W, 3) uint8 ndarray
        The NEAREST-resized decoded JPEGs; ``images / 255`` (float32) is exactly
        :func:`core.preprocess.to_model_input` of each cell. Kept as uint8 to hold
        thousands of cells in memory.
    labels : (n,) float32 ndarray
        1 normal, 0 dysplastic (the model's score is P(normal)).
    features : list of CellFeatures
    """
    from core.preprocess import to_model_input

    images = np.empty((n, int(size[0]), int(size[1]), 3), dtype=np.uint8)
    labels = np.empty(n, dtype=np.float32)
    features = []
    for i in range(n):
        f = cell_features(seed, i, balanced_kind(i) if balanced else "mixed")
        cell = render_cell(f, version=version)
        x = to_model_input(cell.rgb, size=size, interpolation="nearest")
        images[i] = np.rint(x * 255.0).astype(np.uint8)
        labels[i] = f.label
        features.append(f)
        if progress is not None and (i + 1) % 500 == 0:
            progress(i + 1, n)
    return images, labels, features


def as_model_input(images_u8: np.ndarray) -> np.ndarray:
    """uint8 batch -> float32 in [0, 1], bit-identical to ``to_model_input``."""
    return images_u8.astype(np.float32) / np.float32(255.0)


# --------------------------------------------------------------------------- metrics

def roc_auc(scores_dysplastic: np.ndarray, positive: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney U with mid-ranks for ties)."""
    s = np.asarray(scores_dysplastic, dtype=np.float64)
    pos = np.asarray(positive, dtype=bool)
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(s, kind="mergesort")
    ranks = np.empty(len(s), dtype=np.float64)
    sorted_s = s[order]
    # Mid-ranks: tied scores share the mean of their ranks.
    _, first, counts = np.unique(sorted_s, return_index=True, return_counts=True)
    mid = first + (counts - 1) / 2.0 + 1.0
    ranks[order] = np.repeat(mid, counts)
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def confusion(scores: np.ndarray, labels: np.ndarray, threshold: float) -> dict:
    """Accuracy, sensitivity and specificity with *dysplastic* as the positive class.

    A cell is called dysplastic when its score P(normal) is below ``threshold``.
    """
    scores = np.asarray(scores, dtype=np.float64)
    dysplastic = np.asarray(labels) < 0.5
    called = scores < threshold
    tp = int((called & dysplastic).sum())
    tn = int((~called & ~dysplastic).sum())
    fp = int((called & ~dysplastic).sum())
    fn = int((~called & dysplastic).sum())
    n = len(scores)
    return {
        "threshold": float(threshold),
        "accuracy": (tp + tn) / n if n else float("nan"),
        "sensitivity": tp / (tp + fn) if tp + fn else float("nan"),
        "specificity": tn / (tn + fp) if tn + fp else float("nan"),
        "tp": tp, "tn": tn, "fp": fp, "fn": fn,
    }


def youden_threshold(scores: np.ndarray, labels: np.ndarray) -> float:
    """ROC-optimal threshold (max sensitivity + specificity - 1) on P(normal).

    Candidate thresholds lie half-way between consecutive distinct scores, so the
    rule "score < threshold means dysplastic" splits the test set exactly as the ROC
    point it came from.
    """
    s = np.unique(np.asarray(scores, dtype=np.float64))
    if len(s) == 1:
        return float(s[0])
    candidates = np.concatenate([[s[0] - 1e-9], (s[:-1] + s[1:]) / 2.0, [s[-1] + 1e-9]])
    scores = np.asarray(scores, dtype=np.float64)
    dysplastic = np.asarray(labels) < 0.5
    called = scores[None, :] < candidates[:, None]
    sens = (called & dysplastic).sum(1) / max(int(dysplastic.sum()), 1)
    spec = (~called & ~dysplastic).sum(1) / max(int((~dysplastic).sum()), 1)
    return float(candidates[int(np.argmax(sens + spec - 1.0))])


def evaluate(scores: np.ndarray, labels: np.ndarray) -> dict:
    """Test-set metrics: AUC, Youden threshold and the confusion at that threshold."""
    threshold = youden_threshold(scores, labels)
    at_youden = confusion(scores, labels, threshold)
    return {
        "roc_auc": roc_auc(-np.asarray(scores, dtype=np.float64), np.asarray(labels) < 0.5),
        "youden_threshold": threshold,
        "accuracy": at_youden["accuracy"],
        "sensitivity": at_youden["sensitivity"],
        "specificity": at_youden["specificity"],
        "at_youden": at_youden,
        "at_0.5": confusion(scores, labels, 0.5),
        "at_default_threshold": confusion(scores, labels, config.DEFAULT_THRESHOLD),
    }


# --------------------------------------------------------------------------- real cells

def real_normal_share(loaded, real_dir, *, threshold: float = config.DEFAULT_THRESHOLD,
                      held_out_only: bool = True) -> dict:
    """Share of real NORMAL cells in ``real_dir`` that ``loaded`` calls normal at ``threshold``.

    The model never trains on real cells; this measures whether what it learnt from
    synthetic cells carries over. By default only the cells the generator was not tuned
    on count (every fourth by sorted name, :func:`core.synth.realism.is_held_out`).
    Images are read exactly as at inference (NEAREST resize, / 255).
    """
    from core.predict import predict_scores
    from core.preprocess import load_rgb, to_model_input
    from core.synth.realism import image_paths, is_held_out

    paths = [p for i, p in enumerate(image_paths(real_dir)) if is_held_out(i) or not held_out_only]
    h, w = loaded.description.input_shape[:2]
    batch = np.stack([to_model_input(load_rgb(p), size=(h, w), interpolation="nearest") for p in paths])
    scores = np.asarray(predict_scores(loaded, batch), dtype=np.float64)
    return {"n": len(paths), "held_out_only": held_out_only, "threshold": float(threshold),
            "called_normal": round(float(np.mean(scores >= threshold)), 4),
            "median_score": round(float(np.median(scores)), 4),
            "scores": {p.name: round(float(v), 6) for p, v in zip(paths, scores)}}


# --------------------------------------------------------------------------- training

@dataclass(frozen=True)
class TrainSettings:
    epochs: int = DEFAULT_EPOCHS
    n_train: int = DEFAULT_N_TRAIN
    n_validation: int = DEFAULT_N_VALIDATION
    n_test: int = DEFAULT_N_TEST
    batch_size: int = DEFAULT_BATCH
    learning_rate: float = DEFAULT_LEARNING_RATE
    normal_weight: float = DEFAULT_NORMAL_WEIGHT
    input_size: int = 299
    threads: int = 2
    #: Turn on TensorFlow's deterministic ops (process-wide: off in tests that share a process).
    deterministic: bool = True
    train_seed: int = TRAIN_SEED
    validation_seed: int = VALIDATION_SEED
    test_seed: int = TEST_SEED
    init_seed: int = INIT_SEED
    generator: str = GENERATOR_VERSION


def _configure_tensorflow(settings: TrainSettings):
    import keras
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(settings.threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:
        pass  # already initialised in this process (tests): keep its setting
    keras.utils.set_random_seed(settings.init_seed)
    if settings.deterministic:
        tf.config.experimental.enable_op_determinism()
    return keras


def _flip_batch(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Random horizontal/vertical flips: a cell has no preferred orientation."""
    out = x.copy()
    h = rng.random(len(x)) < 0.5
    v = rng.random(len(x)) < 0.5
    out[h] = out[h, :, ::-1]
    out[v] = out[v, ::-1]
    return out


def _colour_jitter(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Per-image, per-channel gain (SD 3 %) and offset (SD 0.01) on float images in [0, 1]:
    white balance and exposure differ between microscopes more than the generator varies
    them, and the class must not hang on them."""
    gain = rng.normal(1.0, 0.03, (len(x), 1, 1, 3)).astype(np.float32)
    offset = rng.normal(0.0, 0.01, (len(x), 1, 1, 1)).astype(np.float32)
    return np.clip(x * gain + offset, 0.0, 1.0)


def _centre_conv_kernels(model) -> None:
    """Give every convolution filter a zero-mean kernel, keeping its spread.

    Inputs are mostly bright cream background in [0, 1]; with plain Glorot kernels each
    filter responds chiefly to brightness, half of them are dead everywhere after the
    ReLU and all cells look alike to the dense layers, so training sits at loss ln 2 for
    an epoch or more. Zero-mean kernels respond to contrast (granules, chromatin, edges)
    from the first step. Only the initial values change, not the architecture.
    """
    for layer in model.layers:
        if type(layer).__name__ != "Conv2D":
            continue
        kernel, bias = layer.get_weights()
        centred = kernel - kernel.mean(axis=(0, 1, 2), keepdims=True)
        centred *= kernel.std() / max(float(centred.std()), 1e-12)
        layer.set_weights([centred.astype(kernel.dtype), bias])


def train_model(train_images, train_labels, settings: TrainSettings, *, validation=None, log=print):
    """Fit DisplasiaNet on uint8 images; returns (model, history dict)."""
    keras = _configure_tensorflow(settings)
    from core.architecture import displasianet

    size = settings.input_size
    model = displasianet((size, size, 3), seed=settings.init_seed)
    _centre_conv_kernels(model)
    model.compile(optimizer=keras.optimizers.Adam(settings.learning_rate),
                  loss="binary_crossentropy", metrics=["accuracy"])
    rng = np.random.default_rng(settings.init_seed)
    history: dict[str, list] = {"loss": [], "accuracy": [], "val_accuracy": [], "seconds": [],
                                "learning_rate": [], "val_auc": [], "val_youden_threshold": []}
    n = len(train_images)
    y_all = train_labels.reshape(-1, 1).astype(np.float32)
    for epoch in range(settings.epochs):
        t0 = time.perf_counter()
        # Full rate for the first half, then halved every epoch: the last epochs settle.
        lr = settings.learning_rate * 0.5 ** max(0, epoch + 1 - (settings.epochs + 1) // 2)
        model.optimizer.learning_rate.assign(lr)
        history["learning_rate"].append(lr)
        order = rng.permutation(n)
        losses, accs = [], []
        for start in range(0, n, settings.batch_size):
            idx = np.sort(order[start:start + settings.batch_size])
            xb = _colour_jitter(as_model_input(_flip_batch(train_images[idx], rng)), rng)
            yb = y_all[idx]
            weights = np.where(yb[:, 0] > 0.5, settings.normal_weight, 1.0).astype(np.float32)
            loss, acc = model.train_on_batch(xb, yb, sample_weight=weights)
            losses.append(float(loss))
            accs.append(float(acc))
        history["loss"].append(float(np.mean(losses[-max(len(losses) // 4, 1):])))
        history["accuracy"].append(float(np.mean(accs[-max(len(accs) // 4, 1):])))
        val = float("nan")
        if validation is not None:
            scores = predict_scores_u8(model, validation[0])
            val_metrics = evaluate(scores, validation[1])
            val = val_metrics["accuracy"]
            history["val_auc"].append(val_metrics["roc_auc"])
            history["val_youden_threshold"].append(val_metrics["youden_threshold"])
        history["val_accuracy"].append(val)
        history["seconds"].append(time.perf_counter() - t0)
        log(f"epoch {epoch + 1}/{settings.epochs}: loss {history['loss'][-1]:.4f} "
            f"acc {history['accuracy'][-1]:.4f} val_acc(Youden) {val:.4f} ({history['seconds'][-1]:.0f} s)")
    return model, history


def predict_scores_u8(model, images_u8: np.ndarray, batch_size: int = 64) -> np.ndarray:
    """P(normal) for a uint8 image batch, in fixed-size chunks (memory-bounded)."""
    out = []
    for start in range(0, len(images_u8), batch_size):
        out.append(np.asarray(model(as_model_input(images_u8[start:start + batch_size]), training=False)).reshape(-1))
    return np.concatenate(out).astype(np.float32) if out else np.zeros(0, np.float32)


def save_model(model, out_dir: Path) -> dict[str, Path]:
    """Write the model as Keras-2 JSON + H5 weights and as ``.keras``; returns the paths."""
    from core.model_io import save_keras2

    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {
        "json": out_dir / config.DEMO_MODEL_JSON.name,
        "weights": out_dir / config.DEMO_MODEL_WEIGHTS.name,
        "keras": out_dir / config.DEMO_MODEL_KERAS.name,
    }
    save_keras2(model, paths["json"], paths["weights"])
    model.save(paths["keras"])
    return paths


def train_demo(out_dir: Path, settings: TrainSettings = TrainSettings(), *, real_cells=None, log=print) -> dict:
    """Generate, train, evaluate and save; returns the metrics written to metrics.json.

    ``real_cells``: an optional folder of real NORMAL neutrophils; the share of its
    held-out cells the model calls normal is recorded (the model never trains on them).
    """
    import keras
    import tensorflow as tf

    t_start = time.perf_counter()
    size = (settings.input_size, settings.input_size)
    log(f"generating {settings.n_train} training cells (seed {settings.train_seed})...")
    t0 = time.perf_counter()
    x_train, y_train, _ = generate_set(settings.train_seed, settings.n_train, size,
                                       progress=lambda d, n: log(f"  {d}/{n}"), version=settings.generator)
    validation = None
    if settings.n_validation:
        xv, yv, _ = generate_set(settings.validation_seed, settings.n_validation, size, version=settings.generator)
        validation = (xv, yv)
    generation_s = time.perf_counter() - t0
    log(f"generated in {generation_s:.0f} s ({1000 * generation_s / (settings.n_train + settings.n_validation):.1f} ms/cell)")

    t0 = time.perf_counter()
    model, history = train_model(x_train, y_train, settings, validation=validation, log=log)
    training_s = time.perf_counter() - t0
    del x_train

    log(f"generating {settings.n_test} fresh test cells (seed {settings.test_seed})...")
    x_test, y_test, test_features = generate_set(settings.test_seed, settings.n_test, size, version=settings.generator)
    scores = predict_scores_u8(model, x_test)
    metrics = evaluate(scores, y_test)

    out_dir = Path(out_dir)
    paths = save_model(model, out_dir)
    # Both saved formats must give the model's own outputs.
    from core.model_io import load_model

    probe = as_model_input(x_test[:16])
    reference = np.asarray(model(probe, training=False)).reshape(-1)
    max_diff = {}
    for name, loaded in (("keras2_json_h5", load_model(paths["json"], paths["weights"])),
                         ("keras", load_model(paths["keras"]))):
        got = np.asarray(loaded.model(probe, training=False)).reshape(-1)
        max_diff[name] = float(np.abs(got - reference).max())
    hard = [i for i, f in enumerate(test_features) if f.kind == "dysplastic" and len(f.abnormal_features) == 1]
    record = {
        "model": "DisplasiaNet (exact architecture), demo weights trained on synthetic cells",
        "generator_version": settings.generator,
        "positive_class": "dysplastic",
        "score": "P(normal); score < threshold means dysplastic",
        "test_set": {"n": int(settings.n_test), "normal": int((y_test > 0.5).sum()),
                     "dysplastic": int((y_test < 0.5).sum()), "seed": settings.test_seed,
                     "single_feature_dysplastic": len(hard),
                     "single_feature_dysplastic_accuracy": (
                         confusion(scores[hard], y_test[hard], metrics["youden_threshold"])["accuracy"]
                         if hard else None)},
        **metrics,
        "training": {
            "n_train": settings.n_train, "n_validation": settings.n_validation, "epochs": settings.epochs,
            "batch_size": settings.batch_size, "learning_rate": settings.learning_rate, "normal_class_weight": settings.normal_weight,
            "input_size": [settings.input_size, settings.input_size, 3],
            "preprocessing": "decoded JPEG, PIL NEAREST resize, /255 (core.preprocess.to_model_input)",
            "augmentation": "random horizontal and vertical flips; per-image colour gain (SD 3 %) and offset (SD 0.01)",
            "initialisation": "Glorot uniform (seeded), conv kernels centred to zero mean",
            "optimizer": "Adam, rate halved each epoch after the first half", "loss": "binary cross-entropy",
            "seeds": {"train": settings.train_seed, "validation": settings.validation_seed,
                      "test": settings.test_seed, "init": settings.init_seed},
            "threads": settings.threads,
            "generation_seconds": round(generation_s, 1),
            "training_seconds": round(training_s, 1),
            "total_seconds": round(time.perf_counter() - t_start, 1),
            "history": history,
        },
        "reload_max_abs_diff": max_diff,
        # The first test cells' scores, so a test can check the committed files reproduce them.
        "probe": {"seed": settings.test_seed, "indices": list(range(min(PROBE_CELLS, len(scores)))),
                  "scores": [round(float(v), 7) for v in scores[:PROBE_CELLS]]},
        "files": {k: p.name for k, p in paths.items()},
        "real_normal_cells": _real_share_record(paths, real_cells, log),
        "versions": {"tensorflow": tf.__version__, "keras": keras.__version__,
                     "numpy": np.__version__, "python": platform.python_version()},
    }
    (out_dir / config.DEMO_METRICS.name).write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    log(f"test set ({settings.n_test} cells): accuracy {metrics['accuracy']:.4f}, sensitivity "
        f"{metrics['sensitivity']:.4f}, specificity {metrics['specificity']:.4f}, AUC {metrics['roc_auc']:.4f}, "
        f"Youden threshold {metrics['youden_threshold']:.4f}; trained in {training_s:.0f} s")
    return record


def _real_share_record(paths, real_cells, log):
    if real_cells is None:
        return None
    from core.model_io import load_model

    share = real_normal_share(load_model(paths["json"], paths["weights"]), real_cells)
    log(f"held-out real normal cells called normal at {share['threshold']}: {share['called_normal']:.3f} "
        f"of {share['n']} (median score {share['median_score']:.3f})")
    return {"source": "PBC data set (Acevedo et al. 2020, CC BY 4.0), normal neutrophils; every fourth by "
                      "sorted name, never used for training or generator tuning",
            **{k: v for k, v in share.items() if k != "scores"}}


# --------------------------------------------------------------------------- CLI

def add_parsers(subparsers) -> None:
    p = subparsers.add_parser(
        "train-demo",
        help="train the demo DisplasiaNet on generated cells (CPU, fixed seeds)",
        description="Train the exact DisplasiaNet architecture on synthetic neutrophils generated on the "
                    "fly and write it as Keras-2 JSON + H5 weights, as .keras, and metrics.json measured "
                    "on a fresh generated test set.",
    )
    p.add_argument("--out", type=Path, default=config.MODEL_DIR, help=f"output folder (default {config.MODEL_DIR})")
    p.add_argument("--epochs", type=int, default=DEFAULT_EPOCHS)
    p.add_argument("--n-train", type=int, default=DEFAULT_N_TRAIN)
    p.add_argument("--n-validation", type=int, default=DEFAULT_N_VALIDATION)
    p.add_argument("--n-test", type=int, default=DEFAULT_N_TEST)
    p.add_argument("--batch-size", type=int, default=DEFAULT_BATCH)
    p.add_argument("--threads", type=int, default=2, help="TensorFlow CPU threads (default 2)")
    p.add_argument("--generator", choices=GENERATOR_VERSIONS, default=GENERATOR_VERSION,
                   help=f"generator version of the training and test cells (default {GENERATOR_VERSION})")
    p.add_argument("--real-cells", type=Path, default=None,
                   help="folder of real normal neutrophils: record the share of its held-out cells called "
                        "normal (never trained on)")
    p.add_argument("--build-demo", action="store_true", help="then select the demo set (as build-demo)")
    p.set_defaults(func=run_train_demo)

    b = subparsers.add_parser(
        "build-demo",
        help="select the 56-cell demo set with ground truth and demo annotations",
        description="Score generated cells with the demo model and write the demo set: 23 normal and 23 "
                    "dysplastic cells it classifies correctly at the study threshold, 5 + 5 it gets wrong, "
                    "their ground truth, demo annotations and a contact sheet.",
    )
    b.add_argument("--model-dir", type=Path, default=config.MODEL_DIR)
    b.add_argument("--out", type=Path, default=config.DEMO_DIR)
    b.add_argument("--contact-sheet", type=Path, default=config.REPO_ROOT / "docs" / "demo_contact_sheet.png")
    b.set_defaults(func=run_build_demo)


def _check_positive(**values):
    for name, value in values.items():
        if value < 1:
            raise DisplasiaError(f"--{name.replace('_', '-')} must be at least 1.")


def run_train_demo(args: argparse.Namespace) -> int:
    _check_positive(epochs=args.epochs, n_train=args.n_train, n_test=args.n_test,
                    batch_size=args.batch_size, threads=args.threads)
    settings = TrainSettings(epochs=args.epochs, n_train=args.n_train, n_validation=max(args.n_validation, 0),
                             n_test=args.n_test, batch_size=args.batch_size, threads=args.threads,
                             generator=args.generator)
    if args.real_cells is not None and not Path(args.real_cells).is_dir():
        raise DisplasiaError(f"folder not found: {args.real_cells}")
    train_demo(args.out, settings, real_cells=args.real_cells, log=lambda m: print(m, flush=True))
    if args.build_demo:
        from core.synth.demo import build_demo

        build_demo(args.out, config.DEMO_DIR, contact_sheet=config.REPO_ROOT / "docs" / "demo_contact_sheet.png",
                   log=lambda m: print(m, flush=True))
    return 0


def run_build_demo(args: argparse.Namespace) -> int:
    from core.synth.demo import build_demo

    build_demo(args.model_dir, args.out, contact_sheet=args.contact_sheet, log=lambda m: print(m, flush=True))
    return 0
