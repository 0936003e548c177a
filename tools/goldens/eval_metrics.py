#!/usr/bin/env python3
"""Reference values of the evaluation measures, from numpy and scipy as the reference implementations compute them,
on synthetic feature sets both this script and the Java test generate bit for bit (splitmix64 uniforms, a latent
times a mixing matrix accumulated in the same order, plus noise), for MetricsReferenceTest.

    /usr/bin/python3 tools/goldens/eval_metrics.py   # writes evaluation/src/test/resources/goldens/metrics.json

  FID   pytorch-fid's calculate_frechet_distance: np.cov(rowvar=False), scipy.linalg.sqrtm(sigma1.dot(sigma2),
        disp=False), its offset when not finite, the real part; and, as a second reference, the same trace from
        numpy's symmetric eigenvalues of F1 F2^T F2 F1^T, F F^T = the covariance (the centred vectors, or the
        covariance's symmetric root when there are more vectors than dimensions), exact for singular ones too
  IS    openai/improved-gan's inception_score: contiguous splits, exp(mean KL(p(y|x) || p(y)))
  P/R   NVlabs' ManifoldEstimator (k = 3): squared distances, the k-th neighbour radius, "inside" when <=
  KID   the unbiased MMD^2 with the kernel (x.y / d + 1)^3 over the whole sets
Debian's python3-numpy and python3-scipy.
"""
import json
import os

import numpy as np
import scipy
from scipy import linalg

MASK = np.uint64(0xFFFFFFFFFFFFFFFF)


def uniforms(seed, count):
    """splitmix64: state += golden gamma, then the mix; the top 53 bits as a double in [0, 1)."""
    idx = np.arange(1, count + 1, dtype=np.uint64)
    with np.errstate(over="ignore"):
        z = np.uint64(seed) + idx * np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype(np.float64) * (2.0 ** -53)


def normals(seed, shape):
    """Irwin-Hall: the sum of 4 uniforms, centred, variance 1 (sqrt(3) of the 4-sum's std)."""
    n = int(np.prod(shape))
    u = uniforms(seed, 4 * n).reshape(n, 4)
    s = ((u[:, 0] + u[:, 1]) + u[:, 2]) + u[:, 3]
    return ((s - 2.0) * np.sqrt(3.0)).reshape(shape)


def features(seed, n, d, rank, noise, shift, scale):
    """x = (z W) / sqrt(rank) * scale + noise e + shift, z [n, rank], W [rank, d], e [n, d]; z W summed over k in
    order."""
    z = normals(seed, (n, rank))
    w = normals(seed + 1, (rank, d))
    e = normals(seed + 2, (n, d))
    x = np.zeros((n, d))
    for k in range(rank):
        x = x + z[:, k:k + 1] * w[k:k + 1, :]
    return x / np.sqrt(rank) * scale + noise * e + shift


def fid_pytorch(a, b, eps=1e-6):
    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    diff = mu1 - mu2
    covmean, _ = linalg.sqrtm(s1.dot(s2), disp=False)
    if not np.isfinite(covmean).all():
        offset = np.eye(s1.shape[0]) * eps
        covmean = linalg.sqrtm((s1 + offset).dot(s2 + offset))
    if np.iscomplexobj(covmean):
        covmean = covmean.real
    return float(diff.dot(diff) + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


def factor(x):
    """F with F^T F = np.cov(x, rowvar=False): the centred vectors when n <= d, else the covariance's symmetric
    square root (so that F1 F2^T has no rank-deficient side whose round-off eigenvalues sqrt would amplify)."""
    f = (x - x.mean(0)) / np.sqrt(len(x) - 1)
    if len(x) <= x.shape[1]:
        return f
    lam, v = np.linalg.eigh(f.T.dot(f))
    return (v * np.sqrt(np.clip(lam, 0, None))).dot(v.T)


def fid_eigen(a, b):
    fa, fb = factor(a), factor(b)
    c = fa.dot(fb.T)
    m = c.dot(c.T) if c.shape[0] <= c.shape[1] else c.T.dot(c)
    tr = np.sqrt(np.clip(np.linalg.eigvalsh(m), 0, None)).sum()
    diff = a.mean(0) - b.mean(0)
    ta = (((a - a.mean(0)) / np.sqrt(len(a) - 1)) ** 2).sum()
    tb = (((b - b.mean(0)) / np.sqrt(len(b) - 1)) ** 2).sum()
    return float(diff.dot(diff) + ta + tb - 2 * tr)


def inception_score(logits, splits):
    e = np.exp(logits - logits.max(1, keepdims=True))
    preds = e / e.sum(1, keepdims=True)
    scores = []
    for i in range(splits):
        part = preds[(i * preds.shape[0] // splits):((i + 1) * preds.shape[0] // splits), :]
        kl = part * (np.log(part) - np.log(np.expand_dims(np.mean(part, 0), 0)))
        kl = np.mean(np.sum(kl, 1))
        scores.append(np.exp(kl))
    return float(np.mean(scores)), float(np.std(scores))


def sq_dist(u, v):
    nu = (u ** 2).sum(1)[:, None]
    nv = (v ** 2).sum(1)[None, :]
    return np.maximum(nu - 2 * u.dot(v.T) + nv, 0.0)


def precision_recall(real, gen, k=3):
    r_real = np.partition(sq_dist(real, real), k, axis=1)[:, k]
    r_gen = np.partition(sq_dist(gen, gen), k, axis=1)[:, k]
    precision = float((sq_dist(gen, real) <= r_real[None, :]).any(1).mean())
    recall = float((sq_dist(real, gen) <= r_gen[None, :]).any(1).mean())
    return precision, recall


def kid(a, b):
    d = a.shape[1]
    kxx = (a.dot(a.T) / d + 1) ** 3
    kyy = (b.dot(b.T) / d + 1) ** 3
    kxy = (a.dot(b.T) / d + 1) ** 3
    m, n = len(a), len(b)
    return float((kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
                 - 2 * kxy.sum() / (m * n))


SETS = {  # name: (seed, n, d, rank, noise, shift, scale)
    "small_real": (11, 500, 64, 16, 1.0, 0.0, 1.0),
    "small_gen": (21, 400, 64, 16, 1.0, 0.3, 1.2),
    "wide_real": (31, 2560, 2048, 64, 1.0, 0.0, 1.0),
    "wide_gen": (41, 2304, 2048, 64, 1.0, 0.05, 1.1),
    "singular_real": (51, 600, 2048, 32, 1e-3, 0.0, 1.0),
    "singular_gen": (61, 500, 2048, 32, 1e-3, 0.1, 0.9),
}


def main():
    sets = {name: features(*spec) for name, spec in SETS.items()}
    out = {"about": "tools/goldens/eval_metrics.py; numpy " + np.__version__ + ", scipy " + scipy.__version__,
           "sets": {name: dict(zip(["seed", "n", "d", "rank", "noise", "shift", "scale"], spec))
                    for name, spec in SETS.items()},
           "fid": {}}
    for pair in ["small", "wide", "singular"]:
        a, b = sets[pair + "_real"], sets[pair + "_gen"]
        out["fid"][pair] = {"pytorch_fid": fid_pytorch(a, b), "eigen": fid_eigen(a, b)}
        print(pair, out["fid"][pair])
    logits = normals(71, (1000, 10)) * 3.0
    out["inception_score"] = {"seed": 71, "n": 1000, "classes": 10, "scale": 3.0, "splits": 10,
                              "value": inception_score(logits, 10)}
    out["precision_recall"] = dict(zip(["precision", "recall"], precision_recall(sets["small_real"],
                                                                                 sets["small_gen"])))
    out["kid"] = kid(sets["small_real"], sets["small_gen"])
    print(out["inception_score"], out["precision_recall"], out["kid"])
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    path = os.path.join(root, "evaluation/src/test/resources/goldens/metrics.json")
    with open(path, "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")
    print("wrote", path)


if __name__ == "__main__":
    main()
