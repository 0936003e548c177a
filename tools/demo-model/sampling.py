"""PyTorch reference sampler (DDIM with classifier-free guidance) and the prompt-adherence evaluation."""
import numpy as np
import torch
from PIL import Image, ImageDraw

import clip_bpe
import scenes


class Schedule:
    """SD's training schedule: 1000 steps, scaled_linear betas 0.00085..0.012 (diffusers' DDPMScheduler)."""

    def __init__(self, n=1000, beta_start=0.00085, beta_end=0.012):
        betas = torch.linspace(beta_start ** 0.5, beta_end ** 0.5, n, dtype=torch.float32) ** 2
        self.alphas_cumprod = torch.cumprod(1.0 - betas, dim=0)
        self.n = n


def ddim_timesteps(steps, n=1000, offset=1):
    """diffusers' DDIMScheduler.set_timesteps with timestep_spacing="leading", steps_offset=1 (SD 1.5)."""
    ratio = n // steps
    return (np.arange(0, steps) * ratio).round()[::-1].astype(np.int64) + offset


@torch.no_grad()
def generate(m, prompts, seeds, steps=25, guidance=7.5, negative=""):
    """Returns uint8 [N,H,W,3]. One seed per image: noise = torch.randn([1,4,8,8], Generator().manual_seed(seed))."""
    tok = clip_bpe.Tokenizer(m["vocab"], m["merges"])
    sched = Schedule()
    ac = sched.alphas_cumprod
    n = len(prompts)
    ids = torch.tensor([tok.encode(negative)] * n + [tok.encode(p) for p in prompts])
    ctx = m["te"](ids)[0]
    x = torch.cat([torch.randn([1, 4, 8, 8], generator=torch.Generator().manual_seed(s)) for s in seeds])
    ts = ddim_timesteps(steps)
    ratio = 1000 // steps
    for t in ts:
        eps_u, eps_c = m["unet"](torch.cat([x, x]), torch.tensor(float(t)), ctx).chunk(2)
        eps = eps_u + guidance * (eps_c - eps_u)
        a_t = ac[t]
        a_prev = ac[t - ratio] if t - ratio >= 0 else ac[0]  # set_alpha_to_one = False
        x0 = (x - (1 - a_t).sqrt() * eps) / a_t.sqrt()
        x = a_prev.sqrt() * x0 + (1 - a_prev).sqrt() * eps
    img = decode(m, x)
    return img


@torch.no_grad()
def decode(m, latents):
    """UNet-space latents -> uint8 images, as the VAE service does: decode(latents / scaling_factor)."""
    z = latents / m["scale"] + m["shift"][None, :, None, None]
    y = m["vae"].decoder(z)
    return ((y.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()


def fit_preview(m, count=2048):
    """Least-squares 4x3 matrix (plus bias) from UNet-space latents to RGB in [-1,1] at latent resolution."""
    rng = np.random.default_rng(99)
    imgs = np.stack([scenes.render(scenes.random_scene(rng), 64) for _ in range(count)])
    x = torch.from_numpy(imgs).permute(0, 3, 1, 2).float() / 127.5 - 1
    with torch.no_grad():
        z = (m["vae"].encoder(x)[:, :4] - m["shift"][None, :, None, None]) * m["scale"]
    rgb = torch.nn.functional.avg_pool2d(x, 8)
    a = torch.cat([z.permute(0, 2, 3, 1).reshape(-1, 4), torch.ones(z.numel() // 4, 1)], 1).double()
    b = rgb.permute(0, 2, 3, 1).reshape(-1, 3).double()
    w = torch.linalg.lstsq(a, b).solution
    err = (a @ w - b).abs().mean().item()
    return w[:4].float().tolist(), w[4].float().tolist(), err


def score(results):
    keys = ("colour", "background", "shape", "size")
    return {k: sum(r[k] == r["want_" + k] for r in results) / len(results) for k in keys}


def evaluate(m, c, out, docs):
    prompts = scenes.judge_prompts(c["judge_prompts"])
    rows = []
    for seed in c["judge_seeds"]:
        for i in range(0, len(prompts), 32):
            chunk = prompts[i:i + 32]
            imgs = generate(m, [scenes.caption(s) for s in chunk], [seed] * len(chunk))
            for s, img in zip(chunk, imgs):
                j = scenes.judge(img)
                rows.append({**j, **{"want_" + k: s[k] for k in ("colour", "background", "shape", "size")},
                             "seed": seed, "prompt": scenes.caption(s)})
    # The autoencoder alone: how often the judge reads a reconstruction right.
    rng = np.random.default_rng(7)
    truth = [scenes.random_scene(rng) for _ in range(256)]
    x = torch.from_numpy(np.stack([scenes.render(s, 64) for s in truth])).permute(0, 3, 1, 2).float() / 127.5 - 1
    with torch.no_grad():
        z = (m["vae"].encoder(x)[:, :4] - m["shift"][None, :, None, None]) * m["scale"]
    rec = [{**scenes.judge(img), **{"want_" + k: s[k] for k in ("colour", "background", "shape", "size")}}
           for s, img in zip(truth, decode(m, z))]
    w, b, err = fit_preview(m)
    report = {
        "judge": {"prompts": len(prompts), "seeds": list(c["judge_seeds"]), "scheduler": "ddim", "steps": 25,
                  "guidance_scale": 7.5},
        "adherence": score(rows),
        "autoencoder_reconstruction": score(rec),
        "preview": {"latent_rgb_factors": w, "latent_rgb_bias": b, "mean_abs_error": err},
        "failures": [r for r in rows if r["shape"] != r["want_shape"] or r["colour"] != r["want_colour"]][:20],
    }
    if docs:
        grid(m, f"{docs}/demo-model-samples.png")
    return report


def grid(m, path):
    """Eight prompts (rows) x four seeds (columns), 2x nearest upscaling, prompt written above each row."""
    prompts = ["a red circle on a blue background", "a large yellow square on a black background",
               "a small green triangle on a white background", "a purple cross on a green background",
               "a large blue triangle on a yellow background", "a small orange circle on a green background",
               "a white square on a purple background", "a black cross on a red background"]
    seeds = [0, 1, 2, 3]
    cell, label = 128, 14
    canvas = Image.new("RGB", (cell * len(seeds), (cell + label) * len(prompts)), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    for r, p in enumerate(prompts):
        imgs = generate(m, [p] * len(seeds), seeds)
        draw.text((2, r * (cell + label) + 1), p, fill=(0, 0, 0))
        for k, img in enumerate(imgs):
            canvas.paste(Image.fromarray(img).resize((cell, cell), Image.NEAREST), (k * cell, r * (cell + label) + label))
    canvas.save(path)
