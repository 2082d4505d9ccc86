"""Deep-feature projection: the last pooling output of many cells, mapped to 2-D.

van der Maaten & Hinton (2008), "Visualizing Data using t-SNE", JMLR. The study plots the
t-SNE map of the 4,096 values of ``max_pooling2d_3`` for all cells, coloured by group and
labelled with the pathologist's total score; PCA is given as a deterministic companion.

Extras
------
features : (N, F) float32 flattened last pooling output.
tsne : (N, 2) float32.  pca : (N, 2) float32.  pca_variance_ratio : (2,) float32.
perplexity_used : float (capped below N for small sets; t-SNE needs 4+ images, else PCA).
"""
from __future__ import annotations

import time

import numpy as np

from core.explain._model import handle_for
from core.explain.base import Explanation, Params, check_images, target_probability
from core.explain.batching import batch_size_for, concat, run_batched
from core.explain.cam import upsample


def project(features, *, perplexity=30.0, seed=0):
    """``(tsne, pca, pca_variance_ratio, perplexity_used)`` of ``(N, F)`` features.

    t-SNE runs guarded and in a child process (``core.explain._tsne``): identical rows no
    longer segfault the server. If it still fails, ``tsne`` is the PCA map and
    ``perplexity_used`` is 0.0, as for sets too small for t-SNE. Non-finite features raise
    DisplasiaError.
    """
    from sklearn.decomposition import PCA

    from core.errors import DisplasiaError
    from core.explain._tsne import tsne_2d

    features = np.asarray(features, dtype=np.float64)
    if not np.isfinite(features).all():
        raise DisplasiaError("The model's features contain NaN or infinite values, so they cannot be projected.")
    n = len(features)
    pca = np.zeros((n, 2))
    ratio = np.zeros(2)
    if n >= 2 and np.ptp(features, axis=0).max() > 0:
        k = min(2, n, features.shape[1])
        fit = PCA(n_components=k, random_state=int(seed)).fit(features)
        pca[:, :k] = fit.transform(features)
        ratio[:k] = fit.explained_variance_ratio_
    if n < 4:
        return pca.astype(np.float32), pca.astype(np.float32), ratio.astype(np.float32), 0.0
    used = float(min(perplexity, n - 1))
    try:
        tsne, _ = tsne_2d(features, perplexity=used, seed=int(seed))
    except DisplasiaError:
        return pca.astype(np.float32), pca.astype(np.float32), ratio.astype(np.float32), 0.0
    return tsne.astype(np.float32), pca.astype(np.float32), ratio.astype(np.float32), used


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
    tsne, pca, ratio, used = project(acts.reshape(len(acts), -1), perplexity=perplexity, seed=seed)
    extras = {"features": acts.reshape(len(acts), -1), "tsne": tsne, "pca": pca,
              "pca_variance_ratio": ratio, "perplexity_used": used}
    maps = upsample(acts.mean(axis=-1), *handle.input_shape[:2])
    baseline = target_probability(handle.p_normal(images), target)
    return Explanation("features", target, maps, baseline,
                       Params({"perplexity": float(perplexity), "seed": int(seed)}),
                       {"features": t1 - t0, "projection": time.perf_counter() - t1,
                        "total": time.perf_counter() - t0}, extras)
