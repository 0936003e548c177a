#!/usr/bin/env python3
"""Golden values of diffusers' training noise schedules as torch computes them, for NoiseScheduleTest.

    /usr/bin/python3 tools/goldens/noise_schedules.py   # writes denoiser-svc/src/test/resources/goldens/noise-schedules.json

Debian's torch 1.13; no diffusers needed: the three beta schedules are written out as diffusers' DDPMScheduler
(and every other scheduler) builds them in __init__ (our own transcription):
  linear             betas = torch.linspace(beta_start, beta_end, n, dtype=torch.float32)
  scaled_linear      betas = torch.linspace(beta_start ** 0.5, beta_end ** 0.5, n, dtype=torch.float32) ** 2
  squaredcos_cap_v2  betas = betas_for_alpha_bar(n): min(1 - alpha_bar(t2) / alpha_bar(t1), 0.999) in Python
                     floats, alpha_bar(t) = cos((t + 0.008) / 1.008 * pi / 2) ** 2, then torch.tensor(float32)
  alphas_cumprod = torch.cumprod(1.0 - betas, dim=0)
and the k-diffusion sigmas ((1 - alphas_cumprod) / alphas_cumprod) ** 0.5.

torch.linspace's CPU kernel depends on the CPU capability (vector width, fused multiply-add): the schedules are
written for the AVX2 kernel (torch's default on x86-64 machines with AVX2), and torch.linspace alone for the
default (no AVX) and AVX512 kernels too, each in a child process with ATEN_CPU_CAPABILITY set. Values are the
float32 bit patterns, as 8 hex digits each, space-separated.
"""
import json
import math
import os
import struct
import subprocess
import sys

SCHEDULES = [  # (name, beta_schedule, beta_start, beta_end, n)
    ("sd", "scaled_linear", 0.00085, 0.012, 1000),   # Stable Diffusion 1.x/2.x
    ("ddpm", "linear", 0.0001, 0.02, 1000),           # DDPM's, diffusers' test default
    ("cosine", "squaredcos_cap_v2", 0.0001, 0.02, 1000),
    ("short", "linear", 0.0001, 0.02, 999),           # odd length: the halves and the scalar tail move
]
LINSPACES = [(0.0001, 0.02, 1000), (0.0001, 0.02, 999), (0.001, 0.5, 50), (0.001, 0.5, 17), (-1.0, 3.0, 7)]


def hexes(t):
    return " ".join(format(struct.unpack("<I", struct.pack("<f", v))[0], "08x") for v in t.tolist())


def alpha_bar(t):
    return math.cos((t + 0.008) / 1.008 * math.pi / 2) ** 2


def child():
    import torch
    out = {"capability": [l.strip() for l in torch.__config__.show().split("\n") if "capability" in l][0],
           "linspace": [{"start": a, "end": b, "steps": n, "float32": hexes(torch.linspace(a, b, n,
                                                                                           dtype=torch.float32))}
                        for a, b, n in LINSPACES]}
    schedules = []
    for name, kind, start, end, n in SCHEDULES:
        if kind == "linear":
            betas = torch.linspace(start, end, n, dtype=torch.float32)
        elif kind == "scaled_linear":
            betas = torch.linspace(start ** 0.5, end ** 0.5, n, dtype=torch.float32) ** 2
        else:
            betas = torch.tensor([min(1 - alpha_bar((i + 1) / n) / alpha_bar(i / n), 0.999) for i in range(n)],
                                 dtype=torch.float32)
        ac = torch.cumprod(1.0 - betas, dim=0)
        schedules.append({"name": name, "beta_schedule": kind, "beta_start": start, "beta_end": end,
                          "num_train_timesteps": n, "betas": hexes(betas), "alphas_cumprod": hexes(ac),
                          "sigmas": hexes(((1 - ac) / ac) ** 0.5)})  # (k-diffusion schedulers)
    out["schedules"] = schedules
    json.dump(out, sys.stdout)


def main():
    import torch
    result = {"torch": torch.__version__, "kernels": {}}
    for capability in ("default", "avx2", "avx512"):
        run = subprocess.run([sys.executable, __file__, "--child"], check=True, capture_output=True, text=True,
                             env={**os.environ, "ATEN_CPU_CAPABILITY": capability})
        got = json.loads(run.stdout)
        if capability != "avx2":
            del got["schedules"]
        result["kernels"][capability] = got
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    path = os.path.join(root, "denoiser-svc/src/test/resources/goldens/noise-schedules.json")
    with open(path, "w") as f:
        json.dump(result, f, indent=1)
        f.write("\n")
    print("wrote", path)


if __name__ == "__main__":
    child() if "--child" in sys.argv else main()
