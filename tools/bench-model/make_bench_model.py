#!/usr/bin/env python3
"""The benchmark model: the demo model's architecture with random weights, its UNet widened so that one UNet
step takes >= 50 ms on a 2-core CPU. Generated at benchmark time, never committed.

    /usr/bin/python3 tools/bench-model/make_bench_model.py [--out target/bench-model] [--unet-channels 192,384]

Writes the SD ONNX layout to --out and the PyTorch weights to <out>.pt (for the PyTorch eager comparison).
"""
import argparse
import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tools", "demo-model"))

import build  # noqa: E402
import export  # noqa: E402
import nets  # noqa: E402


def make(channels):
    torch.manual_seed(7)
    vocab, merges = build.build_tokenizer()
    m = {"vocab": vocab, "merges": merges, "vae": nets.AutoencoderKL(), "te": nets.TextEncoder(len(vocab)),
         "unet": nets.UNet(ch=channels), "shift": torch.zeros(4), "scale": 1.0}
    for k in ("vae", "te", "unet"):
        m[k].eval()
    return m


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(ROOT, "target", "bench-model"))
    ap.add_argument("--unet-channels", default="384,768")
    args = ap.parse_args()
    channels = tuple(int(c) for c in args.unet_channels.split(","))
    m = make(channels)
    export.export_all(m, args.out)
    with open(os.path.join(args.out, "unet", "config.json")) as f:
        cfg = f.read().replace("[64, 128]", str(list(channels)))
    with open(os.path.join(args.out, "unet", "config.json"), "w") as f:
        f.write(cfg)
    torch.save({"channels": channels, "vae": m["vae"].state_dict(), "te": m["te"].state_dict(),
                "unet": m["unet"].state_dict()}, args.out + ".pt")
    print(f"bench model: UNet {nets.count(m['unet']):,} parameters, channels {channels} -> {args.out}")


if __name__ == "__main__":
    main()
