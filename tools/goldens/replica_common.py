"""What the scheduler replicas share: diffusers' test fixture and dummy model, and its Karras and sigma-to-t maths
(our transcriptions of SchedulerCommonTest.dummy_sample_deter / dummy_model, _convert_to_karras, _sigma_to_t)."""
import numpy as np
import torch


def fixture():
    """dummy_sample_deter: (c*256 + h*32 + w*4 + b) / 768, shape (4, 3, 8, 8)."""
    s = torch.arange(768)
    return (s.reshape(3, 8, 8, 4) / 768).permute(3, 0, 1, 2)


def model(x, t):
    """dummy_model: sample * t / (t + 1)."""
    t = torch.as_tensor(t, dtype=x.dtype).reshape(-1, 1, 1, 1)
    return x * t / (t + 1)


def karras(sigma_min, sigma_max, steps, rho=7.0):
    ramp = np.linspace(0, 1, steps)
    return (sigma_max ** (1 / rho) + ramp * (sigma_min ** (1 / rho) - sigma_max ** (1 / rho))) ** rho


def sigma_to_t(sigmas, log_sigmas):
    """The fractional training timestep of each sigma, by log-sigma interpolation."""
    out = []
    for s in sigmas:
        ls = np.log(np.maximum(s, 1e-10))
        dists = ls - log_sigmas[:, np.newaxis]
        low = np.cumsum((dists >= 0), axis=0).argmax(axis=0).clip(max=log_sigmas.shape[0] - 2)
        w = np.clip((log_sigmas[low] - ls) / (log_sigmas[low] - log_sigmas[low + 1]), 0, 1)
        out.append(((1 - w) * low + w * (low + 1)).item())
    return np.array(out)
