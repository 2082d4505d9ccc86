"""The model as the explanation methods see it: compiled heads built once per model.

Accepts a :class:`core.model_io.LoadedModel` or a plain Keras functional model (wrapped with
``model_io.from_keras``). Traced ``tf.function``s are cached per model so that a second
explanation does not trace again.
"""
from __future__ import annotations

import numpy as np

from core.errors import DisplasiaError

_ATTRIBUTE = "_displasia_explain_handle"


class ModelHandle:
    """Compiled functions of one model; every image argument is ``(N, H, W, 3)`` float32."""

    def __init__(self, loaded):
        self.loaded = loaded
        self.model = loaded.model
        self.description = loaded.description
        self._fns = {}

    # ------------------------------------------------------------------ plumbing
    @property
    def input_shape(self) -> tuple:
        return tuple(self.description.input_shape)

    @property
    def content_hash(self) -> str:
        return self.description.content_hash

    def layer_name(self, layer) -> str:
        """Resolve a layer parameter (None = the CAM layer) and check it is spatial."""
        name = self.description.cam_layer if layer in (None, "") else str(layer)
        if name not in self.description.feature_map_layers:
            raise DisplasiaError(f"Layer '{name}' is not a convolution-block layer of this model; "
                                 f"choose one of {', '.join(self.description.feature_map_layers)}.")
        return name

    def crop_plan(self):
        """The exact crop-based occlusion plan of this model, or None (see ``_crops``)."""
        if "crop_plan" not in self._fns:
            from core.explain._crops import CropPlan

            self._fns["crop_plan"] = CropPlan.build(self)
        return self._fns["crop_plan"]

    def used_scorer(self, crops: bool = True, space: str = "probability"):
        """``(extent (uh, uw), keras model)`` scoring images cut to the pixels the model uses.

        For a plain conv/pool chain (see ``_crops``) the bottom/right pixels outside every
        receptive field are dropped (exact); otherwise the full model. ``space`` "probability"
        scores P(normal), "logit" its log-odds (pre-sigmoid).
        """
        plan = self.crop_plan() if crops else None
        full = self.loaded.score_model if space == "probability" else self.loaded.logit_model
        if plan is None:
            return tuple(self.input_shape[:2]), full
        used = plan.used_score_model if space == "probability" else plan.used_logit_model
        if used is None:
            return tuple(self.input_shape[:2]), full
        return plan.used_extent, used

    def _cached(self, key, build):
        fn = self._fns.get(key)
        if fn is None:
            fn = self._fns[key] = build()
        return fn

    def _spec(self):
        import tensorflow as tf

        return tf.TensorSpec((None, *self.input_shape), tf.float32)

    # ------------------------------------------------------------------ heads
    def p_normal(self, images) -> np.ndarray:
        """P(normal), shape (N,)."""
        return np.asarray(self.loaded.score_fn(np.asarray(images, np.float32)), dtype=np.float32).reshape(-1)

    def normal_scores(self, images, space: str = "probability") -> np.ndarray:
        """P(normal) (``space="probability"``) or its log-odds (``"logit"``), shape (N,)."""
        if space == "probability":
            return self.p_normal(images)
        import tensorflow as tf

        def build():
            logit_model = self.loaded.logit_model
            return tf.function(lambda x: logit_model(x, training=False), input_signature=[self._spec()])

        out = self._cached("logit", build)(np.asarray(images, np.float32))
        return np.asarray(out, dtype=np.float32).reshape(-1)

    def logit_gradients(self, images, sign: float):
        """Gradient of ``sign * logit(normal)`` w.r.t. the pixels, ``(N, H, W, 3)``, and the logits."""
        import tensorflow as tf

        def build():
            logit_model = self.loaded.logit_model

            @tf.function(input_signature=[self._spec(), tf.TensorSpec((), tf.float32)])
            def grads(x, s):
                with tf.GradientTape() as tape:
                    tape.watch(x)
                    z = logit_model(x, training=False)
                    total = tf.reduce_sum(s * z)
                return tape.gradient(total, x), z
            return grads

        g, z = self._cached("logit_grad", build)(np.asarray(images, np.float32), np.float32(sign))
        return g.numpy(), z.numpy()

    def abs_gradient_sum(self, image, noise, sign: float, absolute: bool = True) -> np.ndarray:
        """Sum over the batch of |d(sign * logit)/dx| at ``image + noise[b]``, ``(H, W, 3)``.

        ``absolute=False`` sums the signed gradients instead.

        SmoothGrad's inner loop: summing inside the graph avoids moving every gradient to NumPy.
        """
        import tensorflow as tf

        h, w = self.input_shape[:2]

        def build():
            plan = self.crop_plan()
            logit_model = self.loaded.logit_model
            uh, uw = h, w
            if plan is not None and plan.used_logit_model is not None:
                # pixels outside every receptive field have a zero gradient: skip them (exact)
                (uh, uw), logit_model = plan.used_extent, plan.used_logit_model

            @tf.function(input_signature=[tf.TensorSpec((h, w, 3), tf.float32), self._spec(),
                                          tf.TensorSpec((), tf.float32)])
            def summed(img, eps, s):
                x = img[None, :uh, :uw] + eps[:, :uh, :uw]
                with tf.GradientTape() as tape:
                    tape.watch(x)
                    total = tf.reduce_sum(s * logit_model(x, training=False))
                g = tape.gradient(total, x)
                g = tf.reduce_sum(tf.abs(g) if absolute else g, axis=0)
                return tf.pad(g, [[0, h - uh], [0, w - uw], [0, 0]])
            return summed

        fn = self._cached(("grad_sum", bool(absolute)), build)
        return fn(np.asarray(image, np.float32), np.asarray(noise, np.float32), np.float32(sign)).numpy()

    def layer_gradients(self, images, layer: str, sign: float):
        """Activations A of ``layer`` and d(sign * logit)/dA, both ``(N, h, w, c)``; and logits."""
        import keras
        import tensorflow as tf

        def build():
            logit_model = self.loaded.logit_model
            two = keras.Model(logit_model.input, [logit_model.get_layer(layer).output, logit_model.output])

            @tf.function(input_signature=[self._spec(), tf.TensorSpec((), tf.float32)])
            def grads(x, s):
                with tf.GradientTape() as tape:
                    a, z = two(x, training=False)
                    total = tf.reduce_sum(s * z)
                return a, tape.gradient(total, a), z
            return grads

        a, g, z = self._cached(("layer_grad", layer), build)(np.asarray(images, np.float32), np.float32(sign))
        return a.numpy(), g.numpy(), z.numpy()

    def layer_outputs(self, images, layers: tuple) -> list:
        """Outputs of several layers for a batch (list of ``(N, h, w, c)`` arrays)."""
        import keras
        import tensorflow as tf

        def build():
            m = keras.Model(self.model.input, [self.model.get_layer(n).output for n in layers])
            return tf.function(lambda x: m(x, training=False), input_signature=[self._spec()])

        outs = self._cached(("layers", tuple(layers)), build)(np.asarray(images, np.float32))
        outs = outs if isinstance(outs, (list, tuple)) else [outs]
        return [o.numpy() for o in outs]

    def masked_p_normal(self, image, activations, space: str = "probability"):
        """Score-CAM's inner step: P(normal) (or its logit) of ``image`` times each channel as a mask.

        ``activations`` (h, w, C) are upsampled in the graph with the same bilinear grid as
        ``cam.upsample``, scaled to [0, 1] per channel, multiplied into the image and scored.
        Returns ``(C,)``.
        """
        import tensorflow as tf

        from core.explain.cam import interpolation_matrix

        h, w = self.input_shape[:2]
        acts = np.ascontiguousarray(np.moveaxis(np.asarray(activations, np.float32), -1, 0))
        rows = interpolation_matrix(acts.shape[1], h).astype(np.float32)
        cols = interpolation_matrix(acts.shape[2], w).astype(np.float32)

        def build():
            (uh, uw), score_model = self.used_scorer(space=space)
            f32 = tf.float32

            @tf.function(input_signature=[tf.TensorSpec((h, w, 3), f32), tf.TensorSpec((None, None, None), f32),
                                          tf.TensorSpec((h, None), f32), tf.TensorSpec((w, None), f32)])
            def masked(img, a, r, c):
                up = tf.matmul(tf.matmul(tf.broadcast_to(r[None], (tf.shape(a)[0], h, tf.shape(a)[1])), a),
                               c, transpose_b=True)
                low = tf.reduce_min(up, axis=(1, 2), keepdims=True)
                high = tf.reduce_max(up, axis=(1, 2), keepdims=True)
                mask = (up[:, :uh, :uw] - low) / (high - low + 1e-7)
                return score_model(img[None, :uh, :uw] * mask[..., None], training=False)
            return masked

        fn = self._cached(("masked", space), build)
        return fn(np.asarray(image, np.float32), acts, rows, cols).numpy().reshape(-1)

    def occluded_p_normal(self, image, fill_image, colours, use_image, y0, x0, size_y, size_x,
                          space: str = "probability"):
        """P(normal) (or its logit) of copies of ``image`` with one rectangle each replaced by the fill.

        The occluded batch is built inside the graph (no host copy of every image). Fill is
        ``fill_image`` where ``use_image`` is 1, else the per-window ``colours`` (B, 3).
        """
        import tensorflow as tf

        h, w = self.input_shape[:2]

        def build():
            score_model = self.loaded.score_model if space == "probability" else self.loaded.logit_model
            f32, i32 = tf.float32, tf.int32

            @tf.function(input_signature=[tf.TensorSpec((h, w, 3), f32), tf.TensorSpec((h, w, 3), f32),
                                          tf.TensorSpec((None, 3), f32), tf.TensorSpec((), f32),
                                          tf.TensorSpec((None,), i32), tf.TensorSpec((None,), i32),
                                          tf.TensorSpec((None,), i32), tf.TensorSpec((None,), i32)])
            def occluded(img, fill_img, cols, use, ys, xs, sy, sx):
                rows = tf.range(h)[None, :]
                cols_i = tf.range(w)[None, :]
                in_y = (rows >= ys[:, None]) & (rows < (ys + sy)[:, None])
                in_x = (cols_i >= xs[:, None]) & (cols_i < (xs + sx)[:, None])
                mask = tf.cast(in_y[:, :, None] & in_x[:, None, :], f32)[..., None]
                fill = use * fill_img[None] + (1.0 - use) * cols[:, None, None, :]
                batch = img[None] * (1.0 - mask) + fill * mask
                return score_model(batch, training=False)
            return occluded

        fn = self._cached(("occluded", space), build)
        out = fn(image, fill_image, colours, np.float32(use_image), y0, x0, size_y, size_x)
        return out.numpy().reshape(-1)

    def perturbed_p_normal(self, image, fudged, segments, keep, space: str = "probability"):
        """P(normal) (or its logit) of images whose superpixels with ``keep == 0`` show ``fudged`` instead.

        ``segments`` (H, W) int32 labels 0..S-1, ``keep`` (B, S) float32 of 0/1.
        """
        import tensorflow as tf

        h, w = self.input_shape[:2]

        def build():
            (uh, uw), score_model = self.used_scorer(space=space)
            f32 = tf.float32

            @tf.function(input_signature=[tf.TensorSpec((h, w, 3), f32), tf.TensorSpec((h, w, 3), f32),
                                          tf.TensorSpec((h, w), tf.int32), tf.TensorSpec((None, None), f32)])
            def perturbed(img, fud, seg, on):
                mask = tf.gather(on, seg[:uh, :uw], axis=1)[..., None]  # (B, uh, uw, 1)
                batch = fud[None, :uh, :uw] + mask * (img - fud)[None, :uh, :uw]
                return score_model(batch, training=False)
            return perturbed

        fn = self._cached(("perturbed", space), build)
        return fn(image, fudged, segments, keep).numpy().reshape(-1)


def handle_for(model) -> ModelHandle:
    """The (cached) handle of a LoadedModel or a Keras functional model.

    The handle is kept on the object itself (not in a global table), so it goes away with
    the model: a dashboard that loads many user models does not accumulate them.
    """
    from core import model_io

    if isinstance(model, ModelHandle):
        return model
    owner = model
    handle = owner.__dict__.get(_ATTRIBUTE)
    if handle is None:
        loaded = model if isinstance(model, model_io.LoadedModel) else model_io.from_keras(model)
        handle = ModelHandle(loaded)
        owner.__dict__[_ATTRIBUTE] = handle  # bypasses Keras attribute tracking
    return handle
