"""Exact occlusion on crops: recompute only what a small patch can change.

In a chain of 'valid' convolutions and poolings, output cell ``o`` of the last pooling
layer sees the input rows ``[o J, o J + R)`` (J = product of strides, R = receptive
field; 16 and 46 for DisplasiaNet). A patch therefore changes only a K x K tile of that
layer (K = ceil((patch + R - 1) / J), 4 for a 5-pixel patch), and that tile can be
computed from an input crop of (K - 1) J + R pixels (94 instead of 299) that starts at a
multiple of J, so every pooling window stays aligned. The tile is pasted into the
features of the unoccluded image and only the dense head runs on the full features.
The result is the same score as a full forward pass (up to float rounding), for about a
tenth of the arithmetic; models that are not such a chain fall back to full passes.

This is the "incremental inference" idea of Nakandala, Kumar & Papakonstantinou (2019),
"Incremental and Approximate Inference for Faster Occlusion-based Deep CNN Explanations",
SIGMOD, reduced to the exact case.
"""
from __future__ import annotations

import math

import numpy as np

_POINTWISE = {"Activation", "ReLU", "LeakyReLU", "ELU", "BatchNormalization", "Dropout", "SpatialDropout2D",
              "Rescaling", "Softmax"}
_CONV = {"Conv2D", "SeparableConv2D", "DepthwiseConv2D"}
_POOL = {"MaxPooling2D", "AveragePooling2D"}


def _geometry(layer):
    """``((k_y, k_x), (s_y, s_x))`` of a layer, or None when crops would not be exact."""
    kind = type(layer).__name__
    if kind in _POINTWISE:
        return (1, 1), (1, 1)
    if kind in _CONV:
        if layer.padding != "valid":
            return None
        d = tuple(layer.dilation_rate)
        k = tuple((ks - 1) * dd + 1 for ks, dd in zip(layer.kernel_size, d))
        return k, tuple(layer.strides)
    if kind in _POOL:
        if layer.padding != "valid":
            return None
        return tuple(layer.pool_size), tuple(layer.strides)
    return None


class CropPlan:
    """Trunk (input -> last pooling layer) and head (features -> P(normal)) of one model."""

    def __init__(self, handle, trunk_layers, head_layers, jump, field, out_shape):
        import keras
        import tensorflow as tf

        self.handle = handle
        self.jump, self.field, self.out_shape = jump, field, out_shape  # per axis (y, x)
        inp = keras.Input((None, None, 3))
        h = inp
        for layer in trunk_layers:
            h = layer(h)
        trunk = keras.Model(inp, h)
        feats = keras.Input(tuple(out_shape) + (int(h.shape[-1]),))
        z = feats
        for layer in head_layers:
            z = layer(z)
        desc = handle.description
        head = keras.Model(feats, keras.ops.take(z, desc.normal_unit, axis=-1))
        # Pixels past the last receptive field (right/bottom 13 px of DisplasiaNet) never
        # reach the output: scoring the used extent alone is exact and ~9 % cheaper.
        self.used_extent = tuple((n - 1) * j + r for n, j, r in zip(out_shape, jump, field))
        used = keras.Input(self.used_extent + (3,))
        self.used_score_model = keras.Model(used, head(trunk(used)))
        self.used_logit_model = None
        self.logit_head = None
        if head_layers and type(head_layers[-1]).__name__ in ("Activation", "Softmax"):
            # the logit head, as core.model_io.logit_model builds it: drop the final activation
            def logit_of(z):
                for layer in head_layers[:-1]:
                    z = layer(z)
                u = desc.normal_unit
                return keras.ops.take(z, u, axis=-1) if desc.output_kind == "sigmoid" else \
                    keras.ops.take(z, u, axis=-1) - keras.ops.take(z, 1 - u, axis=-1)

            self.used_logit_model = keras.Model(used, logit_of(trunk(used)))
            logit_head = keras.Model(feats, logit_of(feats))
            self.logit_head = tf.function(lambda f: logit_head(f, training=False),
                                          input_signature=[tf.TensorSpec((None,) + feats.shape[1:], tf.float32)])
        self.trunk = tf.function(lambda x: trunk(x, training=False),
                                 input_signature=[tf.TensorSpec((None, None, None, 3), tf.float32)],
                                 reduce_retracing=True)
        self.head = tf.function(lambda f: head(f, training=False),
                                input_signature=[tf.TensorSpec((None,) + feats.shape[1:], tf.float32)])

    @classmethod
    def build(cls, handle):
        """A plan for this model, or None when it is not a plain chain of valid conv/pool layers."""
        model, desc = handle.model, handle.description
        layers = [layer for layer in model.layers if type(layer).__name__ != "InputLayer"]
        names = [layer.name for layer in layers]
        if desc.features_layer not in names:
            return None
        cut = names.index(desc.features_layer) + 1
        trunk_layers, head_layers = layers[:cut], layers[cut:]
        geometry = [_geometry(layer) for layer in trunk_layers]
        if any(g is None for g in geometry):
            return None
        jump, field = [1, 1], [1, 1]
        for (k, s) in reversed(geometry):
            for a in range(2):
                field[a] = (field[a] - 1) * s[a] + k[a]
        for (_, s) in geometry:
            for a in range(2):
                jump[a] *= s[a]
        out_shape = tuple(int(d) for d in model.get_layer(desc.features_layer).output.shape[1:3])
        try:
            plan = cls(handle, trunk_layers, head_layers, tuple(jump), tuple(field), out_shape)
        except (ValueError, TypeError):
            return None
        return plan if plan._verified() else None

    def _verified(self) -> bool:
        """The chain rebuilt from the layers must give the model's own scores and tiles."""
        h, w = self.handle.input_shape[:2]
        x = np.random.default_rng(0).random((2, h, w, 3), dtype=np.float32)
        full = self.trunk(x).numpy()
        if full.shape[1:3] != self.out_shape:
            return False
        if not np.allclose(self.head(full).numpy().reshape(-1), self.handle.p_normal(x), atol=1e-5):
            return False
        cut = x[:, :self.used_extent[0], :self.used_extent[1]]
        used = self.used_score_model(cut, training=False)
        if not np.allclose(np.asarray(used).reshape(-1), self.handle.p_normal(x), atol=1e-5):
            return False
        if self.used_logit_model is not None:
            logits = np.asarray(self.used_logit_model(cut, training=False)).reshape(-1)
            full_logits = np.asarray(self.handle.loaded.logit_model(x, training=False)).reshape(-1)
            if not np.allclose(logits, full_logits, atol=1e-4, rtol=1e-5):
                self.used_logit_model = None
            head_logits = np.asarray(self.logit_head(full)).reshape(-1)
            if not np.allclose(head_logits, full_logits, atol=1e-4, rtol=1e-5):
                self.logit_head = None
        k = [min(2, n) for n in self.out_shape]
        o = [n - kk for n, kk in zip(self.out_shape, k)]
        crop = self._crop_size(k)
        tile = self.trunk(x[:, o[0] * self.jump[0]:o[0] * self.jump[0] + crop[0],
                            o[1] * self.jump[1]:o[1] * self.jump[1] + crop[1]]).numpy()
        return np.allclose(tile, full[:, o[0]:o[0] + k[0], o[1]:o[1] + k[1]], atol=1e-5, rtol=1e-5)

    def _crop_size(self, tiles):
        return tuple((t - 1) * j + r for t, j, r in zip(tiles, self.jump, self.field))

    def tiles_for(self, patch: int):
        """Tile size K per axis for a patch, or None when a full pass is as cheap."""
        k = tuple(math.ceil((patch + r - 1) / j) for r, j in zip(self.field, self.jump))
        if any(kk >= n for kk, n in zip(k, self.out_shape)):
            return None
        return k

    def supports(self, space: str) -> bool:
        """Whether crops can score in ``space`` ("logit" needs a separate final activation)."""
        return space == "probability" or self.logit_head is not None

    def occluded_p_normal(self, image, occlude, ys, xs, patch, *, batch_size, progress=None, cancel=None,
                          space: str = "probability"):
        """P(normal) (or its logit, ``space="logit"``) per window, computing only each window's tile.

        ``occlude(crop, w, cy, cx)`` fills window ``w`` (top-left corner ``ys[w], xs[w]`` in
        image coordinates) inside ``crop``, a copy of the image cut at ``(cy, cx)``.
        """
        from core.explain.batching import run_batched

        head = self.head if space == "probability" else self.logit_head
        k = self.tiles_for(patch)
        crop = self._crop_size(k)
        base = self.trunk(image[None]).numpy()[0]
        baseline = float(head(base[None]).numpy().reshape(-1)[0])
        origin = []
        for starts, a in ((ys, 0), (xs, 1)):
            first = np.maximum(0, -((self.field[a] - 1 - starts) // self.jump[a]))  # ceil((s - R + 1) / J)
            last = np.minimum(self.out_shape[a] - 1, (starts + patch - 1) // self.jump[a])
            o = np.clip(first, 0, self.out_shape[a] - k[a])
            origin.append((o, first <= last))
        (oy, hit_y), (ox, hit_x) = origin
        hit = hit_y & hit_x
        scores = np.full(len(ys), baseline, np.float32)
        todo = np.flatnonzero(hit)
        crops = np.empty((batch_size, crop[0], crop[1], 3), np.float32)

        def chunk(a, b):
            idx = todo[a:b]
            feats = np.repeat(base[None], len(idx), axis=0)
            for j, w in enumerate(idx):
                cy, cx = oy[w] * self.jump[0], ox[w] * self.jump[1]
                crops[j] = image[cy:cy + crop[0], cx:cx + crop[1]]
                occlude(crops[j], w, cy, cx)
            tiles = self.trunk(crops[:len(idx)]).numpy()
            for j, w in enumerate(idx):
                feats[j, oy[w]:oy[w] + k[0], ox[w]:ox[w] + k[1]] = tiles[j]
            return head(feats).numpy().reshape(-1)

        report = None if progress is None else (lambda d, t: progress(len(ys) - len(todo) + d, len(ys)))
        done = run_batched(chunk, len(todo), batch_size, progress=report, cancel=cancel)
        if len(todo):
            scores[todo] = np.concatenate(done)
        elif progress is not None:
            progress(len(ys), len(ys))
        return scores
