"""ONNX export in the Stable Diffusion layout of Hugging Face optimum (see shared model-format notes), the
config files, reference outputs for the Java contract test, and the model card."""
import json
import math
import os
import shutil

import onnx
import torch

import clip_bpe
import nets

OPSET = 17


class TextEncoderGraph(torch.nn.Module):
    def __init__(self, te):
        super().__init__()
        self.te = te

    def forward(self, input_ids):
        return self.te(input_ids)


class UNetGraph(torch.nn.Module):
    def __init__(self, unet):
        super().__init__()
        self.unet = unet

    def forward(self, sample, timestep, encoder_hidden_states):
        return self.unet(sample, timestep, encoder_hidden_states)


class VaeEncoderGraph(torch.nn.Module):
    """sample [B,3,H,W] in [-1,1] -> latent_parameters [B,8,H/8,W/8]: centred mean (4), then logvar (4)."""

    def __init__(self, vae, shift):
        super().__init__()
        self.enc = vae.encoder
        self.register_buffer("shift", torch.cat([shift, torch.zeros(4)])[None, :, None, None])

    def forward(self, sample):
        return self.enc(sample) - self.shift


class VaeDecoderGraph(torch.nn.Module):
    """latent_sample [B,4,h,w] (centred latents, i.e. UNet latents / scaling_factor) -> sample [B,3,8h,8w]."""

    def __init__(self, vae, shift):
        super().__init__()
        self.dec = vae.decoder
        self.register_buffer("shift", shift[None, :, None, None].clone())

    def forward(self, latent_sample):
        return self.dec(latent_sample + self.shift)


def pattern(shape, k):
    """Deterministic test input: x[i] = sin(k * i) over the flat row-major index i (float32)."""
    n = math.prod(shape)
    return torch.sin(torch.arange(n, dtype=torch.float64) * k).float().reshape(shape)


def summary(t):
    t = t.detach().double()
    return {"shape": list(t.shape), "sum": t.sum().item(), "mean_abs": t.abs().mean().item(),
            "first": t.flatten()[:8].tolist()}


def export_all(m, out):
    nets.Linear.as_conv = False  # plain MatMul/Gemm in the graphs and in the reference numbers
    tmp = out + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    for d in ("text_encoder", "unet", "vae_encoder", "vae_decoder", "tokenizer", "scheduler"):
        os.makedirs(f"{tmp}/{d}")
    tok = clip_bpe.Tokenizer(m["vocab"], m["merges"])
    prompt = "a red circle on a blue background"
    ids = torch.tensor([tok.encode(""), tok.encode(prompt)])
    te, unet = TextEncoderGraph(m["te"]), UNetGraph(m["unet"])
    enc, dec = VaeEncoderGraph(m["vae"], m["shift"]), VaeDecoderGraph(m["vae"], m["shift"])
    with torch.no_grad():
        hidden, pooled = te(ids)
        sample, t, context = pattern([2, 4, 8, 8], 0.1), torch.tensor([500.0, 500.0]), pattern([2, 77, 128], 0.03)
        noise = unet(sample, t, context)
        latent = pattern([1, 4, 8, 8], 0.05)
        image = dec(latent)
        pixels = pattern([1, 3, 64, 64], 0.01)
        params = enc(pixels)
    hw = {0: "batch", 2: "height", 3: "width"}
    torch.onnx.export(te, (ids,), f"{tmp}/text_encoder/model.onnx", opset_version=OPSET,
                      input_names=["input_ids"], output_names=["last_hidden_state", "pooler_output"],
                      dynamic_axes={"input_ids": {0: "batch"}, "last_hidden_state": {0: "batch"},
                                    "pooler_output": {0: "batch"}})
    torch.onnx.export(unet, (sample, t, context), f"{tmp}/unet/model.onnx", opset_version=OPSET,
                      input_names=["sample", "timestep", "encoder_hidden_states"], output_names=["out_sample"],
                      dynamic_axes={"sample": hw, "timestep": {0: "batch"}, "encoder_hidden_states": {0: "batch"},
                                    "out_sample": hw})  # timestep [batch]: rows at different steps batch
    torch.onnx.export(enc, (pixels,), f"{tmp}/vae_encoder/model.onnx", opset_version=OPSET,
                      input_names=["sample"], output_names=["latent_parameters"],
                      dynamic_axes={"sample": hw, "latent_parameters": hw})
    torch.onnx.export(dec, (latent,), f"{tmp}/vae_decoder/model.onnx", opset_version=OPSET,
                      input_names=["latent_sample"], output_names=["sample"],
                      dynamic_axes={"latent_sample": hw, "sample": hw})
    for d in ("text_encoder", "unet", "vae_encoder", "vae_decoder"):
        onnx.checker.check_model(f"{tmp}/{d}/model.onnx")
    nets.Linear.as_conv = True

    ref = {
        "about": "Outputs of the PyTorch modules for fixed inputs, recorded at export. pattern(shape, k) is "
                 "sin(k * i) over the flat row-major index i, computed in float64 and rounded to float32.",
        "text_encoder": {"prompts": ["", prompt], "input_ids": ids.tolist(),
                         "last_hidden_state": summary(hidden), "pooler_output": summary(pooled)},
        "unet": {"sample": "pattern([2,4,8,8], 0.1)", "timestep": 500.0,
                 "encoder_hidden_states": "pattern([2,77,128], 0.03)", "out_sample": summary(noise)},
        "vae_decoder": {"latent_sample": "pattern([1,4,8,8], 0.05)", "sample": summary(image)},
        "vae_encoder": {"sample": "pattern([1,3,64,64], 0.01)", "latent_parameters": summary(params)},
    }
    dump(ref, f"{tmp}/reference_outputs.json")
    write_configs(m, tmp)
    shutil.rmtree(out, ignore_errors=True)
    os.replace(tmp, out)


def dump(obj, path):
    with open(path, "w") as f:
        json.dump(obj, f, indent=1)
        f.write("\n")


def write_configs(m, d):
    vocab = m["vocab"]
    dump({"_class_name": "OnnxStableDiffusionPipeline", "_diffusers_version": "0.30.0",
          "feature_extractor": [None, None], "safety_checker": [None, None], "requires_safety_checker": False,
          "scheduler": ["diffusers", "PNDMScheduler"], "text_encoder": ["diffusers", "OnnxRuntimeModel"],
          "tokenizer": ["transformers", "CLIPTokenizer"], "unet": ["diffusers", "OnnxRuntimeModel"],
          "vae_decoder": ["diffusers", "OnnxRuntimeModel"], "vae_encoder": ["diffusers", "OnnxRuntimeModel"]},
         f"{d}/model_index.json")
    # The training schedule is SD 1.5's; this file is SD 1.5's scheduler_config.json.
    dump({"_class_name": "PNDMScheduler", "_diffusers_version": "0.30.0", "num_train_timesteps": 1000,
          "beta_start": 0.00085, "beta_end": 0.012, "beta_schedule": "scaled_linear", "set_alpha_to_one": False,
          "skip_prk_steps": True, "steps_offset": 1, "clip_sample": False, "timestep_spacing": "leading",
          "prediction_type": "epsilon", "trained_betas": None}, f"{d}/scheduler/scheduler_config.json")
    te = m["te"]
    dump({"architectures": ["CLIPTextModel"], "model_type": "clip_text_model", "vocab_size": len(vocab),
          "hidden_size": te.ln.normalized_shape[0], "intermediate_size": 4 * te.ln.normalized_shape[0],
          "num_hidden_layers": len(te.blocks), "num_attention_heads": 4, "max_position_embeddings": 77,
          "hidden_act": "gelu", "bos_token_id": vocab[clip_bpe.SOT], "eos_token_id": vocab[clip_bpe.EOT],
          "pad_token_id": vocab[clip_bpe.EOT], "torch_dtype": "float32"}, f"{d}/text_encoder/config.json")
    dump({"_class_name": "UNet2DConditionModel", "sample_size": 8, "in_channels": 4, "out_channels": 4,
          "block_out_channels": [64, 128], "layers_per_block": 1, "cross_attention_dim": te.ln.normalized_shape[0],
          "attention_head_dim": 4, "down_block_types": ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D"],
          "up_block_types": ["CrossAttnUpBlock2D", "CrossAttnUpBlock2D"], "prediction_type": "epsilon",
          "note": "the demo model's own small UNet (tools/demo-model/nets.py); one downsampling"},
         f"{d}/unet/config.json")
    vae_cfg = {"_class_name": "AutoencoderKL", "in_channels": 3, "out_channels": 3, "latent_channels": 4,
               "block_out_channels": [16, 32, 64, 64], "sample_size": 64, "scaling_factor": round(m["scale"], 6),
               "note": "per-channel latent centre folded into the graphs (see the model card)"}
    dump(vae_cfg, f"{d}/vae_decoder/config.json")
    dump(vae_cfg, f"{d}/vae_encoder/config.json")
    clip_bpe.save(m["vocab"], m["merges"], f"{d}/tokenizer")
    dump({"bos_token": clip_bpe.SOT, "eos_token": clip_bpe.EOT, "pad_token": clip_bpe.EOT, "unk_token": clip_bpe.EOT},
         f"{d}/tokenizer/special_tokens_map.json")
    dump({"tokenizer_class": "CLIPTokenizer", "model_max_length": 77, "do_lower_case": True,
          "bos_token": clip_bpe.SOT, "eos_token": clip_bpe.EOT, "pad_token": clip_bpe.EOT, "unk_token": clip_bpe.EOT},
         f"{d}/tokenizer/tokenizer_config.json")


def write_card(m, c, report, out):
    dump({"about": "Latent -> RGB preview: rgb[-1,1] = latents(UNet space, 4 channels) x factors (4x3) + bias, "
                   "fitted by least squares against the training images average-pooled to latent size.",
          "latent_rgb_factors": report["preview"]["latent_rgb_factors"],
          "latent_rgb_bias": report["preview"]["latent_rgb_bias"]}, f"{out}/latent_preview.json")
    sizes = {d: os.path.getsize(f"{out}/{d}/model.onnx") for d in ("text_encoder", "unet", "vae_encoder", "vae_decoder")}
    a, r = report["adherence"], report["autoencoder_reconstruction"]
    pct = lambda x: f"{100 * x:.1f}%"
    card = f"""# sd-shapes-64: the project's demo text-to-image latent diffusion model

A small latent diffusion model (Rombach et al., CVPR 2022) trained from scratch by
`/usr/bin/python3 tools/demo-model/build.py` on procedurally drawn scenes, exported in the directory layout
and graph contract of a Stable Diffusion 1.x ONNX export (Hugging Face optimum), so that the services serve it
through exactly the code path that serves a real SD 1.5 export.

## Data
64x64 RGB images drawn on the fly (`tools/demo-model/scenes.py`): one shape ({", ".join(__import__("scenes").SHAPES)})
in one of {len(__import__("scenes").COLOURS)} colours ({", ".join(__import__("scenes").COLOURS)}) on a background of another of
them, small or large, its centre jittered by up to 6% of the side. Captions: "a [small|large] <colour> <shape>
on a <colour> background" (size word in 60% of them); 10% of captions are dropped to "" so that
classifier-free guidance works. The prompts the model understands are those; other words tokenize (the
tokenizer is byte-level BPE) but mean nothing to it.

## Architecture
| part | what | parameters | ONNX file |
|---|---|---|---|
| vae_encoder | KL autoencoder, f=8, 4 latent channels: 64x64x3 -> 8x8x(4 mean + 4 logvar) | {nets.count(m["vae"].encoder):,} | {sizes["vae_encoder"] / 1e6:.2f} MB |
| vae_decoder | 8x8x4 -> 64x64x3 | {nets.count(m["vae"].decoder):,} | {sizes["vae_decoder"] / 1e6:.2f} MB |
| text_encoder | CLIP-style causal transformer: width 128, 2 layers, 4 heads, 77 positions, final LayerNorm, pooled at end-of-text | {nets.count(m["te"]):,} | {sizes["text_encoder"] / 1e6:.2f} MB |
| unet | channels 64/128, one downsampling, ResBlocks with sinusoidal timestep embedding, cross-attention to the text states at every level (self-attention at 4x4), epsilon prediction | {nets.count(m["unet"]):,} | {sizes["unet"] / 1e6:.2f} MB |

Tokenizer: CLIP's byte-level BPE format (`vocab.json`, `merges.txt`; {len(m["vocab"])} tokens: 512 byte
symbols, {len(m["merges"])} merges learnt from the caption words, `<|startoftext|>`, `<|endoftext|>`), length 77,
padded with `<|endoftext|>` like SD 1.x.

Latent space: the encoder's per-channel latent mean over the training set is subtracted inside the exported
`vae_encoder` graph and added back inside `vae_decoder`, so the latents are centred; `scaling_factor` =
1 / std of the centred training latents = {m["scale"]:.5f} (SD 1.x's 0.18215 plays this role), in
`vae_decoder/config.json`. Training schedule: SD's (1000 steps, scaled_linear 0.00085..0.012); the scheduler
config is SD 1.5's. `latent_preview.json` holds a fitted 4x3 latent-to-RGB matrix plus bias for previews.
`reference_outputs.json` holds outputs of each graph for fixed inputs, for the Java contract test.

## Training
Autoencoder: {c["vae_steps"]} steps x {c["vae_batch"]} images, MSE + 0.5 L1 + 1e-5 KL, Adam 1e-3 cosine:
{m["vae_minutes"]:.1f} min. Text encoder and UNet jointly: {c["unet_steps"]} steps x {c["batch"]} from
{c["dataset"]} pre-encoded scenes, epsilon loss with Min-SNR-5 weighting, AdamW 5e-4 cosine, EMA 0.999:
{m["unet_minutes"]:.1f} min. Export, judge, grid and card: {report["evaluation_minutes"]:.1f} min. In all
{m["vae_minutes"] + m["unet_minutes"] + report["evaluation_minutes"]:.0f} min of wall time, one torch thread on a
2-core machine that was building and testing the services at the same time (Debian's torch 1.13; its BLAS is
generic, so linear layers train as 1x1 convolutions, which run on oneDNN).

## Measured prompt adherence
Judge: `docs/prompt-adherence-judge.md` (the same rules run in Java in the test suite). {report["judge"]["prompts"]}
fixed prompts x seeds {report["judge"]["seeds"]}, DDIM {report["judge"]["steps"]} steps, guidance
{report["judge"]["guidance_scale"]}, PyTorch sampler (`tools/demo-model/sampling.py`):

| | foreground colour | background colour | shape | size word |
|---|---|---|---|---|
| generated | {pct(a["colour"])} | {pct(a["background"])} | {pct(a["shape"])} | {pct(a["size"])} |
| autoencoder reconstructions (256 scenes) | {pct(r["colour"])} | {pct(r["background"])} | {pct(r["shape"])} | {pct(r["size"])} |

Samples: `docs/demo-model-samples.png` (8 prompts x 4 seeds).

## Limits
64x64 only in practice (the graphs take other multiples of 16, but the model never saw them); eight colours,
four shapes, two sizes, centred; no other concepts. It exists so that the project's tests and first command run
the real serving path offline; it is not a general image model.
"""
    with open(f"{out}/README.md", "w") as f:
        f.write(card)
