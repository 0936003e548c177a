#!/usr/bin/env python3
"""Whole-image parity goldens: the PyTorch sampler (sampling.generate) on the trained demo model, for the Java
services to reproduce within 2/255 per pixel (orchestrator ParityTest).

    /usr/bin/python3 tools/demo-model/parity_goldens.py [--work tools/demo-model/work] [--out DIR]

Needs the training checkpoints (run build.py first). Writes <scheduler>.png and parity.json into
orchestrator-embedded/src/test/resources/parity/ by default.
"""
import argparse
import json
import os

import torch
from PIL import Image

import build
import sampling

CASES = [("ddim", 25), ("euler_a", 25), ("dpmpp_2m", 20)]
PROMPT, NEGATIVE, SEEDS, GUIDANCE = "a large yellow triangle on a purple background", "", [21, 22], 7.5


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    root = os.path.dirname(os.path.dirname(here))
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", default=f"{here}/work")
    ap.add_argument("--out", default=f"{root}/orchestrator-embedded/src/test/resources/parity")
    args = ap.parse_args()
    torch.set_num_threads(1)
    m = build.load_trained(args.work)
    os.makedirs(args.out, exist_ok=True)
    cases = []
    for scheduler, steps in CASES:
        imgs = sampling.generate(m, [PROMPT] * len(SEEDS), SEEDS, steps=steps, guidance=GUIDANCE, negative=NEGATIVE,
                                 scheduler=scheduler)
        files = []
        for seed, img in zip(SEEDS, imgs):
            name = f"{scheduler}-{seed}.png"
            Image.fromarray(img).save(f"{args.out}/{name}")
            files.append(name)
        cases.append({"scheduler": scheduler, "steps": steps, "seeds": SEEDS, "files": files})
    with open(f"{args.out}/parity.json", "w") as f:
        json.dump({"about": "PyTorch sampler outputs (tools/demo-model/parity_goldens.py); torch " + torch.__version__,
                   "prompt": PROMPT, "negative_prompt": NEGATIVE, "guidance_scale": GUIDANCE, "cases": cases}, f,
                  indent=1)
    print("wrote", args.out)


if __name__ == "__main__":
    main()
