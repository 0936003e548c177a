#!/usr/bin/env python3
"""Whole-image parity goldens: the PyTorch sampler (sampling.generate) on the demo model, for the Java services to
reproduce within 2/255 per pixel (orchestrator ParityTest): text-to-image, and image-to-image from a drawn scene
at two strengths.

    /usr/bin/python3 tools/demo-model/parity_goldens.py [--work tools/demo-model/work] [--out DIR]

The modules come from the training checkpoints when --work holds them (build.py), else from the committed ONNX
graphs (from_onnx.py; the same weights: it reproduces the text-to-image goldens made from the checkpoints bit for
bit). Writes <scheduler>-<seed>.png, img2img-init.png, img2img-<scheduler>-<strength>-<seed>.png and parity.json
into orchestrator-embedded/src/test/resources/parity/ by default.
"""
import argparse
import json
import os

import torch
from PIL import Image

import build
import from_onnx
import sampling
import scenes

CASES = [("ddim", 25), ("euler_a", 25), ("dpmpp_2m", 20)]
PROMPT, NEGATIVE, SEEDS, GUIDANCE = "a large yellow triangle on a purple background", "", [21, 22], 7.5
# image-to-image: recolour a drawn scene's circle (blue -> green), DDIM, Euler ancestral and DPM++ 2M at two
# strengths; seeds 31 and 32
INIT_SCENE = {"shape": "circle", "colour": "blue", "background": "red", "size": "large", "cx": 0.5, "cy": 0.5}
I2I_PROMPT, I2I_SEEDS, I2I_STEPS, I2I_STRENGTHS = "a large green circle on a red background", [31, 32], 20, [0.5, 0.8]
I2I_SCHEDULERS = ["ddim", "euler_a", "dpmpp_2m"]


def save(out, images, names):
    for img, name in zip(images, names):
        Image.fromarray(img).save(f"{out}/{name}")
    return names


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    root = os.path.dirname(os.path.dirname(here))
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", default=f"{here}/work")
    ap.add_argument("--out", default=f"{root}/orchestrator-embedded/src/test/resources/parity")
    args = ap.parse_args()
    torch.set_num_threads(1)
    m = build.load_trained(args.work) if os.path.exists(f"{args.work}/unet.pt") else from_onnx.load()
    os.makedirs(args.out, exist_ok=True)
    cases = []
    for scheduler, steps in CASES:
        imgs = sampling.generate(m, [PROMPT] * len(SEEDS), SEEDS, steps=steps, guidance=GUIDANCE, negative=NEGATIVE,
                                 scheduler=scheduler)
        files = save(args.out, imgs, [f"{scheduler}-{seed}.png" for seed in SEEDS])
        cases.append({"scheduler": scheduler, "steps": steps, "seeds": SEEDS, "files": files})
    init = scenes.render(INIT_SCENE, 64)
    Image.fromarray(init).save(f"{args.out}/img2img-init.png")
    i2i = []
    for scheduler in I2I_SCHEDULERS:
        for strength in I2I_STRENGTHS:
            imgs = sampling.generate(m, [I2I_PROMPT] * len(I2I_SEEDS), I2I_SEEDS, steps=I2I_STEPS,
                                     guidance=GUIDANCE, negative=NEGATIVE, scheduler=scheduler, init_image=init,
                                     strength=strength)
            files = save(args.out, imgs, [f"img2img-{scheduler}-{strength}-{seed}.png" for seed in I2I_SEEDS])
            i2i.append({"scheduler": scheduler, "steps": I2I_STEPS, "strength": strength, "seeds": I2I_SEEDS,
                        "files": files})
    with open(f"{args.out}/parity.json", "w") as f:
        json.dump({"about": "PyTorch sampler outputs (tools/demo-model/parity_goldens.py); torch " + torch.__version__,
                   "prompt": PROMPT, "negative_prompt": NEGATIVE, "guidance_scale": GUIDANCE, "cases": cases,
                   "img2img": {"init_image": "img2img-init.png", "prompt": I2I_PROMPT, "cases": i2i}}, f,
                  indent=1)
    print("wrote", args.out)


if __name__ == "__main__":
    main()
