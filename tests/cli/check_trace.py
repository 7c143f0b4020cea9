#!/usr/bin/env python3
"""Checks an infokv trace with h5py and numpy alone, no infokv code: the
root attributes, every dataset's shape and type against traces/SCHEMA.md,
and attention recomputed from q and k (causal softmax of q.k/sqrt(d) with
kv_head = h // (H // G)) against /attn/lse, /attn/probs and /attn/out.

Usage: check_trace.py TRACE...   Exit 0 when every trace passes, 1 if not.
"""
import sys

import h5py
import numpy as np

BIG = {"qkv/q", "qkv/k", "qkv/v", "attn/out", "attn/probs", "hidden/states", "logits/full"}


def fail(msg):
    raise AssertionError(msg)


def expect(cond, msg):
    if not cond:
        fail(msg)


def check(path):
    f = h5py.File(path, "r")
    a = f.attrs
    expect(a["format"] == "infokv-trace", "format is %r" % a["format"])
    expect(int(a["version"]) == 1, "version %r" % a["version"])
    T = int(a["n_tokens"])
    layers = np.asarray(a["layers"])
    Lp = len(layers)
    H, G, d = int(a["n_heads"]), int(a["n_kv_heads"]), int(a["head_dim"])
    D, V = int(a["dim"]), int(a["vocab_size"])
    expect(H % G == 0, "n_heads %d not a multiple of n_kv_heads %d" % (H, G))
    expect(np.all(np.diff(layers) > 0) and layers[0] >= 0 and layers[-1] < int(a["n_layers"]),
           "layers %s" % layers)
    expect(a["complete"] in (0, 1), "complete %r" % a["complete"])
    big = np.float16 if a["dtype"] == "f16" else np.float32
    K = f["logits/topk_ids"].shape[1] if "logits/topk_ids" in f else None
    shapes = {
        "tokens": (T,), "logits/entropy": (T,), "logits/entropy_topk": (T,),
        "logits/logprob": (T,), "logits/topk_ids": (T, K), "logits/topk_logprobs": (T, K),
        "logits/full": (T, V), "hidden/evolution": (Lp, T), "hidden/states": (Lp + 1, T, D),
        "qkv/q": (Lp, H, T, d), "qkv/k": (Lp, G, T, d), "qkv/v": (Lp, G, T, d),
        "attn/lse": (Lp, H, T), "attn/out": (Lp, H, T, d), "attn/probs": (Lp, H, T, T),
    }
    for name, shape in shapes.items():
        if name not in f:
            continue
        ds = f[name]
        expect(ds.shape == shape, "%s has shape %s, expected %s" % (name, ds.shape, shape))
        want = np.int32 if name in ("tokens", "logits/topk_ids") else big if name in BIG else np.float32
        expect(ds.dtype == want, "%s has dtype %s, expected %s" % (name, ds.dtype, np.dtype(want)))
    expect("tokens" in f, "no /tokens")
    if "logits/entropy_topk" in f:
        expect(int(f["logits/entropy_topk"].attrs["k"]) >= 1, "entropy_topk without k")
    if "logits/logprob" in f and T > 0:
        expect(np.isnan(f["logits/logprob"][0]), "logprob[0] is not NaN")

    rows = 0
    if T > 0 and "qkv/q" in f and "qkv/k" in f:
        eps = 2.0 ** -11 + 1e-6 if big is np.float16 else 1e-6
        for l in range(Lp):
            q = f["qkv/q"][l].astype(np.float64)
            k = f["qkv/k"][l].astype(np.float64)
            v = f["qkv/v"][l].astype(np.float64) if "qkv/v" in f else None
            for h in range(H):
                g = h // (H // G)
                s = q[h] @ k[g].T / np.sqrt(d)                       # [T, T]
                mag = np.abs(q[h]) @ np.abs(k[g]).T / np.sqrt(d)
                causal = np.tril(np.ones((T, T), dtype=bool))
                s = np.where(causal, s, -np.inf)
                m = s.max(axis=1, keepdims=True)
                lse = (m + np.log(np.exp(s - m).sum(axis=1, keepdims=True)))[:, 0]
                p = np.exp(s - lse[:, None])
                E = 2 * eps * np.where(causal, mag, 0).max(axis=1)     # score error bound per row
                if "attn/lse" in f:
                    got = f["attn/lse"][l, h]
                    dev = np.abs(got - lse)
                    expect(np.all(dev <= E + 1e-5 * (1 + np.abs(lse))),
                           "lse differs at layer slot %d head %d (max %g)" % (l, h, dev.max()))
                if "attn/probs" in f:
                    got = f["attn/probs"][l, h].astype(np.float64)
                    tol = p * (np.expm1(2 * E)[:, None] + 2 * eps) + 1e-6
                    dev = np.abs(got - p)
                    expect(np.all(dev <= tol), "probs differ at layer slot %d head %d (max %g)"
                           % (l, h, dev.max()))
                    expect(np.all(got[~causal] == 0), "probs above the diagonal")
                if "attn/out" in f and v is not None:
                    got = f["attn/out"][l, h].astype(np.float64)
                    want = p @ v[g]
                    mass = p @ np.abs(v[g])
                    tol = mass * (np.expm1(2 * E)[:, None] + 3 * eps) + eps * np.abs(want) + 1e-6
                    dev = np.abs(got - want)
                    expect(np.all(dev <= tol), "out differs at layer slot %d head %d (max %g)"
                           % (l, h, dev.max()))
                rows += T
    print("%s: ok (T=%d, %d stored layers, dtype %s, %d attention rows recomputed)"
          % (path, T, Lp, a["dtype"], rows))


def main(argv):
    status = 0
    for path in argv[1:]:
        try:
            check(path)
        except (AssertionError, KeyError, OSError) as e:
            print("%s: FAILED: %s" % (path, e))
            status = 1
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv))
