#!/usr/bin/env python3
"""A torch replica of ancestral Euler on Karras sigmas ("Euler a Karras"): diffusers' EulerAncestralDiscreteScheduler
step on the sigma schedule EulerDiscreteScheduler builds with use_karras_sigmas (diffusers' ancestral scheduler has
no such option, so no diffusers test asserts a value for it). Our own transcription, in torch float32, on the
full-loop fixture of tests/schedulers/test_scheduler_euler_ancestral.py (1100 training steps, linear betas, linspace
spacing, 10 steps, noise from torch.manual_seed(0)).

    /usr/bin/python3 tools/goldens/euler_a_karras_replica.py     (Debian's torch 1.13)

DiffusersFullLoopTest asserts the printed figures.
"""
import numpy as np
import torch

from replica_common import fixture, karras, model, sigma_to_t


def schedule(steps=10, n=1100):
    ac = torch.cumprod(1.0 - torch.linspace(0.0001, 0.02, n, dtype=torch.float32), dim=0)
    timesteps = np.linspace(0, n - 1, steps, dtype=np.float32)[::-1].copy()
    sigmas = np.array(((1 - ac) / ac) ** 0.5)
    log_sigmas = np.log(sigmas)
    sigmas = np.interp(timesteps, np.arange(0, len(sigmas)), sigmas)
    sigmas = karras(float(sigmas[-1]), float(sigmas[0]), steps)
    timesteps = sigma_to_t(sigmas, log_sigmas).astype(np.float32)
    sigmas = torch.from_numpy(np.concatenate([sigmas, [0.0]]).astype(np.float32))
    return timesteps, sigmas


def run(prediction="epsilon"):
    timesteps, sigmas = schedule()
    g = torch.manual_seed(0)
    x = fixture() * sigmas.max()  # init_noise_sigma for linspace spacing
    for i, t in enumerate(timesteps):
        s = sigmas[i]
        x = x / ((s ** 2 + 1) ** 0.5)  # the test loop overwrites the sample with the scaled input
        out = model(x, torch.tensor(t))
        if prediction == "epsilon":
            x0 = x - s * out
        else:
            x0 = out * (-s / (s ** 2 + 1) ** 0.5) + (x / (s ** 2 + 1))
        s_from, s_to = sigmas[i], sigmas[i + 1]
        up = (s_to ** 2 * (s_from ** 2 - s_to ** 2) / s_from ** 2) ** 0.5
        down = (s_to ** 2 - up ** 2) ** 0.5
        derivative = (x - x0) / s
        x = x + derivative * (down - s)
        x = x + torch.randn(x.shape, generator=g, dtype=torch.float32) * up
    return x


for name, kw in [("Euler ancestral Karras", {}), ("Euler ancestral Karras v_prediction",
                                                  {"prediction": "v_prediction"})]:
    x = run(**kw)
    print(f"{name}: sum {torch.sum(torch.abs(x)).item():.4f} mean {torch.mean(torch.abs(x)).item():.6f}")
