"""The three networks of the demo latent diffusion model (Rombach et al., CVPR 2022), small enough to train on
two CPU cores: a KL autoencoder with f=8 and 4 latent channels, a CLIP-style causal text transformer, and a
UNet with sinusoidal timestep embedding, residual blocks and cross-attention to the text states."""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F


class Linear(nn.Linear):
    """nn.Linear whose training-time matmul runs as a 1x1 convolution: Debian's torch has a generic BLAS
    (~5 GFLOP/s) but oneDNN convolutions (~50+ GFLOP/s). Same weights, same result; exports as Gemm/MatMul."""

    as_conv = True

    def forward(self, x):
        if not Linear.as_conv or torch.onnx.is_in_onnx_export():
            return F.linear(x, self.weight, self.bias)
        shape = x.shape
        y = F.conv2d(x.reshape(-1, shape[-1], 1, 1), self.weight[:, :, None, None], self.bias)
        return y.reshape(*shape[:-1], self.weight.shape[0])


def norm(c):
    return nn.GroupNorm(min(16, c // 4), c, eps=1e-5)


class ResBlock(nn.Module):
    def __init__(self, cin, cout, temb=None):
        super().__init__()
        self.n1, self.c1 = norm(cin), nn.Conv2d(cin, cout, 3, padding=1)
        self.t = Linear(temb, cout) if temb else None
        self.n2, self.c2 = norm(cout), nn.Conv2d(cout, cout, 3, padding=1)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x, emb=None):
        h = self.c1(F.silu(self.n1(x)))
        if self.t is not None:
            h = h + self.t(F.silu(emb))[:, :, None, None]
        h = self.c2(F.silu(self.n2(h)))
        return self.skip(x) + h


# ------------------------------------------------------------------------------------------ autoencoder
class Encoder(nn.Module):
    """[B,3,H,W] in [-1,1] -> [B,8,H/8,W/8]: 4 mean channels, then 4 log-variance channels."""

    def __init__(self, ch=(16, 32, 64, 64)):
        super().__init__()
        self.inp = nn.Conv2d(3, ch[0], 3, padding=1)
        layers = []
        for a, b in zip(ch, ch[1:]):
            layers += [ResBlock(a, a), nn.Conv2d(a, b, 3, stride=2, padding=1)]
        layers += [ResBlock(ch[-1], ch[-1])]
        self.body = nn.Sequential(*layers)
        self.out = nn.Sequential(norm(ch[-1]), nn.SiLU(), nn.Conv2d(ch[-1], 8, 3, padding=1))

    def forward(self, x):
        return self.out(self.body(self.inp(x)))


class Decoder(nn.Module):
    """[B,4,h,w] -> [B,3,8h,8w], about [-1,1]."""

    def __init__(self, ch=(64, 64, 32, 16)):
        super().__init__()
        self.inp = nn.Conv2d(4, ch[0], 3, padding=1)
        layers = [ResBlock(ch[0], ch[0])]
        for a, b in zip(ch, ch[1:]):
            layers += [nn.Upsample(scale_factor=2.0, mode="nearest"), nn.Conv2d(a, b, 3, padding=1), ResBlock(b, b)]
        self.body = nn.Sequential(*layers)
        self.out = nn.Sequential(norm(ch[-1]), nn.SiLU(), nn.Conv2d(ch[-1], 3, 3, padding=1))

    def forward(self, z):
        return self.out(self.body(self.inp(z)))


class AutoencoderKL(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder, self.decoder = Encoder(), Decoder()


class Attention(nn.Module):
    def __init__(self, dim, ctx, heads, bias=False):
        super().__init__()
        self.h = heads
        self.q, self.k, self.v = Linear(dim, dim, bias=bias), Linear(ctx, dim, bias=bias), Linear(ctx, dim, bias=bias)
        self.o = Linear(dim, dim)

    def forward(self, x, ctx, mask=None):
        b, n, d = x.shape
        q = self.q(x).reshape(b, n, self.h, d // self.h).transpose(1, 2)
        k = self.k(ctx).reshape(b, ctx.shape[1], self.h, d // self.h).transpose(1, 2)
        v = self.v(ctx).reshape(b, ctx.shape[1], self.h, d // self.h).transpose(1, 2)
        s = q @ k.transpose(-1, -2) / math.sqrt(d // self.h)
        a = torch.softmax(s if mask is None else s + mask, dim=-1)
        return self.o((a @ v).transpose(1, 2).reshape(b, n, d))


# ------------------------------------------------------------------------------------------ text encoder
class TextBlock(nn.Module):
    def __init__(self, width, heads):
        super().__init__()
        self.ln1, self.attn = nn.LayerNorm(width), Attention(width, width, heads, bias=True)
        self.ln2 = nn.LayerNorm(width)
        self.mlp = nn.Sequential(Linear(width, 4 * width), nn.GELU(), Linear(4 * width, width))

    def forward(self, x, mask):
        h = self.ln1(x)
        x = x + self.attn(h, h, mask)
        return x + self.mlp(self.ln2(x))


class TextEncoder(nn.Module):
    """CLIP-style: token + position embeddings, causal pre-LN transformer, final LayerNorm.
    input_ids int64 [B,77] -> last_hidden_state [B,77,width], pooler_output [B,width] (the state at the
    end-of-text token, found as argmax of the ids: <|endoftext|> has the highest id, as in CLIP)."""

    def __init__(self, vocab, width=128, layers=2, heads=4, length=77):
        super().__init__()
        self.tok = nn.Embedding(vocab, width)
        self.pos = nn.Parameter(torch.randn(length, width) * 0.01)
        self.blocks = nn.ModuleList([TextBlock(width, heads) for _ in range(layers)])
        self.ln = nn.LayerNorm(width)
        self.register_buffer("mask", torch.full((length, length), float("-inf")).triu(1), persistent=False)

    def forward(self, input_ids):
        x = self.tok(input_ids) + self.pos
        for b in self.blocks:
            x = b(x, self.mask)
        x = self.ln(x)
        # ONNX Runtime's CPU ArgMax has no int64 kernel: take it on int32 (as transformers' CLIP does).
        eot = input_ids.to(torch.int32).argmax(dim=-1)
        pooled = x[torch.arange(x.shape[0]), eot]
        return x, pooled


# ------------------------------------------------------------------------------------------ UNet
def timestep_embedding(t, dim):
    """Sinusoidal embedding as in diffusers' get_timestep_embedding (flip_sin_to_cos=True, shift 0)."""
    t = t.reshape(-1).float()
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float32) / half)
    args = t[:, None] * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


class SpatialTransformer(nn.Module):
    """Latents are queries; the text states are keys and values (the paper's conditioning mechanism)."""

    def __init__(self, dim, ctx, heads=4, self_attn=True):
        super().__init__()
        self.norm = norm(dim)
        self.ln1 = nn.LayerNorm(dim) if self_attn else None
        self.self_attn = Attention(dim, dim, heads) if self_attn else None
        self.ln2, self.cross = nn.LayerNorm(dim), Attention(dim, ctx, heads)
        self.ln3 = nn.LayerNorm(dim)
        self.ff = nn.Sequential(Linear(dim, 4 * dim), nn.GELU(), Linear(4 * dim, dim))

    def forward(self, x, ctx):
        b, c, h, w = x.shape
        t = self.norm(x).flatten(2).transpose(1, 2)
        if self.self_attn is not None:
            u = self.ln1(t)
            t = t + self.self_attn(u, u)
        t = t + self.cross(self.ln2(t), ctx)
        t = t + self.ff(self.ln3(t))
        return x + t.transpose(1, 2).reshape(b, c, h, w)


class UNet(nn.Module):
    """sample [B,4,h,w], timestep (scalar or [B]), encoder_hidden_states [B,77,ctx] -> noise [B,4,h,w].
    One downsampling (h, w must be even)."""

    def __init__(self, ctx=128, ch=(64, 128), temb=256):
        super().__init__()
        c0, c1 = ch
        self.temb_dim = c0
        self.time = nn.Sequential(Linear(c0, temb), nn.SiLU(), Linear(temb, temb))
        self.inp = nn.Conv2d(4, c0, 3, padding=1)
        self.d0r, self.d0t = ResBlock(c0, c0, temb), SpatialTransformer(c0, ctx, self_attn=False)
        self.down = nn.Conv2d(c0, c0, 3, stride=2, padding=1)
        self.d1r, self.d1t = ResBlock(c0, c1, temb), SpatialTransformer(c1, ctx)
        self.m1, self.mt, self.m2 = ResBlock(c1, c1, temb), SpatialTransformer(c1, ctx), ResBlock(c1, c1, temb)
        self.u1r, self.u1t = ResBlock(c1 + c1, c1, temb), SpatialTransformer(c1, ctx)
        self.up = nn.Sequential(nn.Upsample(scale_factor=2.0, mode="nearest"), nn.Conv2d(c1, c1, 3, padding=1))
        self.u0r, self.u0t = ResBlock(c1 + c0, c0, temb), SpatialTransformer(c0, ctx, self_attn=False)
        self.out = nn.Sequential(norm(c0), nn.SiLU(), nn.Conv2d(c0, 4, 3, padding=1))

    def forward(self, sample, timestep, encoder_hidden_states):
        ctx = encoder_hidden_states
        emb = self.time(timestep_embedding(timestep, self.temb_dim))
        h0 = self.d0t(self.d0r(self.inp(sample), emb), ctx)
        h1 = self.d1t(self.d1r(self.down(h0), emb), ctx)
        m = self.m2(self.mt(self.m1(h1, emb), ctx), emb)
        u = self.u1t(self.u1r(torch.cat([m, h1], 1), emb), ctx)
        u = self.u0t(self.u0r(torch.cat([self.up(u), h0], 1), emb), ctx)
        return self.out(u)


def count(m):
    return sum(p.numel() for p in m.parameters())
