#!/usr/bin/env python3
"""The demo model's PyTorch modules rebuilt from its committed ONNX graphs, for the reference sampler without the
training checkpoints (build.py's work/ folder, 79 minutes of training, is not committed).

    /usr/bin/python3 tools/demo-model/from_onnx.py      # loads models/sd-shapes-64 and checks it

load() returns the dict build.load_trained returns (vocab, merges, vae, te, unet, shift, scale), with every
parameter taken from the graphs' initializers: those torch.onnx.export kept under their module names
(prefixed by the export wrapper: unet., te., enc., dec.), and those it renamed to onnx::Mul_N / onnx::Add_N (the
GroupNorm affine after InstanceNormalization) or onnx::MatMul_N (a Linear's weight, transposed), found by the
module path in the name of the node that consumes them. scale is vae_decoder/config.json's scaling_factor (as the
services read it). check() runs the rebuilt modules on reference_outputs.json's inputs (recorded at export from
the trained modules) and compares.
"""
import json
import math
import os
import sys

import onnx
import torch
from onnx import numpy_helper

import build
import nets

HERE = os.path.dirname(os.path.abspath(__file__))
MODEL = os.path.join(os.path.dirname(os.path.dirname(HERE)), "models", "sd-shapes-64")


def module_path(node_name):
    """'/enc/body/body.0/n1/Mul' -> 'body.0.n1': the scopes under the wrapper's root, a Sequential's or a
    ModuleList's child scope ('body.0') replacing its parent's ('body')."""
    out = []
    for s in node_name.strip("/").split("/")[1:-1]:
        if out and s.startswith(out[-1] + "."):
            out[-1] = s
        else:
            out.append(s)
    return ".".join(out)


def state_dict(graph_file, prefix, module):
    g = onnx.load(graph_file).graph
    inits = {i.name: torch.from_numpy(numpy_helper.to_array(i).copy()) for i in g.initializer}
    want = module.state_dict()
    got = {}
    for name, t in inits.items():
        if name.startswith(prefix) and name[len(prefix):] in want:
            got[name[len(prefix):]] = t
    for node in g.node:
        for i, name in enumerate(node.input):
            if not name.startswith("onnx::") or name not in inits:
                continue
            key = module_path(node.name) + {"Mul": ".weight", "Add": ".bias", "MatMul": ".weight"}[node.op_type]
            t = inits[name].t() if node.op_type == "MatMul" else inits[name]
            got[key] = t
    missing = [k for k in want if k not in got]
    if missing:
        raise SystemExit(f"{graph_file}: no initializer for {missing[:8]}{'...' if len(missing) > 8 else ''}")
    return {k: got[k].reshape(want[k].shape).to(want[k].dtype) for k in want}


def load(model=MODEL):
    vocab, merges = build.build_tokenizer()
    te, unet, vae = nets.TextEncoder(len(vocab)), nets.UNet(), nets.AutoencoderKL()
    te.load_state_dict(state_dict(f"{model}/text_encoder/model.onnx", "te.", te))
    unet.load_state_dict(state_dict(f"{model}/unet/model.onnx", "unet.", unet))
    vae.encoder.load_state_dict(state_dict(f"{model}/vae_encoder/model.onnx", "enc.", vae.encoder))
    vae.decoder.load_state_dict(state_dict(f"{model}/vae_decoder/model.onnx", "dec.", vae.decoder))
    for m in (te, unet, vae):
        m.eval()
    dec = {i.name: i for i in onnx.load(f"{model}/vae_decoder/model.onnx").graph.initializer}
    shift = torch.from_numpy(numpy_helper.to_array(dec["shift"]).copy()).flatten()
    with open(f"{model}/vae_decoder/config.json") as f:
        scale = json.load(f)["scaling_factor"]
    return dict(vocab=vocab, merges=merges, vae=vae, te=te, unet=unet, shift=shift, scale=scale)


def pattern(shape, k):
    n = math.prod(shape)
    return torch.sin(torch.arange(n, dtype=torch.float64) * k).float().reshape(shape)


@torch.no_grad()
def check(m, model=MODEL):
    with open(f"{model}/reference_outputs.json") as f:
        ref = json.load(f)
    got = {
        "unet": m["unet"](pattern([2, 4, 8, 8], 0.1), torch.tensor([500.0, 500.0]), pattern([2, 77, 128], 0.03)),
        "vae_encoder": m["vae"].encoder(pattern([1, 3, 64, 64], 0.01))
        - torch.cat([m["shift"], torch.zeros(4)])[None, :, None, None],
        "vae_decoder": m["vae"].decoder(pattern([1, 4, 8, 8], 0.05) + m["shift"][None, :, None, None]),
        "text_encoder": m["te"](torch.tensor(ref["text_encoder"]["input_ids"]))[0],
    }
    key = {"unet": "out_sample", "vae_encoder": "latent_parameters", "vae_decoder": "sample",
           "text_encoder": "last_hidden_state"}
    for graph, t in got.items():
        want = ref[graph][key[graph]]
        first = t.flatten()[:8].double().tolist()
        err = max(abs(a - b) for a, b in zip(first, want["first"]))
        mean_abs = t.abs().double().mean().item()
        ok = err < 1e-4 and abs(mean_abs - want["mean_abs"]) < 1e-4 * max(1.0, want["mean_abs"])
        print(f"{graph:13s} first-8 max |diff| {err:.2e}, mean |x| {mean_abs:.6f} (recorded {want['mean_abs']:.6f})"
              f" {'ok' if ok else 'DIFFERS'}")
        if not ok:
            raise SystemExit(f"{graph}: the rebuilt module does not reproduce the recorded outputs")


if __name__ == "__main__":
    check(load(sys.argv[1] if len(sys.argv) > 1 else MODEL))
