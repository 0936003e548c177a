#!/usr/bin/env python3
"""PyTorch eager timing of the same weights, for the benchmark table: per-image latency and per-stage times of
text encoding, 25 DDIM steps with classifier-free guidance, and decoding, batch 1, 64x64.

    /usr/bin/python3 tools/bench-model/bench_torch.py --weights demo|PATH.pt --threads N --runs R [--steps 25]

demo: the checkpoints of tools/demo-model/work (present after build.py). Prints one JSON line.
"""
import argparse
import json
import os
import sys
import time

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "demo-model"))

import build  # noqa: E402
import clip_bpe  # noqa: E402
import nets  # noqa: E402
import sampling  # noqa: E402


def load(weights):
    if weights == "demo":
        return build.load_trained(os.path.join(os.path.dirname(HERE), "demo-model", "work"))
    s = torch.load(weights)
    vocab, merges = build.build_tokenizer()
    m = {"vocab": vocab, "merges": merges, "vae": nets.AutoencoderKL(), "te": nets.TextEncoder(len(vocab)),
         "unet": nets.UNet(ch=tuple(s["channels"])), "shift": torch.zeros(4), "scale": 1.0}
    for k in ("vae", "te", "unet"):
        m[k].load_state_dict(s[k])
        m[k].eval()
    return m


@torch.no_grad()
def one(m, steps, seed):
    nets.Linear.as_conv = True  # the tool's fastest path on Debian's torch (generic BLAS, oneDNN convolutions)
    t0 = time.perf_counter()
    tok = clip_bpe.Tokenizer(m["vocab"], m["merges"])
    ids = torch.tensor([tok.encode(""), tok.encode("a red circle on a blue background")])
    ctx = m["te"](ids)[0]
    t1 = time.perf_counter()
    ac = sampling.Schedule().alphas_cumprod
    x = torch.randn([1, 4, 8, 8], generator=torch.Generator().manual_seed(seed))
    ratio = 1000 // steps
    for t in sampling.ddim_timesteps(steps):
        eps_u, eps_c = m["unet"](torch.cat([x, x]), torch.tensor(float(t)), ctx).chunk(2)
        eps = eps_u + 7.5 * (eps_c - eps_u)
        a_t, a_prev = ac[t], (ac[t - ratio] if t - ratio >= 0 else ac[0])
        x0 = (x - (1 - a_t).sqrt() * eps) / a_t.sqrt()
        x = a_prev.sqrt() * x0 + (1 - a_prev).sqrt() * eps
    t2 = time.perf_counter()
    sampling.decode(m, x)
    t3 = time.perf_counter()
    return {"total_ms": (t3 - t0) * 1e3, "text_ms": (t1 - t0) * 1e3, "denoise_ms": (t2 - t1) * 1e3,
            "decode_ms": (t3 - t2) * 1e3}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--weights", required=True)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--steps", type=int, default=25)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    m = load(args.weights)
    one(m, args.steps, 0)  # warm-up
    runs = [one(m, args.steps, i) for i in range(args.runs)]
    med = lambda k: sorted(r[k] for r in runs)[len(runs) // 2]
    print(json.dumps({k: med(k) for k in runs[0]} | {"threads": args.threads, "runs": args.runs,
                                                      "torch": torch.__version__}))


if __name__ == "__main__":
    main()
