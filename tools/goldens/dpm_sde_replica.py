#!/usr/bin/env python3
"""A torch replica of diffusers' DPMSolverMultistepScheduler with algorithm_type "sde-dpmsolver++" (DPM++ 2M SDE)
on the full-loop fixture of tests/schedulers/test_scheduler_dpm_multi.py, whose tests assert no full-loop value for
that algorithm. Our own transcription of set_timesteps, convert_model_output, dpm_solver_first_order_update and
multistep_dpm_solver_second_order_update (solver_type "midpoint"), in torch float32 as diffusers computes them;
the noise is randn_tensor(shape, generator) at every step from torch.manual_seed(0).

    /usr/bin/python3 tools/goldens/dpm_sde_replica.py     (Debian's torch 1.13; prints sum and mean per case)

DiffusersFullLoopTest asserts the printed figures.
"""
import numpy as np
import torch

from replica_common import fixture, karras, model, sigma_to_t


def timeline(steps, use_karras):
    betas = torch.linspace(0.0001, 0.02, 1000, dtype=torch.float32)
    ac = torch.cumprod(1.0 - betas, dim=0)
    timesteps = np.linspace(0, 999, steps + 1).round()[::-1][:-1].copy().astype(np.int64)
    sigmas = np.array(((1 - ac) / ac) ** 0.5)
    log_sigmas = np.log(sigmas)
    if use_karras:
        sig = karras(float(sigmas[0]), float(sigmas[-1]), steps)
        timesteps = sigma_to_t(sig, log_sigmas).round().astype(np.int64)
        sigmas = sig
    else:
        sigmas = np.interp(timesteps, np.arange(0, len(sigmas)), sigmas)
    sigma_last = ((1 - ac[0]) / ac[0]) ** 0.5  # final_sigmas_type "sigma_min"
    return timesteps, torch.from_numpy(np.concatenate([sigmas, [sigma_last]]).astype(np.float32))


def alpha_sigma(sigma):
    alpha = 1 / ((sigma ** 2 + 1) ** 0.5)
    return alpha, sigma * alpha


def run(steps=10, use_karras=False, prediction="epsilon"):
    timesteps, sigmas = timeline(steps, use_karras)
    g = torch.manual_seed(0)
    x = fixture()
    outputs = [None, None]
    lower = 0
    for i, t in enumerate(timesteps):
        alpha_s, sigma_s = alpha_sigma(sigmas[i])
        out = model(x, t)
        x0 = (x - sigma_s * out) / alpha_s if prediction == "epsilon" else alpha_s * x - sigma_s * out
        outputs = [outputs[1], x0]
        noise = torch.randn(x.shape, generator=g, dtype=torch.float32)
        alpha_t, sigma_t = alpha_sigma(sigmas[i + 1])
        lam_t = torch.log(alpha_t) - torch.log(sigma_t)
        lam_s = torch.log(alpha_s) - torch.log(sigma_s)
        h = lam_t - lam_s
        first = lower < 1  # lower_order_final False; final sigma sigma_min
        if first:
            x = ((sigma_t / sigma_s * torch.exp(-h)) * x + (alpha_t * (1 - torch.exp(-2.0 * h))) * x0
                 + sigma_t * torch.sqrt(1.0 - torch.exp(-2 * h)) * noise)
        else:
            alpha_s1, sigma_s1 = alpha_sigma(sigmas[i - 1])
            lam_s1 = torch.log(alpha_s1) - torch.log(sigma_s1)
            h0 = lam_s - lam_s1
            r0 = h0 / h
            d0, d1 = outputs[1], (1.0 / r0) * (outputs[1] - outputs[0])
            x = ((sigma_t / sigma_s * torch.exp(-h)) * x + (alpha_t * (1 - torch.exp(-2.0 * h))) * d0
                 + 0.5 * (alpha_t * (1 - torch.exp(-2.0 * h))) * d1 + sigma_t * torch.sqrt(1.0 - torch.exp(-2 * h))
                 * noise)
        lower = min(lower + 1, 2)
    return x


for name, kw in [("DPM++ 2M SDE", {}), ("DPM++ 2M SDE v_prediction", {"prediction": "v_prediction"}),
                 ("DPM++ 2M SDE Karras", {"use_karras": True})]:
    x = run(**kw)
    print(f"{name}: sum {torch.sum(torch.abs(x)).item():.4f} mean {torch.mean(torch.abs(x)).item():.6f}")
