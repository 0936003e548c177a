#!/usr/bin/env python3
"""Whole-image parity goldens: the PyTorch sampler (sampling.generate) on the demo model, for the Java services to
reproduce within 2/255 per pixel (orchestrator ParityTest): text-to-image, image-to-image from a drawn scene at
two strengths, and inpainting part of that scene.

    /usr/bin/python3 tools/demo-model/parity_goldens.py [--work tools/demo-model/work] [--out DIR]

The modules come from the training checkpoints when --work holds them (build.py), else from the committed ONNX
graphs (from_onnx.py; the same weights: it reproduces the text-to-image goldens made from the checkpoints bit for
bit). Writes <scheduler>-<seed>.png, img2img-init.png, img2img-<scheduler>-<strength>-<seed>.png and parity.json
into orchestrator-embedded/src/test/resources/parity/ by default.
"""
import argparse
import json
import os

import numpy as np
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
# inpainting (4-channel UNet): the same scene, a white square over the circle repainted; strengths 1 and 0.75
INPAINT_PROMPT, INPAINT_SEEDS, INPAINT_STEPS, INPAINT_STRENGTHS = ("a large yellow circle on a red background",
                                                                   [41, 42], 20, [1.0, 0.75])


def inpaint_mask():
    m = np.zeros((64, 64, 3), np.uint8)
    m[12:52, 12:52] = 255
    return m


def save(out, images, names):
    for img, name in zip(images, names):
        Image.fromarray(img).save(f"{out}/{name}")
    return names


def from_image(m, out, kind, prompt, seeds, steps, strengths, init, mask=None):
    """Image-to-image (or, with a mask, inpainting) cases: each scheduler at each strength."""
    cases = []
    for scheduler in I2I_SCHEDULERS:
        for strength in strengths:
            imgs = sampling.generate(m, [prompt] * len(seeds), seeds, steps=steps, guidance=GUIDANCE,
                                     negative=NEGATIVE, scheduler=scheduler, init_image=init, strength=strength,
                                     mask_image=mask)
            files = save(out, imgs, [f"{kind}-{scheduler}-{strength}-{seed}.png" for seed in seeds])
            cases.append({"scheduler": scheduler, "steps": steps, "strength": strength, "seeds": seeds,
                          "files": files})
    return cases


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
    i2i = from_image(m, args.out, "img2img", I2I_PROMPT, I2I_SEEDS, I2I_STEPS, I2I_STRENGTHS, init)
    mask = inpaint_mask()
    Image.fromarray(mask).save(f"{args.out}/inpaint-mask.png")
    inpaint = from_image(m, args.out, "inpaint", INPAINT_PROMPT, INPAINT_SEEDS, INPAINT_STEPS, INPAINT_STRENGTHS,
                         init, mask)
    with open(f"{args.out}/parity.json", "w") as f:
        json.dump({"about": "PyTorch sampler outputs (tools/demo-model/parity_goldens.py); torch " + torch.__version__,
                   "prompt": PROMPT, "negative_prompt": NEGATIVE, "guidance_scale": GUIDANCE, "cases": cases,
                   "img2img": {"init_image": "img2img-init.png", "prompt": I2I_PROMPT, "cases": i2i},
                   "inpaint": {"init_image": "img2img-init.png", "mask_image": "inpaint-mask.png",
                               "prompt": INPAINT_PROMPT, "cases": inpaint}}, f,
                  indent=1)
    print("wrote", args.out)


if __name__ == "__main__":
    main()
