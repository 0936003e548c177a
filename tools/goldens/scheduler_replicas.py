#!/usr/bin/env python3
"""Torch replicas of three of diffusers' scheduler full-loop tests, to locate where our values differ from theirs.

    /usr/bin/python3 tools/goldens/scheduler_replicas.py      (Debian's torch 1.13; no diffusers needed)

Each loop is diffusers' step written out in torch float32 (our own transcription of DDPMScheduler,
EulerDiscreteScheduler and PNDMScheduler on the tests' fixtures), printed as torch.sum and as a float64 sum
of the same values. Findings (see DiffusersFullLoopTest):
  - DDPM: the replica gives diffusers' 258.9606 / 387.9466 with float32 scalars; float64 scalars give what
    our scheduler gave before it switched to float32 (258.9593).
  - Euler with noise: torch.sum 57062.9297 (diffusers' value); the float64 sum of the same values is 57062.9261,
    which is ours: the rest is torch.sum's float32 rounding.
  - PNDM: the replica gives our 230.0373 and 186.9452 for the beta_start 0.01 variants, not diffusers' asserted
    230.0399 and 186.9482 (within its 1e-2; not explained).
  - DPM++ 2M Karras v_prediction: the replica's mean is ours, 0.209198, against diffusers' 0.2096 (within its 1e-3;
    not explained; diffusers' Karras and final-sigma handling has changed across versions).
"""
import numpy as np
import torch


def fixture(flip=False):
    s = torch.arange(768)
    if flip:
        s = s.flip(-1)
    return (s.reshape(3, 8, 8, 4) / 768).permute(3, 0, 1, 2)


def model(x, t):
    t = torch.as_tensor(t, dtype=x.dtype).reshape(-1, 1, 1, 1)
    return x * t / (t + 1)


def sums(x):
    return f"torch.sum {torch.sum(torch.abs(x)).item():.4f}, float64 sum {x.abs().double().sum().item():.4f}"


def ddpm(with_noise):
    ac = torch.cumprod(1.0 - torch.linspace(0.0001, 0.02, 1000, dtype=torch.float32), dim=0)
    one = torch.tensor(1.0)

    def step(eps, t, x, g):
        a, ap = ac[t], (ac[t - 1] if t >= 1 else one)
        b, bp = 1 - a, 1 - ap
        ca = a / ap
        cb = 1 - ca
        x0 = ((x - b ** 0.5 * eps) / a ** 0.5).clamp(-1, 1)
        out = (ap ** 0.5 * cb) / b * x0 + ca ** 0.5 * bp / b * x
        if t > 0:
            var = torch.clamp((1 - ap) / (1 - a) * cb, min=1e-20)
            out = out + var ** 0.5 * torch.randn(eps.shape, generator=g, dtype=eps.dtype)
        return out

    g = torch.manual_seed(0)
    x = fixture()
    ts = list(range(999, -1, -1))
    if with_noise:
        ts = ts[998:]
        x = ac[ts[0]] ** 0.5 * x + (1 - ac[ts[0]]) ** 0.5 * fixture(True)
    for t in ts:
        x = step(model(x, t), t, x, g)
    return x


def euler_with_noise():
    ac = torch.cumprod(1.0 - torch.linspace(0.0001, 0.02, 1100, dtype=torch.float32), dim=0)
    ts = np.linspace(0, 1099, 10, dtype=float)[::-1].copy()
    sig = np.interp(ts, np.arange(1100), np.array(((1 - ac) / ac) ** 0.5))
    sig = torch.from_numpy(np.concatenate([sig, [0.0]]).astype(np.float32))
    timesteps = torch.from_numpy(ts.astype(np.float32))
    x = fixture() * sig.max() + fixture(True) * sig[8]
    for i in (8, 9):
        x = x / ((sig[i] ** 2 + 1) ** 0.5)
        x0 = x - sig[i] * model(x, timesteps[i])
        x = x + (x - x0) / sig[i] * (sig[i + 1] - sig[i])
    return x


def pndm(beta_start, alpha_to_one):
    ac = torch.cumprod(1.0 - torch.linspace(beta_start, 0.02, 1000, dtype=torch.float32), dim=0)
    final = torch.tensor(1.0) if alpha_to_one else ac[0]
    base = (np.arange(0, 10) * 100).round()
    prk = np.array(base[-4:]).repeat(2) + np.tile(np.array([0, 50]), 4)
    prk = (prk[:-1].repeat(2)[1:-1])[::-1].copy()
    plms = base[:-3][::-1].copy()

    def prev(x, t, pt, e):
        a, ap = ac[int(t)], (ac[int(pt)] if pt >= 0 else final)
        b, bp = 1 - a, 1 - ap
        return (ap / a) ** 0.5 * x - (ap - a) * e / (a * bp ** 0.5 + (a * b * ap) ** 0.5)

    x, ets, acc, start = fixture(), [], 0, None
    for c, t in enumerate(prk):  # Runge-Kutta warm-up: 4 sub-steps per interval
        e = model(x, t)
        pt = t - (0 if c % 2 else 50)
        if c % 4 == 0:
            acc, start = acc + 1 / 6 * e, x
            ets.append(e)
        elif c % 4 in (1, 2):
            acc = acc + 1 / 3 * e
        else:
            e, acc = acc + 1 / 6 * e, 0
        x = prev(start, prk[c // 4 * 4], pt, e)
    for t in plms:  # linear multistep, four outputs
        ets = ets[-3:] + [model(x, t)]
        e = (1 / 24) * (55 * ets[-1] - 59 * ets[-2] + 37 * ets[-3] - 9 * ets[-4])
        x = prev(x, t, t - 100, e)
    return x


def dpmpp_2m_karras_v():
    """DPM-Solver++ 2M, v_prediction, Karras sigmas, final sigma_min, no lower_order_final (test_scheduler_dpm_multi)."""
    ac = torch.cumprod(1.0 - torch.linspace(0.0001, 0.02, 1000, dtype=torch.float32), dim=0)
    train = np.array(((1 - ac) / ac) ** 0.5)
    log_train = np.log(train)
    lo, hi = train[0].item(), train[-1].item()
    ramp = np.linspace(0, 1, 10)
    sig = (hi ** (1 / 7) + ramp * (lo ** (1 / 7) - hi ** (1 / 7))) ** 7

    def sigma_to_t(sigma):
        d = np.log(sigma) - log_train[:, None]
        low = np.cumsum(d >= 0, axis=0).argmax(axis=0).clip(max=len(log_train) - 2)
        w = np.clip((log_train[low] - np.log(sigma)) / (log_train[low] - log_train[low + 1]), 0, 1)
        return ((1 - w) * low + w * (low + 1)).reshape(np.shape(sigma))

    ts = torch.from_numpy(np.array([sigma_to_t(s_) for s_ in sig]).round())
    sig = torch.from_numpy(np.concatenate([sig, [((1 - ac[0]) / ac[0]) ** 0.5]]).astype(np.float32))

    def alpha_sigma(s_):
        a = 1 / ((s_ ** 2 + 1) ** 0.5)
        return a, s_ * a

    def lam(s_):
        a, sg = alpha_sigma(s_)
        return torch.log(a) - torch.log(sg)

    x, prev_x0 = fixture(), None
    for i in range(10):
        a_s, s_s = alpha_sigma(sig[i])
        a_t, s_t = alpha_sigma(sig[i + 1])
        x0 = a_s * x - s_s * model(x, ts[i])
        h = lam(sig[i + 1]) - lam(sig[i])
        x_next = (s_t / s_s) * x - (a_t * (torch.exp(-h) - 1.0)) * x0
        if prev_x0 is not None:
            r0 = (lam(sig[i]) - lam(sig[i - 1])) / h
            x_next = x_next - 0.5 * (a_t * (torch.exp(-h) - 1.0)) * ((1.0 / r0) * (x0 - prev_x0))
        x, prev_x0 = x_next, x0
    return x


if __name__ == "__main__":
    print("DDPM no noise (diffusers 258.9606):", sums(ddpm(False)))
    print("DDPM with noise (diffusers 387.9466):", sums(ddpm(True)))
    print("Euler with noise (diffusers 57062.9297):", sums(euler_with_noise()))
    print("PNDM (diffusers 198.1318):", sums(pndm(0.0001, False)))
    print("PNDM set_alpha_to_one, beta_start 0.01 (diffusers 230.0399):", sums(pndm(0.01, True)))
    print("PNDM no set_alpha_to_one, beta_start 0.01 (diffusers 186.9482):", sums(pndm(0.01, False)))
    x = dpmpp_2m_karras_v()
    print(f"DPM++ 2M Karras v_prediction (diffusers mean 0.2096): mean {torch.mean(torch.abs(x)).item():.6f}")
