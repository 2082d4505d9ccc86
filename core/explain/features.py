"""Deep-feature projection: the last pooling output of many cells, mapped to 2-D.

van der Maaten & Hinton (2008), "Visualizing Data using t-SNE", JMLR. The study plots the
t-SNE map of the 4,096 values of ``max_pooling2d_3`` for all cells, coloured by group and
labelled with the pathologist's total score; PCA is given as a deterministic companion.

Two ways in, one projection:

- :func:`explain` (the registry's call) takes images in memory, as every method does.
- :func:`folder_projection` streams image *files* in batches (decoding one batch ahead of
  the model), keeps only the float32 ``(N, F)`` features and P(normal), and stores no
  upsampled map, so 20,000 cells need ~330 MB of features instead of ~21 GB of images.

Up to :data:`LARGE_PROJECTION` cells the t-SNE is scikit-learn's Barnes-Hut on the raw
features (the study's tool). Above, it is openTSNE (Poličar et al. 2024, J. Stat. Softw.;
FFT-accelerated gradients of Linderman et al. 2019 from 10,000 points, its own choice) on
the first :data:`PCA_DIMS` principal components, started from the scaled PCA map: minutes
become seconds at 20,000 points. Both run in a child process
behind the degenerate-start guard of ``core.explain._tsne``.

Extras
------
features : (N, F) float32 flattened last pooling output.
tsne : (N, 2) float32.  pca : (N, 2) float32.  pca_variance_ratio : (2,) float32.
perplexity_used : float (capped below N for small sets; t-SNE needs 4+ images, else PCA).
tsne_engine : "sklearn", "opentsne" or "pca" (too few cells or a failed t-SNE).
"""
from __future__ import annotations

import time

import numpy as np

from core.explain._model import handle_for
from core.explain.base import Explanation, Params, check_images, target_probability
from core.explain.batching import batch_size_for, concat, run_batched
from core.explain.cam import upsample

#: From this many cells on, t-SNE is openTSNE on PCA-reduced features.
LARGE_PROJECTION = 2000
#: Principal components kept for openTSNE (the usual pre-reduction before t-SNE).
PCA_DIMS = 50
#: Images decoded and run per batch when streaming files.
STREAM_BATCH = 32

_OPENTSNE_CHILD = r"""
import io, json, sys
import numpy as np
from openTSNE import TSNE
args = json.loads(sys.argv[1])
x = np.load(io.BytesIO(sys.stdin.buffer.read()), allow_pickle=False)
init = args["init"]
if init == "array":
    init = np.ascontiguousarray(x[:, :2], dtype=np.float64)
    x = x[:, 2:]
y = TSNE(n_components=2, perplexity=args["perplexity"], initialization=init, random_state=args["seed"],
         n_jobs=args["n_jobs"], negative_gradient_method="auto", verbose=False).fit(np.ascontiguousarray(x))
buffer = io.BytesIO()
np.save(buffer, np.asarray(y, dtype=np.float32), allow_pickle=False)
sys.stdout.buffer.write(buffer.getvalue())
"""


def _pca(features, k: int, seed: int, solver: str = "auto"):
    """``(scores (N, k), variance ratio (k,))``; zeros when the features have no spread."""
    from sklearn.decomposition import PCA

    n = len(features)
    scores = np.zeros((n, k), np.float64)
    ratio = np.zeros(k, np.float64)
    if n >= 2 and np.ptp(features, axis=0).max() > 0:
        k_fit = min(k, n, features.shape[1])
        fit = PCA(n_components=k_fit, svd_solver=solver, random_state=int(seed)).fit(features)
        scores[:, :k_fit] = fit.transform(features)
        ratio[:k_fit] = fit.explained_variance_ratio_
    return scores, ratio


def opentsne_2d(reduced, *, perplexity: float, seed: int = 0, n_jobs: int = 2):
    """``((N, 2) float32, init_used)``: openTSNE of PCA-reduced features, guarded and isolated.

    The start is scikit-learn's scaled PCA start when it is usable (``_tsne.pca_start``,
    the same std-1e-4 scaling openTSNE uses), else openTSNE's random start.
    """
    from core.explain._tsne import _run_child, pca_start

    x = np.asarray(reduced, dtype=np.float64)
    start = pca_start(x, seed)
    args = {"perplexity": float(perplexity), "seed": int(seed), "n_jobs": int(max(1, n_jobs)),
            "init": "random" if start is None else "array"}
    payload = x if start is None else np.hstack([start.astype(np.float64), x])
    return _run_child(payload, args, script=_OPENTSNE_CHILD), ("random" if start is None else "pca")


def project(features, *, perplexity=30.0, seed=0, large_from: int | None = None):
    """``(tsne, pca, pca_variance_ratio, perplexity_used)`` of ``(N, F)`` features.

    t-SNE runs guarded and in a child process (``core.explain._tsne``): identical rows no
    longer segfault the server. If it still fails, ``tsne`` is the PCA map and
    ``perplexity_used`` is 0.0, as for sets too small for t-SNE. Non-finite features raise
    DisplasiaError. From ``large_from`` cells on (default :data:`LARGE_PROJECTION`) the
    t-SNE is openTSNE on :data:`PCA_DIMS` principal components (see the module docstring).

    >>> tsne, pca, ratio, used = project(np.eye(3, 8, dtype=np.float32))
    >>> tsne.shape, used
    ((3, 2), 0.0)
    """
    return _project(features, perplexity=perplexity, seed=seed, large_from=large_from)[:4]


def _project(features, *, perplexity=30.0, seed=0, large_from=None):
    import os

    from core.errors import DisplasiaError
    from core.explain._tsne import tsne_2d

    large_from = LARGE_PROJECTION if large_from is None else int(large_from)
    features = np.asarray(features, dtype=np.float32)
    if not np.isfinite(features).all():
        raise DisplasiaError("The model's features contain NaN or infinite values, so they cannot be projected.")
    n = len(features)
    large = n >= large_from
    if large:  # float32 all the way: 20,000 x 4,096 stays 330 MB
        reduced, ratio_all = _pca(features, min(PCA_DIMS, features.shape[1]), seed, "randomized")
        pca, ratio = reduced[:, :2].copy(), ratio_all[:2].copy()
        if pca.shape[1] < 2:
            pca = np.pad(pca, ((0, 0), (0, 2 - pca.shape[1])))
            ratio = np.pad(ratio, (0, 2 - len(ratio)))
    else:
        pca, ratio = _pca(features.astype(np.float64), 2, seed)
    as32 = lambda *a: tuple(np.asarray(v, np.float32) for v in a)  # noqa: E731
    if n < 4:
        return (*as32(pca, pca, ratio), 0.0, "pca")
    used = float(min(perplexity, n - 1))
    try:
        if large:
            used = float(min(perplexity, (n - 1) / 3))  # openTSNE needs 3 x perplexity neighbours
            tsne, _ = opentsne_2d(reduced, perplexity=used, seed=int(seed), n_jobs=min(2, os.cpu_count() or 1))
            engine = "opentsne"
        else:
            tsne, _ = tsne_2d(features.astype(np.float64), perplexity=used, seed=int(seed))
            engine = "sklearn"
    except DisplasiaError:
        return (*as32(pca, pca, ratio), 0.0, "pca")
    return (*as32(tsne, pca, ratio), used, engine)


def features_and_scores(model, images) -> tuple:
    """``(features (N, F) float32, p_normal (N,) float32)`` from one forward pass per image.

    The last pooling output and the model output come from one two-headed graph, so the
    projection and the scores cost a single pass.
    """
    handle = handle_for(model)
    desc = handle.description
    output_layer = handle.model.layers[-1].name
    feats, out = handle.layer_outputs(np.asarray(images, np.float32), (desc.features_layer, output_layer))
    out = np.asarray(out, np.float32).reshape(len(out), -1)
    p_normal = out[:, desc.normal_unit] if out.shape[1] > 1 else out[:, 0]
    return feats.reshape(len(feats), -1).astype(np.float32), p_normal.astype(np.float32)


def stream_file_features(model, paths, *, interpolation: str = "nearest", batch_size: int = STREAM_BATCH,
                         progress=None, cancel=None) -> tuple:
    """Features and scores of image files, decoded one batch ahead; no image array kept.

    Returns
    -------
    features : (N, F) float32 ndarray
        Zero rows for unreadable files.
    p_normal : (N,) float32 ndarray
        NaN for unreadable files.
    failures : list of (int, str)
        Index and one-line reason of every file that could not be read.
    """
    from concurrent.futures import ThreadPoolExecutor

    from core.errors import DisplasiaError
    from core.explain.base import Cancelled
    from core.preprocess import load_input

    handle = handle_for(model)
    size = handle.description.image_size
    paths = list(paths)
    n = len(paths)
    failures = []

    def decode(start):
        batch = np.zeros((min(batch_size, n - start), *handle.input_shape), np.float32)
        ok = np.zeros(len(batch), bool)
        for j in range(len(batch)):
            try:
                batch[j] = load_input(paths[start + j], size, interpolation)
                ok[j] = True
            except (DisplasiaError, OSError, ValueError) as exc:
                failures.append((start + j, str(exc).splitlines()[0] if str(exc) else type(exc).__name__))
        return batch, ok

    feats = None
    scores = np.full(n, np.nan, np.float32)
    starts = list(range(0, n, batch_size))
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(decode, 0) if n else None
        for i, start in enumerate(starts):
            if cancel is not None and cancel():
                raise Cancelled("feature extraction cancelled")
            batch, ok = pending.result()
            if i + 1 < len(starts):
                pending = pool.submit(decode, starts[i + 1])
            f, p = features_and_scores(handle, batch)
            if feats is None:
                feats = np.zeros((n, f.shape[1]), np.float32)
            feats[start:start + len(batch)][ok] = f[ok]
            scores[start:start + len(batch)][ok] = p[ok]
            if progress is not None:
                progress(start + len(batch), n)
    if feats is None:
        feats = np.zeros((0, 0), np.float32)
    return feats, scores, sorted(failures)


def folder_key(content_hash: str, files, size, interpolation: str, params) -> str:
    """Cache key of a streamed projection: model, every file's identity, resize, parameters.

    A file's identity is its resolved path, size and modification time (reading 20,000
    images just to look the result up would defeat the cache); editing a file changes it.
    """
    import hashlib
    import json

    from core.explain.registry import get_method

    digest = hashlib.sha256()
    for path in files:
        stat = path.stat()
        digest.update(f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}\n".encode())
    spec = get_method("features")
    parts = {"kind": "features-from-files", "model": content_hash, "files": digest.hexdigest(),
             "size": [int(v) for v in size], "interpolation": interpolation, "version": spec.version,
             "params": json.loads(spec.validate(params).to_json())}
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def projection_explanation(features, p_normal, failures, *, perplexity=30.0, seed=0, timings=None,
                           large_from=None) -> Explanation:
    """The cached form of a streamed projection (target "normal": ``baseline`` is P(normal)).

    ``maps`` are ``(N, 1, 1)`` placeholders: the projection needs no per-cell map.
    ``extras["included"]`` marks the cells projected (unreadable files are left out and
    get NaN coordinates); ``extras["failed"]`` names why, one line each.
    """
    n = len(p_normal)
    included = np.ones(n, bool)
    for index, _ in failures:
        included[index] = False
    t0 = time.perf_counter()
    tsne = np.full((n, 2), np.nan, np.float32)
    pca = np.full((n, 2), np.nan, np.float32)
    tsne_ok, pca_ok, ratio, used, engine = _project(features[included], perplexity=perplexity, seed=seed,
                                                    large_from=large_from)
    tsne[included], pca[included] = tsne_ok, pca_ok
    extras = {"features": np.asarray(features, np.float32), "tsne": tsne, "pca": pca,
              "pca_variance_ratio": ratio, "perplexity_used": used, "tsne_engine": engine, "included": included,
              "failed": np.array([f"{i}: {reason}" for i, reason in failures], dtype=str)}
    timing = dict(timings or {})
    timing["projection"] = time.perf_counter() - t0
    baseline = np.where(included, p_normal, 0.0).astype(np.float32)
    return Explanation("features", "normal", np.zeros((n, 1, 1), np.float32), baseline,
                       Params({"perplexity": float(perplexity), "seed": int(seed)}), timing, extras)


def folder_projection(model, paths, *, interpolation: str = "nearest", perplexity=30.0, seed=0, cache=None,
                      batch_size: int = STREAM_BATCH, progress=None, cancel=None) -> Explanation:
    """Deep features and projection of image files, streamed in batches and cached.

    Parameters
    ----------
    model : LoadedModel or keras.Model
    paths : sequence of str or Path
        Image files; unreadable ones are reported in ``extras["failed"]`` and left out.
    interpolation : str
        Resize to the model input (as everywhere else; default nearest).
    perplexity, seed
        As for :func:`explain`.
    cache : ExplanationCache, optional
        Looked up by :func:`folder_key` (no image is read on a hit).

    Returns
    -------
    Explanation
        See :func:`projection_explanation`.
    """
    from pathlib import Path

    handle = handle_for(model)
    paths = [Path(p) for p in paths]
    key = None
    if cache is not None:
        key = folder_key(handle.content_hash, paths, handle.description.image_size, interpolation,
                         {"perplexity": perplexity, "seed": seed})
        hit = cache.get(key)
        if hit is not None:
            return hit
    t0 = time.perf_counter()
    feats, scores, failures = stream_file_features(handle, paths, interpolation=interpolation,
                                                   batch_size=batch_size, progress=progress, cancel=cancel)
    exp = projection_explanation(feats, scores, failures, perplexity=perplexity, seed=seed,
                                 timings={"features": time.perf_counter() - t0})
    if cache is not None:
        cache.put(key, exp)
    return exp


def explain(model, images, target="dysplastic", *, perplexity=30.0, seed=0, progress=None, cancel=None,
            batch_size=None) -> Explanation:
    """Last pooling features of a set of cells and their 2-D projections.

    Parameters
    ----------
    model : LoadedModel or keras.Model
    images : (N, H, W, 3) float32 ndarray in [0, 1]
        The whole dataset (the projection depends on every image).
    target : {"dysplastic", "normal"}
        Only the baseline score depends on it.
    perplexity : float
    seed : int

    Returns
    -------
    Explanation
        ``maps`` (N, H, W): mean over channels of the last pooling output, upsampled.
    """
    handle = handle_for(model)
    images = check_images(images, handle.input_shape)
    layer = handle.description.features_layer
    t0 = time.perf_counter()
    batch_size = batch_size or batch_size_for(handle.description)
    acts = concat(run_batched(lambda a, b: handle.layer_outputs(images[a:b], (layer,))[0], len(images),
                              batch_size, progress=progress, cancel=cancel)).astype(np.float32)
    t1 = time.perf_counter()
    tsne, pca, ratio, used, engine = _project(acts.reshape(len(acts), -1), perplexity=perplexity, seed=seed)
    extras = {"features": acts.reshape(len(acts), -1), "tsne": tsne, "pca": pca,
              "pca_variance_ratio": ratio, "perplexity_used": used, "tsne_engine": engine}
    maps = upsample(acts.mean(axis=-1), *handle.input_shape[:2])
    baseline = target_probability(handle.p_normal(images), target)
    return Explanation("features", target, maps, baseline,
                       Params({"perplexity": float(perplexity), "seed": int(seed)}),
                       {"features": t1 - t0, "projection": time.perf_counter() - t1,
                        "total": time.perf_counter() - t0}, extras)
