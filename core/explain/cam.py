"""Class activation maps: the shared template of Grad-CAM, Grad-CAM++ and Score-CAM.

As in pytorch-grad-cam, the base class gets a layer's activations ``A`` (and, when a
variant needs them, the gradients ``G`` of the signed logit w.r.t. ``A``) and offers two
hooks:

- ``channel_weights(A, G, context) -> (N, C)``: one weight per channel, combined as
  ``sum_k w_k A_k`` (Grad-CAM, Grad-CAM++, XGrad-CAM, Score-CAM);
- ``element_weights(A, G, context) -> (N, h, w, C)``: one weight per activation, combined
  as ``sum_k (W_k * A_k)`` (LayerCAM). Its default broadcasts ``channel_weights``.

The map is ``ReLU`` of that sum (``evidence="signed"``: no ReLU), upsampled bilinearly to
the input size on the grid of ``scipy.ndimage.zoom(order=1)``, as tf-keras-vis does.
Adding a variant means writing one of the two hooks.

The default layer is the post-ReLU output of the last conv block (``activation_3`` for
DisplasiaNet): searching for "the last Conv2D" lands on the linear ``conv2d_3``.
"""
from __future__ import annotations

import time

import numpy as np

from core.explain._model import handle_for
from core.explain.base import Explanation, Params, check_images, target_probability, target_sign
from core.explain.batching import batch_size_for, run_batched


def interpolation_matrix(n_in: int, n_out: int) -> np.ndarray:
    """``(n_out, n_in)`` linear interpolation with aligned corners (``zoom(order=1)``'s grid)."""
    if n_in == 1 or n_out == 1:
        matrix = np.zeros((n_out, n_in), np.float64)
        matrix[:, 0] = 1.0
        return matrix
    coords = np.arange(n_out) * ((n_in - 1) / (n_out - 1))
    low = np.minimum(np.floor(coords).astype(int), n_in - 2)
    frac = coords - low
    matrix = np.zeros((n_out, n_in), np.float64)
    matrix[np.arange(n_out), low] = 1.0 - frac
    matrix[np.arange(n_out), low + 1] += frac
    return matrix


def _resize_axis(maps, axis: int, n_out: int) -> np.ndarray:
    n_in = maps.shape[axis]
    if n_in == 1 or n_out == 1:
        return np.repeat(np.take(maps, [0], axis=axis), n_out, axis=axis)
    coords = np.arange(n_out) * ((n_in - 1) / (n_out - 1))
    low = np.minimum(np.floor(coords).astype(int), n_in - 2)
    shape = [1] * maps.ndim
    shape[axis] = n_out
    frac = (coords - low).astype(np.float32).reshape(shape)
    return np.take(maps, low, axis=axis) * (1 - frac) + np.take(maps, low + 1, axis=axis) * frac


def upsample(maps, height: int, width: int) -> np.ndarray:
    """Bilinear resize of ``(N, h, w[, c])`` to ``(N, height, width[, c])``.

    The same values as ``scipy.ndimage.zoom(maps, order=1)`` (tf-keras-vis's resize: corners
    aligned; ``interpolation_matrix`` is the same grid as a matrix), one axis at a time.
    """
    maps = np.asarray(maps, dtype=np.float32)
    if maps.shape[1:3] == (height, width):
        return maps.copy()
    return _resize_axis(_resize_axis(maps, 1, height), 2, width).astype(np.float32)


class CAM:
    """Template: subclasses set ``name`` and override ``channel_weights`` or ``element_weights``."""

    name = "cam"
    needs_gradients = True

    def channel_weights(self, activations, gradients, context) -> np.ndarray:
        """``(N, C)`` weights from ``activations``/``gradients`` ``(N, h, w, C)``."""
        raise NotImplementedError(f"{type(self).__name__} overrides neither channel_weights nor element_weights")

    def element_weights(self, activations, gradients, context) -> np.ndarray:
        """``(N, h, w, C)`` weights (or anything that broadcasts to it); default: per channel."""
        return np.asarray(self.channel_weights(activations, gradients, context), np.float32)[:, None, None, :]

    def combine(self, activations, gradients, context):
        """``(cam (N, h, w), channel_weights (N, C))``: the weighted sum over channels.

        The reported channel weight of an element-wise variant is its spatial mean.
        """
        weights = np.asarray(self.element_weights(activations, gradients, context), np.float32)
        if weights.ndim == 4 and weights.shape[1:3] == (1, 1):
            flat = weights[:, 0, 0, :]
            return np.einsum("nhwc,nc->nhw", activations, flat), flat
        weights = np.broadcast_to(weights, activations.shape)
        return (weights * activations).sum(axis=-1), weights.mean(axis=(1, 2))

    def explain(self, model, images, target="dysplastic", *, layer=None, evidence="positive",
                progress=None, cancel=None, batch_size=None) -> Explanation:
        """Class activation map of each image.

        Parameters
        ----------
        model : LoadedModel or keras.Model
        images : (N, H, W, 3) float32 ndarray in [0, 1]
        target : {"dysplastic", "normal"}
        layer : str, optional
            Layer name; default the model's CAM layer (post-ReLU output of the last conv block).
        evidence : {"positive", "signed"}
            "positive" applies the final ReLU of the papers: a cell that nothing supports as
            the target class gives a blank map (a real answer, e.g. Grad-CAM of "normal" on a
            confidently dysplastic cell). "signed" keeps the negative part (evidence against).

        Returns
        -------
        Explanation
            ``maps`` (N, H, W) raw; extras ``cam`` (N, h, w) at layer resolution and
            ``channel_weights`` (N, C).
        """
        handle = handle_for(model)
        images = check_images(images, handle.input_shape)
        name = handle.layer_name(layer)
        sign = target_sign(target)
        batch_size = batch_size or batch_size_for(handle.description, factor=3)
        t0 = time.perf_counter()
        context = _Context(handle, images, target, batch_size, cancel)

        def chunk(a, b):
            if self.needs_gradients:
                acts, grads, _ = handle.layer_gradients(images[a:b], name, sign)
            else:
                acts, grads = handle.layer_outputs(images[a:b], (name,))[0], None
            cam, weights = self.combine(acts, grads, context.slice(a, b))
            if evidence == "positive":
                cam = np.maximum(cam, 0)
            return cam.astype(np.float32), weights.astype(np.float32)

        parts = run_batched(chunk, len(images), batch_size, progress=progress, cancel=cancel)
        cam = np.concatenate([p[0] for p in parts])
        weights = np.concatenate([p[1] for p in parts])
        maps = upsample(cam, *handle.input_shape[:2])
        baseline = target_probability(handle.p_normal(images), target)
        return Explanation(self.name, target, maps, baseline, Params({"layer": layer, "evidence": evidence}),
                           {"total": time.perf_counter() - t0}, {"cam": cam, "channel_weights": weights})


class _Context:
    """What a channel-weight hook may need besides A and G (Score-CAM scores masked inputs)."""

    def __init__(self, handle, images, target, batch_size, cancel, offset=0):
        self.handle, self.images, self.target = handle, images, target
        self.batch_size, self.cancel, self.offset = batch_size, cancel, offset

    def slice(self, a, b):
        return _Context(self.handle, self.images[a:b], self.target, self.batch_size, self.cancel, a)
