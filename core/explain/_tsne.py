"""t-SNE that hostile or degenerate features cannot turn into a dead server.

scikit-learn's Barnes-Hut t-SNE with ``init="pca"`` divides the PCA start by the standard
deviation of its first component; on identical rows (four copies of one cell, an all-zero
feature layer) that is 0, the start becomes NaN and the native quad tree segfaults, taking
the whole Streamlit server with it. Two defences:

1. *Guard*: non-finite features are refused with a one-line DisplasiaError; the PCA start
   is computed here exactly as scikit-learn does and, when it is not finite or has no
   spread, the documented random start is used instead (``init_used`` says which).
2. *Isolation*: the fit runs in a child Python process that imports only NumPy and
   scikit-learn, so a native crash we did not foresee costs one request (a DisplasiaError
   in the parent), never the process that serves every user.

>>> import numpy as np
>>> pca_start(np.ones((4, 8)), seed=0) is None  # identical rows: no PCA start, a random one
True
"""
from __future__ import annotations

import io
import subprocess
import sys

import numpy as np

from core.errors import DisplasiaError

#: Seconds one projection may take in the child process.
TIMEOUT_S = 900

_CHILD = r"""
import io, json, sys
import numpy as np
from sklearn.manifold import TSNE
args = json.loads(sys.argv[1])
x = np.load(io.BytesIO(sys.stdin.buffer.read()), allow_pickle=False)
init = args["init"]
if init == "array":
    init = x[:, :2].astype(np.float32)
    x = x[:, 2:]
extra = {"max_iter": args["max_iter"]} if args.get("max_iter") else {}
y = TSNE(n_components=2, perplexity=args["perplexity"], init=init, random_state=args["seed"], **extra).fit_transform(x)
buffer = io.BytesIO()
np.save(buffer, np.asarray(y, dtype=np.float32), allow_pickle=False)
sys.stdout.buffer.write(buffer.getvalue())
"""


def pca_start(features, seed: int):
    """scikit-learn's ``init="pca"`` start for these features, or None when it is degenerate."""
    from sklearn.decomposition import PCA

    x = np.asarray(features, dtype=np.float64)
    if len(x) < 3 or np.ptp(x, axis=0).max() == 0:
        return None
    with np.errstate(all="ignore"):
        pca = PCA(n_components=2, random_state=np.random.RandomState(int(seed)))
        pca.set_output(transform="default")
        start = pca.fit_transform(x).astype(np.float32, copy=False)
        spread = float(np.std(start[:, 0]))
        if not np.isfinite(spread) or spread <= 1e-12 * max(1.0, float(np.abs(start).max())):
            return None
        start = start / spread * 1e-4
    return start if np.isfinite(start).all() else None


def tsne_2d(features, *, perplexity: float, seed: int = 0, isolate: bool = True, max_iter: int | None = None):
    """``((N, 2) float32, init_used)``: t-SNE of ``(N, F)`` features, guarded and isolated.

    ``init_used`` is "pca" (scikit-learn's default start, same result as ``init="pca"``) or
    "random" (the PCA start was degenerate).
    """
    x = np.asarray(features, dtype=np.float64)
    if x.ndim != 2 or len(x) < 2:
        raise DisplasiaError("t-SNE needs a table of at least two feature vectors.")
    if not np.isfinite(x).all():
        raise DisplasiaError("The model's features contain NaN or infinite values, so they cannot be projected.")
    start = pca_start(x, seed)
    init_used = "random" if start is None else "pca"
    args = {"perplexity": float(perplexity), "seed": int(seed), "init": "random" if start is None else "array",
            "max_iter": int(max_iter) if max_iter else None}
    payload = x if start is None else np.hstack([start.astype(np.float64), x])
    if not isolate:
        from sklearn.manifold import TSNE

        init = "random" if start is None else start
        extra = {"max_iter": args["max_iter"]} if args["max_iter"] else {}
        y = TSNE(n_components=2, perplexity=args["perplexity"], init=init, random_state=args["seed"],
                 **extra).fit_transform(x)
        return np.asarray(y, dtype=np.float32), init_used
    return _run_child(payload, args), init_used


def _run_child(payload, args, script: str = _CHILD) -> np.ndarray:
    import json

    buffer = io.BytesIO()
    np.save(buffer, payload, allow_pickle=False)
    try:
        done = subprocess.run([sys.executable, "-c", script, json.dumps(args)], input=buffer.getvalue(),
                              capture_output=True, timeout=TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired:
        raise DisplasiaError(f"t-SNE took longer than {TIMEOUT_S} s and was stopped; use PCA.") from None
    except OSError as exc:
        raise DisplasiaError(f"Could not start the t-SNE process: {exc.strerror or exc}.") from None
    if done.returncode != 0:
        reason = f"signal {-done.returncode}" if done.returncode < 0 else f"exit {done.returncode}"
        last = (done.stderr.decode("utf-8", "replace").strip().splitlines() or [""])[-1][:160]
        raise DisplasiaError(f"t-SNE failed on these features ({reason}{': ' + last if last else ''}); use PCA.")
    try:
        y = np.load(io.BytesIO(done.stdout), allow_pickle=False)
    except (ValueError, OSError, EOFError):
        raise DisplasiaError("t-SNE returned no result; use PCA.") from None
    if y.shape != (len(payload), 2) or not np.isfinite(y).all():
        raise DisplasiaError("t-SNE returned an invalid result; use PCA.")
    return y.astype(np.float32)
