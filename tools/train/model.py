"""Llama 4 text decoder in torch, written to be the same math as herd's forward pass.

Each step cites the herd code it mirrors (src/herd/model/text.cc, src/herd/ops/*) and the spec
(/work/shared/spec/LLAMA4.md §3): if a line here changes, the logits check in check_logits.py
against `herd logits --precision f32` is what tells whether the two still agree.
"""
import math
from dataclasses import dataclass, field, asdict

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass
class Config:
    vocab_size: int = 277  # 256 bytes + 21 Llama 4 specials (herd synth's fallback tokenizer)
    hidden_size: int = 256
    num_hidden_layers: int = 8
    num_attention_heads: int = 4
    num_key_value_heads: int = 2
    head_dim: int = 64
    num_local_experts: int = 4
    intermediate_size: int = 384  # routed and shared expert width
    intermediate_size_mlp: int = 768  # dense FFN width
    interleave_moe_layer_step: int = 2  # layers 1, 3, 5, 7 are MoE (herd: (i+1) % step == 0)
    attention_chunk_size: int = 64
    rope_theta: float = 10000.0
    # llama3 scaling with a small original length so the blend band lies inside our context.
    rope_scaling: dict = field(default_factory=lambda: {
        "rope_type": "llama3", "factor": 4.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
        "original_max_position_embeddings": 256})
    max_position_embeddings: int = 4096
    rms_norm_eps: float = 1e-5
    use_qk_norm: bool = True
    attn_temperature_tuning: bool = True
    floor_scale: float = 32.0  # small, so the NoPE query temperature changes within a window
    attn_scale: float = 0.1

    def is_moe(self, i):
        return (i + 1) % self.interleave_moe_layer_step == 0

    def is_rope(self, i):  # NoPE (global attention) every 4th layer (HF no_rope_layer_interval)
        return (i + 1) % 4 != 0

    def no_rope_layers(self):
        return [1 if self.is_rope(i) else 0 for i in range(self.num_hidden_layers)]


def rope_inv_freq(cfg):
    """ops/rope.cc rope_inv_freq: in double, llama3 scaling, rounded once to f32."""
    hd = cfg.head_dim
    out = np.zeros(hd // 2, dtype=np.float64)
    s = cfg.rope_scaling
    for j in range(hd // 2):
        f = cfg.rope_theta ** (-2.0 * j / hd)
        if s:
            l0 = float(s["original_max_position_embeddings"])
            low_wl, high_wl = l0 / s["low_freq_factor"], l0 / s["high_freq_factor"]
            wl = 2.0 * math.pi / f
            if wl > low_wl:
                f = f / s["factor"]
            elif wl >= high_wl and s["high_freq_factor"] != s["low_freq_factor"]:
                sm = (l0 / wl - s["low_freq_factor"]) / (s["high_freq_factor"] - s["low_freq_factor"])
                f = (1.0 - sm) * f / s["factor"] + sm * f
        out[j] = f
    return torch.from_numpy(out.astype(np.float32))


def apply_rope(x, cos, sin):
    """Adjacent pairs (2j, 2j+1) rotate together (HF view_as_complex; ggml NORM style).
    x: [B, heads, T, hd]; cos/sin: [T, hd/2]."""
    a, b = x[..., 0::2], x[..., 1::2]
    return torch.stack((a * cos - b * sin, a * sin + b * cos), dim=-1).flatten(-2)


def rms(x, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps)


class RMSNorm(nn.Module):
    def __init__(self, n, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(n))
        self.eps = eps

    def forward(self, x):  # ops/norm.cc rms_norm: (x * scale) * gain
        return rms(x, self.eps) * self.weight


class Attention(nn.Module):
    def __init__(self, cfg, layer):
        super().__init__()
        self.cfg, self.rope = cfg, cfg.is_rope(layer)
        H, hd = cfg.hidden_size, cfg.head_dim
        self.nh, self.nkv = cfg.num_attention_heads, cfg.num_key_value_heads
        self.q_proj = nn.Linear(H, self.nh * hd, bias=False)
        self.k_proj = nn.Linear(H, self.nkv * hd, bias=False)
        self.v_proj = nn.Linear(H, self.nkv * hd, bias=False)
        self.o_proj = nn.Linear(self.nh * hd, H, bias=False)

    def forward(self, x, cos, sin, pos, masks):
        cfg, B, T = self.cfg, x.shape[0], x.shape[1]
        hd = cfg.head_dim
        q = self.q_proj(x).view(B, T, self.nh, hd).transpose(1, 2)
        k = self.k_proj(x).view(B, T, self.nkv, hd).transpose(1, 2)
        v = self.v_proj(x).view(B, T, self.nkv, hd).transpose(1, 2)
        if self.rope:  # RoPE, then the weightless QK-norm (spec §3 steps 3-4)
            q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
            if cfg.use_qk_norm:
                q, k = rms(q, cfg.rms_norm_eps), rms(k, cfg.rms_norm_eps)
        elif cfg.attn_temperature_tuning:  # NoPE: queries scaled by absolute position (step 5)
            s = 1.0 + cfg.attn_scale * torch.log1p(torch.floor((pos.double() + 1) / cfg.floor_scale))
            q = q * s.float().view(1, 1, T, 1)
        g = self.nh // self.nkv  # GQA: query head h reads kv head h // g
        k = k.repeat_interleave(g, dim=1)
        v = v.repeat_interleave(g, dim=1)
        att = (q @ k.transpose(-1, -2)) * (1.0 / math.sqrt(hd))
        att = att.masked_fill(~masks[self.rope], float("-inf")).softmax(-1)
        y = (att @ v).transpose(1, 2).reshape(B, T, self.nh * hd)
        return self.o_proj(y)


class DenseMLP(nn.Module):
    def __init__(self, H, I):
        super().__init__()
        self.gate_proj = nn.Linear(H, I, bias=False)
        self.up_proj = nn.Linear(H, I, bias=False)
        self.down_proj = nn.Linear(I, H, bias=False)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class MoE(nn.Module):
    """Top-1 sigmoid router, the weight applied to the expert's INPUT, plus an unweighted shared
    expert (spec §3.2; text.cc TextDecoder::moe). Experts are stored fused and input-major like
    the checkpoint: gate_up_proj [E, H, 2I] (gate columns first), down_proj [E, I, H]."""

    def __init__(self, cfg):
        super().__init__()
        H, I, E = cfg.hidden_size, cfg.intermediate_size, cfg.num_local_experts
        self.E, self.I = E, I
        self.router = nn.Linear(H, E, bias=False)
        self.gate_up_proj = nn.Parameter(torch.empty(E, H, 2 * I))
        self.down_proj = nn.Parameter(torch.empty(E, I, H))
        self.shared_expert = DenseMLP(H, I)
        self.aux = torch.zeros(())

    def forward(self, x):
        shape = x.shape
        x = x.reshape(-1, shape[-1])
        logits = self.router(x)  # [n, E]
        top = logits.argmax(-1)  # first index on ties, like router_top1
        w = torch.sigmoid(logits.gather(1, top[:, None]))  # no softmax, no renormalisation
        xin = x * w
        out = torch.zeros_like(x)
        for e in range(self.E):
            idx = (top == e).nonzero(as_tuple=True)[0]
            if idx.numel() == 0:
                continue
            gu = xin[idx] @ self.gate_up_proj[e]
            h = F.silu(gu[:, : self.I]) * gu[:, self.I:]
            out = out.index_add(0, idx, h @ self.down_proj[e])
        # Switch-style load balancing (training only; inference math is unchanged): fraction
        # routed to each expert times its mean softmax router probability.
        frac = torch.bincount(top, minlength=self.E).float() / x.shape[0]
        self.aux = self.E * (frac * logits.softmax(-1).mean(0)).sum()
        self.counts = torch.bincount(top, minlength=self.E)
        return (self.shared_expert(x) + out).view(shape)


class Layer(nn.Module):
    def __init__(self, cfg, i):
        super().__init__()
        self.input_layernorm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        self.self_attn = Attention(cfg, i)
        self.post_attention_layernorm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        self.feed_forward = (MoE(cfg) if cfg.is_moe(i)
                             else DenseMLP(cfg.hidden_size, cfg.intermediate_size_mlp))

    def forward(self, h, cos, sin, pos, masks):
        h = h + self.self_attn(self.input_layernorm(h), cos, sin, pos, masks)
        return h + self.feed_forward(self.post_attention_layernorm(h))


class Llama4Text(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.embed_tokens = nn.Embedding(cfg.vocab_size, cfg.hidden_size)
        self.layers = nn.ModuleList(Layer(cfg, i) for i in range(cfg.num_hidden_layers))
        self.norm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        self.lm_head = nn.Linear(cfg.hidden_size, cfg.vocab_size, bias=False)
        self.register_buffer("inv_freq", rope_inv_freq(cfg), persistent=False)
        self.reset_parameters()

    def reset_parameters(self):
        std = 0.02
        out_std = std / math.sqrt(2 * self.cfg.num_hidden_layers)
        for name, p in self.named_parameters():
            if p.dim() == 1:
                continue  # norm gains stay 1
            is_out = name.endswith(("o_proj.weight", "down_proj.weight", "down_proj"))
            nn.init.normal_(p, 0.0, out_std if is_out else std)

    def forward(self, tokens):
        B, T = tokens.shape
        pos = torch.arange(T)
        # Angle formed in f32 as pos * inv_freq, cos/sin in f32 (ops/rope.cc apply_rope).
        ang = pos.float()[:, None] * self.inv_freq[None, :]
        cos, sin = ang.cos(), ang.sin()
        causal = pos[None, :] <= pos[:, None]
        c = self.cfg.attention_chunk_size
        chunked = causal & ((pos[None, :] // c) == (pos[:, None] // c))  # spec §7.5
        masks = {True: chunked, False: causal}  # keyed by "is a RoPE layer"
        h = self.embed_tokens(tokens)  # no embedding scale (spec §3 step 1)
        for layer in self.layers:
            h = layer(h, cos, sin, pos, masks)
        return self.lm_head(self.norm(h))

    def aux_loss(self):
        return sum(l.feed_forward.aux for l in self.layers if isinstance(l.feed_forward, MoE))
