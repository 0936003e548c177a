"""Inception-v3 as a feature extractor for Diffusion.Evaluate and `sd eval` (FeatureExtractor's contract: model.onnx
and config.json), for real models, whose FID is defined on Inception-v3's pool3 features.

The weights FID is defined with are the 2015 TensorFlow Inception graph's (pytorch-fid's FID weights, clean-fid's
and NVIDIA's metrics all reproduce it). NVIDIA publishes it as TorchScript (the StyleGAN2-ADA / StyleGAN3 metrics'
detector), which this script wraps and exports without any architecture code of its own:
https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/metrics/inception-2015-12-05.pt. This machine has no
network: fetch the file elsewhere.

    /usr/bin/python3 tools/eval/export_inception.py inception-2015-12-05.pt models/inception-fid
    ./sd reference-features /data/coco-val2014-30k --extractor models/inception-fid     # the real images' set
    SD_VAE_EXTRACTOR_DIR=models/inception-fid ...  (vae-svc), then ./sd eval --target ...

The graph takes float32 [B, 3, 299, 299], RGB values 0..255 (config "range": [0, 255]); FeatureExtractor resizes
each channel to 299x299 as clean-fid does (Pillow's antialiased bicubic on float32 planes, clipped to [0, 255]:
common's PilResample, checked against Pillow), so that figures are comparable with clean-fid's "clean" mode.
Outputs: features [B, 2048] (pool3) and logits [B, 1008], the log of the 1008-way softmax without the output bias,
as the original TensorFlow Inception Score computes it (StyleGAN's detector(no_output_bias=True)).

    /usr/bin/python3 tools/eval/export_inception.py --self-test OUT_DIR

exports a stand-in TorchScript module with the detector's interface instead (its numbers mean nothing), to check
this export path and the Java loader on a machine without the file.
"""
import argparse
import json
import os

import numpy as np
import torch
import torch.nn.functional as F


class Exported(torch.nn.Module):
    """The detector's pool3 features and its bias-free class log-probabilities, for one input."""

    def __init__(self, detector):
        super().__init__()
        self.detector = detector

    def forward(self, images):  # float32 [B, 3, 299, 299], RGB 0..255
        features = self.detector(images, return_features=True)  # [B, 2048]
        probs = self.detector(images, no_output_bias=True)  # [B, 1008], softmax
        return features, torch.log(probs.clamp_min(1e-30))


class StandIn(torch.nn.Module):
    """The detector's call signature and output shapes, from a fixed random projection (for --self-test)."""

    def __init__(self):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.features = torch.nn.Parameter(torch.randn(3 * 8 * 8, 2048, generator=g) * 0.1, requires_grad=False)
        self.classes = torch.nn.Parameter(torch.randn(2048, 1008, generator=g) * 0.05, requires_grad=False)

    def forward(self, img, return_features: bool = False, use_fp16: bool = False, no_output_bias: bool = False):
        x = (img.to(torch.float32) - 128) / 128
        f = F.avg_pool2d(x, 37).flatten(1) @ self.features  # [B, 3, 8, 8] at 299x299
        if return_features:
            return f
        return torch.softmax(f @ self.classes, dim=1)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("torchscript", nargs="?", help="inception-2015-12-05.pt")
    ap.add_argument("out", help="the extractor directory to write")
    ap.add_argument("--self-test", action="store_true", help="export a stand-in with the same interface")
    args = ap.parse_args()
    if args.self_test:
        detector = torch.jit.script(StandIn())
    elif args.torchscript:
        detector = torch.jit.load(args.torchscript, map_location="cpu").eval()
    else:
        ap.error("give the TorchScript file, or --self-test")
    # scripted too: a traced wrapper cannot call a TorchScript module with keyword arguments
    graph = torch.jit.script(Exported(detector).eval())
    os.makedirs(args.out, exist_ok=True)
    probe = (torch.sin(torch.arange(2 * 3 * 299 * 299, dtype=torch.float64) * 0.01) * 127.5 + 127.5).float()
    probe = probe.reshape(2, 3, 299, 299)
    with torch.no_grad():
        torch.onnx.export(graph, (probe,), os.path.join(args.out, "model.onnx"), opset_version=14,
                          input_names=["images"], output_names=["features", "logits"],
                          dynamic_axes={"images": {0: "batch"}, "features": {0: "batch"}, "logits": {0: "batch"}})
        f, logits = graph(probe)
    with open(os.path.join(args.out, "reference_outputs.json"), "w") as fh:
        json.dump({"about": "outputs of the exported module for images = 127.5 + 127.5 sin(0.01 i) over the flat "
                            "index i of [2, 3, 299, 299]", "stand_in": args.self_test,
                   "features_first": f.flatten()[:8].tolist(), "logits_first": logits.flatten()[:8].tolist(),
                   "logsumexp_first": float(torch.logsumexp(logits[0].double(), 0))}, fh, indent=1)
    with open(os.path.join(args.out, "config.json"), "w") as fh:
        json.dump({"input": "images", "size": 299, "range": [0, 255], "features": "features", "logits": "logits",
                   "about": "Inception-v3 pool3 (FID's weights, the 2015 TF graph) by tools/eval/export_inception.py"
                   + (" -- a STAND-IN of its interface, not Inception" if args.self_test else "")}, fh, indent=1)
    print(f"wrote {args.out}: features {tuple(f.shape)}, logits {tuple(logits.shape)}; next, its reference set: "
          f"./sd reference-features IMAGES_DIR --extractor {args.out}")


if __name__ == "__main__":
    np.set_printoptions(precision=4)
    main()
