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


def _sigmas(ac):
    return ((1 - ac) / ac) ** 0.5


def euler_schedule(steps, n=1000, offset=1):
    """diffusers' EulerDiscrete / EulerAncestral set_timesteps, "leading" spacing with steps_offset (SD 1.5)."""
    ratio = n // steps
    ts = (np.arange(0, steps) * ratio).round()[::-1].astype(np.float32) + offset
    train = _sigmas(Schedule().alphas_cumprod).numpy()
    sig = np.interp(ts, np.arange(0, n), train).astype(np.float32)
    return ts, np.concatenate([sig, [0.0]]).astype(np.float32)


def dpm_schedule(steps, n=1000, offset=1):
    """diffusers' DPMSolverMultistep set_timesteps, "leading" spacing, final_sigmas_type "zero"."""
    ratio = n // (steps + 1)
    ts = (np.arange(0, steps + 1) * ratio).round()[::-1][:-1].astype(np.int64) + offset
    train = _sigmas(Schedule().alphas_cumprod).numpy()
    sig = np.interp(ts, np.arange(0, n), train).astype(np.float32)
    return ts, np.concatenate([sig, [0.0]]).astype(np.float32)


@torch.no_grad()
def encode(m, image, gens):
    """Image-to-image's start, as diffusers' img2img prepare_latents: uint8 [H,W,3] -> UNet-space latents, one
    seeded posterior sample per generator (retrieve_latents(sample_mode="sample"): mean + std * randn, the
    generator's first draw), pixels 2 * (v / 255) - 1 as VaeImageProcessor, times scaling_factor."""
    x = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255.0
    x = 2.0 * x - 1.0
    params = m["vae"].encoder(x) - torch.cat([m["shift"], torch.zeros(4)])[None, :, None, None]
    mean, logvar = params.chunk(2, dim=1)
    std = torch.exp(0.5 * torch.clamp(logvar, -30.0, 20.0))
    return torch.cat([mean + std * torch.randn(mean.shape, generator=g) for g in gens]) * m["scale"]


def start_step(steps, strength):
    """diffusers' img2img get_timesteps: the first inference step that runs."""
    return max(steps - min(int(steps * strength), steps), 0)


def latent_mask(mask):
    """uint8 [H,W,3] mask image -> [1,1,H/8,W/8], 1 = repaint: diffusers' mask processor (PIL "L", / 255,
    binarized at 0.5), then torch.nn.functional.interpolate to the latent size (nearest)."""
    from PIL import Image
    luma = np.array(Image.fromarray(mask).convert("L")).astype(np.float32) / 255.0
    m = torch.from_numpy((luma >= 0.5).astype(np.float32))[None, None]
    return torch.nn.functional.interpolate(m, size=(m.shape[2] // 8, m.shape[3] // 8))


@torch.no_grad()
def generate(m, prompts, seeds, steps=25, guidance=7.5, negative="", scheduler="ddim", init_image=None,
             strength=0.8, mask_image=None):
    """Returns uint8 [N,H,W,3]. One generator per image, as the services: noise for image i comes from
    torch.Generator().manual_seed(seeds[i]) alone (initial noise [1,4,8,8], then ancestral noise per step).
    With init_image (uint8 [H,W,3]): image-to-image as diffusers' StableDiffusionImg2ImgPipeline: each generator
    draws the posterior sample, then the noise that add_noise mixes in at the start step; the last
    int(steps x strength) steps run. With mask_image too: inpainting as diffusers' StableDiffusionInpaintPipeline
    with a 4-channel UNet: at strength 1 the run starts from the noise alone; after each step the kept region
    (mask 0) is the image's latents noised to the next step with the same noise (clean after the last)."""
    tok = clip_bpe.Tokenizer(m["vocab"], m["merges"])
    ac = Schedule().alphas_cumprod
    n = len(prompts)
    ids = torch.tensor([tok.encode(negative)] * n + [tok.encode(p) for p in prompts])
    ctx = m["te"](ids)[0]
    gens = [torch.Generator().manual_seed(s) for s in seeds]
    randn = lambda: torch.cat([torch.randn([1, 4, 8, 8], generator=g) for g in gens])
    first = 0
    keep = None  # inpainting: step index -> the kept region's latents after that step
    if init_image is not None:
        image_latents = encode(m, init_image, gens)
        first = start_step(steps, strength)
        x = randn()  # add_noise's noise, each image's second draw
        noise = x.clone()
    else:
        x = randn()
    mask = latent_mask(mask_image) if mask_image is not None else None
    from_noise = mask is not None and strength == 1.0  # the inpaint pipeline's is_strength_max

    def blended(x, i, noised):
        """After step i: the kept region is image_latents noised to step i + 1 (clean after the last step)."""
        if mask is None:
            return x
        known = noised(i + 1) if i + 1 < steps else image_latents
        return (1 - mask) * known + mask * x

    def eps_at(x_in, t):
        eps_u, eps_c = m["unet"](torch.cat([x_in, x_in]), torch.tensor(float(t)), ctx).chunk(2)
        return eps_u + guidance * (eps_c - eps_u)

    if scheduler == "ddim":
        ratio = 1000 // steps
        tss = ddim_timesteps(steps)
        noised = lambda j: ac[tss[j]] ** 0.5 * image_latents + (1 - ac[tss[j]]) ** 0.5 * noise
        if init_image is not None and not from_noise:  # DDIMScheduler.add_noise at timesteps[first]
            x = noised(first)
        for i, t in list(enumerate(tss))[first:]:
            eps = eps_at(x, t)
            a_t = ac[t]
            a_prev = ac[t - ratio] if t - ratio >= 0 else ac[0]  # set_alpha_to_one = False
            x0 = (x - (1 - a_t).sqrt() * eps) / a_t.sqrt()
            x = blended(a_prev.sqrt() * x0 + (1 - a_prev).sqrt() * eps, i, noised)
    elif scheduler == "euler_a":
        ts, sig = euler_schedule(steps)
        noised = lambda j: image_latents + noise * float(sig[j])
        if init_image is not None and not from_noise:  # EulerAncestralDiscreteScheduler.add_noise at the begin index
            x = noised(first)
        else:
            x = x * float((sig.max() ** 2 + 1) ** 0.5)  # init_noise_sigma for "leading"
        for i, t in list(enumerate(ts))[first:]:
            s, s_next = float(sig[i]), float(sig[i + 1])
            eps = eps_at(x / (s ** 2 + 1) ** 0.5, t)
            x0 = x - s * eps
            up = (s_next ** 2 * (s ** 2 - s_next ** 2) / s ** 2) ** 0.5
            down = (s_next ** 2 - up ** 2) ** 0.5
            x = blended(x + (x - x0) / s * (down - s) + randn() * up, i, noised)
    elif scheduler == "dpmpp_2m":
        ts, sig = dpm_schedule(steps)
        alpha = lambda s: 1 / (s ** 2 + 1) ** 0.5
        lam = lambda s: np.log(alpha(s)) - np.log(s * alpha(s)) if s > 0 else np.inf
        prev_x0 = None
        noised = lambda j: alpha(float(sig[j])) * image_latents + float(sig[j]) * alpha(float(sig[j])) * noise
        if init_image is not None and not from_noise:  # DPMSolverMultistepScheduler.add_noise
            x = noised(first)
        for i, t in list(enumerate(ts))[first:]:
            s0, s1 = float(sig[i]), float(sig[i + 1])
            eps = eps_at(x, t)
            x0 = (x - s0 * alpha(s0) * eps) / alpha(s0)
            h = lam(s1) - lam(s0)
            em = np.exp(-h) - 1
            ratio_ = (s1 * alpha(s1)) / (s0 * alpha(s0))
            nxt = ratio_ * x - alpha(s1) * em * x0
            if prev_x0 is not None and i < steps - 1:
                r = (lam(s0) - lam(float(sig[i - 1]))) / h
                nxt = nxt - 0.5 * alpha(s1) * em * (x0 - prev_x0) / r
            prev_x0, x = x0, blended(nxt, i, noised)
    else:
        raise ValueError(scheduler)
    return decode(m, x)


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
