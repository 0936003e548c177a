#!/usr/bin/env python3
"""Generate data, train, export and check the project's demo model: one command, fixed seeds, resumable.

    /usr/bin/python3 tools/demo-model/build.py                 # full run (about 70 min on 2 CPU cores)
    /usr/bin/python3 tools/demo-model/build.py --smoke         # < 2 min: tiny run, same code path

Stages (each skipped when its output exists in the work directory; training stages checkpoint every few
hundred steps and resume): 1 autoencoder, 2 latents of the training set, 3 text encoder + UNet jointly,
4 ONNX export in the Stable Diffusion / optimum layout, 5 prompt-adherence judge, sample grid, model card.
Needs Debian's python3-torch (1.13) and python3-onnx: `apt-get install python3-torch python3-onnx
python3-numpy python3-pil`. Nothing at serving time uses Python.
"""
import argparse
import collections
import json
import math
import os
import shutil
import time

import numpy as np
import torch
import torch.nn.functional as F

import clip_bpe
import export
import nets
import sampling
import scenes

SEED = 1234
IMAGE = 64


def log(*a):
    print(time.strftime("%H:%M:%S"), *a, flush=True)


def cfg(smoke):
    if smoke:
        return dict(vae_steps=30, vae_batch=16, dataset=512, unet_steps=30, batch=16, judge_prompts=8,
                    judge_seeds=(0,), ckpt_every=10)
    return dict(vae_steps=1200, vae_batch=32, dataset=16384, unet_steps=2900, batch=64, judge_prompts=64,
                judge_seeds=(0, 1), ckpt_every=200)


def to_tensor(images):
    """uint8 [N,H,W,3] -> float32 [N,3,H,W] in [-1,1]."""
    return torch.from_numpy(images).permute(0, 3, 1, 2).float() / 127.5 - 1.0


def lr_at(step, total, peak, warmup=100):
    if step < warmup:
        return peak * (step + 1) / warmup
    p = (step - warmup) / max(1, total - warmup)
    return peak * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * p)))


def save_ckpt(path, **state):
    tmp = path + ".tmp"
    torch.save(state, tmp)
    os.replace(tmp, path)  # atomic: an interrupted save never leaves a broken checkpoint


def train_vae(work, c):
    final = f"{work}/vae.pt"
    if os.path.exists(final):
        return
    vae = nets.AutoencoderKL()
    opt = torch.optim.Adam(vae.parameters(), lr=1e-3)
    step, ckpt, before = 0, f"{work}/vae.ckpt", 0.0
    if os.path.exists(ckpt):
        s = torch.load(ckpt)
        vae.load_state_dict(s["model"]), opt.load_state_dict(s["opt"])
        step, before = s["step"], s.get("minutes", 0.0)
        log(f"vae: resuming at step {step}")
    t0 = time.time()
    while step < c["vae_steps"]:
        rng = np.random.default_rng([SEED, 1, step])
        x = to_tensor(np.stack([scenes.render(scenes.random_scene(rng), IMAGE) for _ in range(c["vae_batch"])]))
        gen = torch.Generator().manual_seed(SEED * 7919 + step)
        for g in opt.param_groups:
            g["lr"] = lr_at(step, c["vae_steps"], 1e-3)
        params = vae.encoder(x)
        mean, logvar = params[:, :4], params[:, 4:].clamp(-30, 20)
        z = mean + torch.exp(0.5 * logvar) * torch.randn(mean.shape, generator=gen)
        rec = vae.decoder(z)
        kl = 0.5 * (mean.pow(2) + logvar.exp() - 1 - logvar).sum(dim=(1, 2, 3)).mean()
        loss = F.mse_loss(rec, x) + 0.5 * F.l1_loss(rec, x) + 1e-5 * kl
        opt.zero_grad()
        loss.backward()
        opt.step()
        step += 1
        if step % 50 == 0 or step == c["vae_steps"]:
            log(f"vae step {step}/{c['vae_steps']} loss {loss.item():.5f} kl {kl.item():.1f} "
                f"({(time.time() - t0) / 60:.1f} min this run)")
        if step % c["ckpt_every"] == 0:
            save_ckpt(ckpt, model=vae.state_dict(), opt=opt.state_dict(), step=step,
                      minutes=before + (time.time() - t0) / 60)
    torch.save({"model": vae.state_dict(), "minutes": before + (time.time() - t0) / 60}, final)


def encode_dataset(work, c):
    """Encodes a fixed training set once: captions, posterior mean/logvar, the latent shift and scale."""
    final = f"{work}/latents.pt"
    if os.path.exists(final):
        return
    vae = nets.AutoencoderKL()
    vae.load_state_dict(torch.load(f"{work}/vae.pt")["model"])
    vae.eval()
    rng = np.random.default_rng([SEED, 2])
    items = [scenes.random_scene(rng) for _ in range(c["dataset"])]
    params = []
    with torch.no_grad():
        for i in range(0, len(items), 256):
            x = to_tensor(np.stack([scenes.render(s, IMAGE) for s in items[i:i + 256]]))
            params.append(vae.encoder(x))
    params = torch.cat(params)
    mean = params[:, :4]
    shift = mean.mean(dim=(0, 2, 3))  # per-channel centre, folded into the exported VAE graphs
    scale = 1.0 / (mean - shift[None, :, None, None]).std().item()  # SD's recipe: 1 / std of the latents
    log(f"latents: per-channel mean {shift.tolist()}, per-channel std "
        f"{mean.std(dim=(0, 2, 3)).tolist()}, scaling_factor {scale:.5f}")
    torch.save({"scenes": items, "params": params, "shift": shift, "scale": scale}, final)


def caption_for(scene, rng):
    if rng.random() < 0.1:  # ~10% unconditional, for classifier-free guidance
        return ""
    return scenes.caption(scene, with_size=rng.random() < 0.6)


def build_tokenizer():
    words = collections.Counter(["a", "on", "background"] + scenes.COLOURS + scenes.SHAPES + list(scenes.SIZES))
    return clip_bpe.learn(words)


def train_unet(work, c):
    final = f"{work}/unet.pt"
    if os.path.exists(final):
        return
    data = torch.load(f"{work}/latents.pt")
    vocab, merges = build_tokenizer()
    tok = clip_bpe.Tokenizer(vocab, merges)
    torch.manual_seed(SEED)
    te, unet = nets.TextEncoder(len(vocab)), nets.UNet()
    params = list(te.parameters()) + list(unet.parameters())
    ema = [p.detach().clone() for p in params]
    opt = torch.optim.AdamW(params, lr=5e-4, weight_decay=0.01)
    sched = sampling.Schedule()
    step, ckpt, before = 0, f"{work}/unet.ckpt", 0.0
    if os.path.exists(ckpt):
        s = torch.load(ckpt)
        te.load_state_dict(s["te"]), unet.load_state_dict(s["unet"]), opt.load_state_dict(s["opt"])
        ema, step, before = s["ema"], s["step"], s.get("minutes", 0.0)
        log(f"unet: resuming at step {step}")
    shift, scale, n = data["shift"][None, :, None, None], data["scale"], len(data["scenes"])
    alphas = sched.alphas_cumprod
    t0 = time.time()
    while step < c["unet_steps"]:
        rng = np.random.default_rng([SEED, 3, step])
        gen = torch.Generator().manual_seed(SEED * 104729 + step)
        idx = torch.from_numpy(rng.integers(0, n, c["batch"]))
        p = data["params"][idx]
        mean, logvar = p[:, :4], p[:, 4:].clamp(-30, 20)
        z0 = (mean + torch.exp(0.5 * logvar) * torch.randn(mean.shape, generator=gen) - shift) * scale
        ids = torch.tensor([tok.encode(caption_for(data["scenes"][i], rng)) for i in idx.tolist()])
        t = torch.randint(0, 1000, (c["batch"],), generator=gen)
        noise = torch.randn(z0.shape, generator=gen)
        a = alphas[t][:, None, None, None]
        zt = a.sqrt() * z0 + (1 - a).sqrt() * noise
        for g in opt.param_groups:
            g["lr"] = lr_at(step, c["unet_steps"], 5e-4)
        eps = unet(zt, t.float(), te(ids)[0])
        # Min-SNR-5 weighting for epsilon prediction (Hang et al., 2023): min(SNR, 5) / SNR.
        snr = alphas[t] / (1 - alphas[t])
        w = torch.clamp(snr, max=5.0) / snr
        loss = (w * (eps - noise).pow(2).mean(dim=(1, 2, 3))).mean()
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        decay = min(0.999, (1 + step) / (10 + step))
        with torch.no_grad():
            for e, q in zip(ema, params):
                e.mul_(decay).add_(q.detach(), alpha=1 - decay)
        step += 1
        if step % 25 == 0 or step == c["unet_steps"]:
            log(f"unet step {step}/{c['unet_steps']} loss {loss.item():.4f} "
                f"({(time.time() - t0) / 60:.1f} min this run)")
        if step % c["ckpt_every"] == 0:
            save_ckpt(ckpt, te=te.state_dict(), unet=unet.state_dict(), opt=opt.state_dict(), ema=ema, step=step,
                      minutes=before + (time.time() - t0) / 60)
    with torch.no_grad():
        for e, q in zip(ema, params):
            q.copy_(e)
    torch.save({"te": te.state_dict(), "unet": unet.state_dict(), "minutes": before + (time.time() - t0) / 60},
               final)


def load_trained(work):
    vocab, merges = build_tokenizer()
    data = torch.load(f"{work}/latents.pt")
    vae = nets.AutoencoderKL()
    v = torch.load(f"{work}/vae.pt")
    vae.load_state_dict(v["model"])
    u = torch.load(f"{work}/unet.pt")
    te, unet = nets.TextEncoder(len(vocab)), nets.UNet()
    te.load_state_dict(u["te"]), unet.load_state_dict(u["unet"])
    for m in (vae, te, unet):
        m.eval()
    return dict(vocab=vocab, merges=merges, vae=vae, te=te, unet=unet, shift=data["shift"], scale=data["scale"],
                vae_minutes=v["minutes"], unet_minutes=u["minutes"])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    here = os.path.dirname(os.path.abspath(__file__))
    root = os.path.dirname(os.path.dirname(here))
    ap.add_argument("--smoke", action="store_true", help="tiny run (< 2 min) through every stage")
    ap.add_argument("--out", default=None, help="model directory (default models/sd-shapes-64, or "
                                               "target/demo-model-smoke with --smoke)")
    ap.add_argument("--work", default=None, help="checkpoints and caches (default tools/demo-model/work[-smoke])")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest on 2 shared cores)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    c = cfg(args.smoke)
    out = args.out or (f"{root}/target/demo-model-smoke" if args.smoke else f"{root}/models/sd-shapes-64")
    work = args.work or f"{here}/work{'-smoke' if args.smoke else ''}"
    os.makedirs(work, exist_ok=True)
    t0 = time.time()
    log("1/5 autoencoder"); train_vae(work, c)
    log("2/5 latents"); encode_dataset(work, c)
    log("3/5 text encoder + unet"); train_unet(work, c)
    m = load_trained(work)
    t_eval = time.time()
    log("4/5 export"); export.export_all(m, out)
    log("5/5 judge, grid, card")
    report = sampling.evaluate(m, c, out, docs=None if args.smoke else f"{root}/docs")
    report["vae_minutes"], report["unet_minutes"] = m["vae_minutes"], m["unet_minutes"]
    report["evaluation_minutes"] = (time.time() - t_eval) / 60
    report["wall_minutes_this_run"] = (time.time() - t0) / 60
    with open(f"{out}/training_report.json", "w") as f:
        json.dump(report, f, indent=1)
    export.write_card(m, c, report, out)
    log(f"done: {out}  adherence {report['adherence']}")


if __name__ == "__main__":
    main()
