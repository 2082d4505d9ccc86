"""Per-channel mean activation of every feature-map layer, for whole datasets.

Only the means leave the graph, so a dataset of thousands of cells costs a few kilobytes per
cell instead of the 15 MB of DisplasiaNet's full activations.
"""
from __future__ import annotations

import numpy as np


def channel_means(loaded, images: np.ndarray, *, layers=None, batch_size: int = 32, progress=None) -> dict:
    """``{layer: (N, channels) float32}`` mean activation of each channel per image.

    Parameters
    ----------
    loaded : LoadedModel
    images : (N, H, W, 3) float32 ndarray in [0, 1]
    layers : sequence of str, optional
        Default: the model's feature-map layers.
    """
    import keras

    from core.model_io import compiled

    layers = tuple(layers or loaded.description.feature_map_layers)
    model = loaded.model
    outputs = [keras.ops.mean(model.get_layer(name).output, axis=(1, 2)) for name in layers]
    probe = compiled(keras.Model(model.input, outputs))
    chunks = []
    for start in range(0, len(images), batch_size):
        chunks.append([np.asarray(o) for o in probe(np.asarray(images[start:start + batch_size], np.float32))])
        if progress:
            progress(min(start + batch_size, len(images)), len(images))
    return {name: np.concatenate([c[i] for c in chunks]).astype(np.float32) for i, name in enumerate(layers)}


def class_contrast(means: np.ndarray, labels) -> dict:
    """Mean per channel for dysplastic and normal cells, and their difference (normal - dysplastic)."""
    labels = np.asarray(labels, dtype=object)
    dys = means[labels == "dysplastic"].mean(axis=0) if (labels == "dysplastic").any() else np.full(means.shape[1], np.nan)
    nor = means[labels == "normal"].mean(axis=0) if (labels == "normal").any() else np.full(means.shape[1], np.nan)
    return {"dysplastic": dys, "normal": nor, "difference": nor - dys}
