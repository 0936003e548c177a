#!/usr/bin/env python3
"""The demo's feature extractor for the quality measures (FID, IS, precision/recall; issue 15): a small classifier of
the drawn scenes (shape, foreground colour, background colour, size) whose penultimate layer gives 64 features, and
the reference features of real scenes.

    /usr/bin/python3 tools/demo-model/extractor.py     # about a minute on 2 cores; writes models/scene-features/

Writes model.onnx (images float32 [B, 3, 64, 64], RGB in [0, 1] -> features [B, 64], logits [B, 32]: the log of
p(shape) x p(colour), the joint the Inception Score is taken over), config.json, reference_features.npy (float32
[2048, 64], scenes from a fixed seed), reference_outputs.json (the exported graph's outputs for fixed inputs, for
the Java contract test) and README.md. Real FID features are Inception-v3 pool3 (see the model card); these play
their part for the 64x64 demo model, which Inception cannot judge.
"""
import json
import os
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

import scenes

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(os.path.dirname(os.path.dirname(HERE)), "models", "scene-features")
SIZES = list(scenes.SIZES)


class Extractor(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(3, 16, 3, stride=2, padding=1), nn.SiLU(),
            nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.SiLU(),
            nn.Conv2d(32, 64, 3, stride=2, padding=1), nn.SiLU(),
            nn.Conv2d(64, 64, 3, stride=2, padding=1), nn.SiLU())
        self.features = nn.Linear(64 * 4 * 4, 64)
        self.shape = nn.Linear(64, len(scenes.SHAPES))
        self.colour = nn.Linear(64, len(scenes.COLOURS))
        self.background = nn.Linear(64, len(scenes.COLOURS))
        self.size = nn.Linear(64, len(SIZES))

    def heads(self, images):
        f = self.features(self.body(images * 2 - 1).flatten(1))
        h = F.silu(f)
        return f, self.shape(h), self.colour(h), self.background(h), self.size(h)


class Exported(nn.Module):
    """images [B, 3, 64, 64] in [0, 1] -> features [B, 64] (standardized: each minus its mean over the reference
    scenes, over its standard deviation there, so that real features are about unit scale as Inception's are and
    FID and KID's cubic kernel see moderate values), logits [B, 32] = log p(shape) + log p(colour)."""

    def __init__(self, m, mean, std):
        super().__init__()
        self.m = m
        self.register_buffer("mean", mean)
        self.register_buffer("std", std)

    def forward(self, images):
        f, shape, colour, _, _ = self.m.heads(images)
        joint = F.log_softmax(shape, 1)[:, :, None] + F.log_softmax(colour, 1)[:, None, :]
        return (f - self.mean) / self.std, joint.flatten(1)


def batch(rng, n):
    sc = [scenes.random_scene(rng) for _ in range(n)]
    x = torch.from_numpy(np.stack([scenes.render(s, 64) for s in sc])).permute(0, 3, 1, 2).float() / 255
    y = [torch.tensor([scenes.SHAPES.index(s["shape"]) for s in sc]),
         torch.tensor([scenes.COLOURS.index(s["colour"]) for s in sc]),
         torch.tensor([scenes.COLOURS.index(s["background"]) for s in sc]),
         torch.tensor([SIZES.index(s["size"]) for s in sc])]
    return x, y


def main():
    torch.manual_seed(0)
    torch.set_num_threads(2)
    rng = np.random.default_rng(1234)
    m = Extractor()
    opt = torch.optim.Adam(m.parameters(), 2e-3)
    t0 = time.time()
    for step in range(1200):
        x, ys = batch(rng, 64)
        outs = m.heads(x)[1:]
        loss = sum(F.cross_entropy(o, y) for o, y in zip(outs, ys))
        opt.zero_grad()
        loss.backward()
        opt.step()
    m.eval()
    test_rng = np.random.default_rng(99)
    with torch.no_grad():
        x, ys = batch(test_rng, 1024)
        accuracy = [float((o.argmax(1) == y).float().mean()) for o, y in zip(m.heads(x)[1:], ys)]
    print(f"trained in {time.time() - t0:.0f} s; held-out accuracy shape/colour/background/size {accuracy}")
    os.makedirs(OUT, exist_ok=True)
    with torch.no_grad():
        ref_x, _ = batch(np.random.default_rng(2024), 2048)
        raw = torch.cat([m.heads(ref_x[i:i + 256])[0] for i in range(0, 2048, 256)])
    graph = Exported(m, raw.mean(0), raw.std(0))
    probe = torch.sin(torch.arange(2 * 3 * 64 * 64, dtype=torch.float64) * 0.01).float().reshape(2, 3, 64, 64)
    probe = (probe + 1) / 2
    torch.onnx.export(graph, (probe,), f"{OUT}/model.onnx", opset_version=14, input_names=["images"],
                      output_names=["features", "logits"],
                      dynamic_axes={"images": {0: "batch"}, "features": {0: "batch"}, "logits": {0: "batch"}})
    with torch.no_grad():
        f, logits = graph(probe)
        reference = torch.cat([graph(ref_x[i:i + 256])[0] for i in range(0, 2048, 256)]).numpy().astype(np.float32)
    np.save(f"{OUT}/reference_features.npy", reference)
    with open(f"{OUT}/reference_outputs.json", "w") as fh:
        json.dump({"about": "outputs of the exported module for images = (sin(0.01 i) + 1) / 2 over the flat index i "
                            "of [2, 3, 64, 64]", "features_first": f.flatten()[:8].tolist(),
                   "features_sum": float(f.double().sum()), "logits_first": logits.flatten()[:8].tolist(),
                   "logits_sum": float(logits.double().sum())}, fh, indent=1)
    with open(f"{OUT}/config.json", "w") as fh:
        json.dump({"input": "images", "size": 64, "range": [0, 1], "features": "features", "logits": "logits",
                   "reference_features": "reference_features.npy", "held_out_accuracy": dict(zip(
                       ["shape", "colour", "background", "size"], accuracy))}, fh, indent=1)
    print("wrote", OUT)


if __name__ == "__main__":
    main()
