#!/usr/bin/python3
"""Independent reference of the Llama 4 vision stack (spec §5.2-5.7), written from the spec and
the semantics of Hugging Face's Llama4VisionModel / Llama4MultiModalProjector (unfold, cat CLS
last, view_as_complex RoPE, reshape/permute pixel shuffle), in float64 with Debian's
python3-torch. Used by tests/integration/test_vision_golden.cc.

usage: vision_golden.py MODEL_DIR PIXELS.f32 N_TILES OUT_DIR
  PIXELS.f32: raw little-endian float32 [N_TILES, 3, S, S] (already normalised).
  Writes OUT_DIR/{patch_embedding,layer0,layernorm_post,pixel_shuffle,adapter,projector}.f32.
"""
import json
import math
import os
import struct
import sys

import numpy as np
import torch
import torch.nn.functional as F


def read_safetensors(model_dir):
    index = os.path.join(model_dir, "model.safetensors.index.json")
    if os.path.exists(index):
        files = sorted(set(json.load(open(index))["weight_map"].values()))
    else:
        files = ["model.safetensors"]
    tensors = {}
    for name in files:
        raw = open(os.path.join(model_dir, name), "rb").read()
        (n,) = struct.unpack("<Q", raw[:8])
        header = json.loads(raw[8:8 + n])
        base = 8 + n
        for key, info in header.items():
            if key == "__metadata__" or not (key.startswith("vision_model.") or
                                             key.startswith("multi_modal_projector.")):
                continue
            a, b = info["data_offsets"]
            buf = raw[base + a:base + b]
            if info["dtype"] == "BF16":
                u = np.frombuffer(buf, dtype=np.uint16).astype(np.uint32) << 16
                arr = u.view(np.float32)
            elif info["dtype"] == "F32":
                arr = np.frombuffer(buf, dtype=np.float32)
            else:
                raise SystemExit(f"{key}: dtype {info['dtype']} not handled")
            tensors[key] = torch.from_numpy(arr.astype(np.float64).reshape(info["shape"]))
    return tensors


def rope_freqs(image_size, patch_size, hidden, heads, theta):
    # Llama4VisionRotaryEmbedding: x = n % side, y = n // side for patches, CLS (id -2) masked.
    side = image_size // patch_size
    idx = torch.arange(side * side, dtype=torch.int64).reshape(-1, 1)
    idx = torch.cat([idx, idx[:1]], dim=0)
    idx[-1, -1] = -2
    fx, fy = idx % side, idx // side
    freq_dim = hidden // heads // 2
    rope_freq = 1.0 / (theta ** (torch.arange(0, freq_dim, 2)[: freq_dim // 2].double() / freq_dim))
    freqs_x = ((fx + 1)[..., None] * rope_freq[None, None, :]).repeat_interleave(2, dim=-1)
    freqs_y = ((fy + 1)[..., None] * rope_freq[None, None, :]).repeat_interleave(2, dim=-1)
    freqs = torch.cat([freqs_x, freqs_y], dim=-1)[..., ::2]
    freqs = freqs.masked_fill(idx.reshape(-1, 1, 1) < 0, 0)
    return torch.polar(torch.ones_like(freqs), freqs)  # [T, 1, head_dim/2] complex


def apply_rope(x, freqs_ci):  # x [B, T, heads, hd]
    xc = torch.view_as_complex(x.reshape(*x.shape[:-1], -1, 2).contiguous())
    return torch.view_as_real(xc * freqs_ci[None]).flatten(3)


def pixel_shuffle(x, ratio):  # HF pixel_shuffle: reshape -> permute -> reshape -> permute
    b, n, c = x.shape
    side = int(math.sqrt(n))
    x = x.view(b, side, side, c)
    b, h, w, c = x.size()
    x = x.view(b, h, int(w * ratio), int(c / ratio)).permute(0, 2, 1, 3).contiguous()
    x = x.view(b, int(h * ratio), int(w * ratio), int(c / (ratio * ratio)))
    x = x.permute(0, 2, 1, 3).contiguous()
    return x.view(b, -1, x.shape[-1])


def main():
    model_dir, pixels_path, n_tiles, out_dir = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    cfg = json.load(open(os.path.join(model_dir, "config.json")))
    vc = cfg["vision_config"]
    D, heads, L = vc["hidden_size"], vc["num_attention_heads"], vc["num_hidden_layers"]
    S, P, C = vc["image_size"], vc["patch_size"], vc.get("num_channels", 3)
    eps = vc.get("norm_eps", 1e-5)
    hd = D // heads
    W = read_safetensors(model_dir)
    px = np.fromfile(pixels_path, dtype=np.float32).astype(np.float64)
    px = torch.from_numpy(px.reshape(n_tiles, C, S, S))
    out = {}

    def gelu(x):
        return F.gelu(x)  # exact erf form

    def ln(x, name):
        return F.layer_norm(x, (D,), W[name + ".weight"], W[name + ".bias"], eps)

    m = "vision_model."
    # Patch embedding: Unfold (channel-major c*P*P + r*P + q) then Linear without bias.
    patches = F.unfold(px, kernel_size=P, stride=P).permute(0, 2, 1)
    h = patches @ W[m + "patch_embedding.linear.weight"].T
    out["patch_embedding"] = h
    cls = W[m + "class_embedding"].expand(n_tiles, 1, D)
    h = torch.cat([h, cls], dim=1) + W[m + "positional_embedding_vlm"]
    h = ln(h, m + "layernorm_pre")
    freqs_ci = rope_freqs(S, P, D, heads, vc.get("rope_theta", 10000.0))
    T = h.shape[1]
    for j in range(L):
        p = f"{m}model.layers.{j}."
        r = h
        x = ln(h, p + "input_layernorm")
        proj = lambda nm: F.linear(x, W[p + f"self_attn.{nm}.weight"], W[p + f"self_attn.{nm}.bias"])
        q = apply_rope(proj("q_proj").view(n_tiles, T, heads, hd), freqs_ci).transpose(1, 2)
        k = apply_rope(proj("k_proj").view(n_tiles, T, heads, hd), freqs_ci).transpose(1, 2)
        v = proj("v_proj").view(n_tiles, T, heads, hd).transpose(1, 2)
        a = torch.softmax(q @ k.transpose(-1, -2) * hd ** -0.5, dim=-1) @ v
        a = a.transpose(1, 2).reshape(n_tiles, T, D)
        h = r + F.linear(a, W[p + "self_attn.o_proj.weight"], W[p + "self_attn.o_proj.bias"])
        r = h
        x = ln(h, p + "post_attention_layernorm")
        x = gelu(F.linear(x, W[p + "mlp.fc1.weight"], W[p + "mlp.fc1.bias"]))
        h = r + F.linear(x, W[p + "mlp.fc2.weight"], W[p + "mlp.fc2.bias"])
        if j == 0:
            out["layer0"] = h
    h = ln(h, m + "layernorm_post")[:, :-1, :]
    out["layernorm_post"] = h
    h = pixel_shuffle(h, vc["pixel_shuffle_ratio"])
    out["pixel_shuffle"] = h
    h = gelu(h @ W[m + "vision_adapter.mlp.fc1.weight"].T)
    h = gelu(h @ W[m + "vision_adapter.mlp.fc2.weight"].T)
    out["adapter"] = h
    out["projector"] = h @ W["multi_modal_projector.linear_1.weight"].T
    for name, t in out.items():
        t.reshape(-1).numpy().astype(np.float32).tofile(os.path.join(out_dir, name + ".f32"))


if __name__ == "__main__":
    main()
