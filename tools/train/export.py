"""Exports a training checkpoint in the Hugging Face Llama4ForCausalLM layout herd loads.

  /usr/bin/python3 tools/train/export.py --ckpt tools/train/out/ckpt.pt \
      --tokenizer-from /tmp/synth-tiny --out models/default

Tensor names and shapes are herd's text tensor table (src/herd/model/tensor_table.cc) with the
flat (text-only) prefix; weights are rounded once to bf16. The tokenizer files are copied from a
`herd synth` directory: herd's byte-level fallback tokenizer, whose ids the corpus uses.
"""
import argparse
import json
import os
import shutil
import struct

import torch

import corpus
from model import Config, Llama4Text

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")
EOT = 264  # <|eot|>: 256 + its index in Meta's special-token order


def hf_tensors(model):
    """{HF name: tensor} in the checkpoint layout (experts fused, input-major)."""
    out = {"model.embed_tokens.weight": model.embed_tokens.weight}
    for i, layer in enumerate(model.layers):
        p = f"model.layers.{i}."
        a = layer.self_attn
        out[p + "input_layernorm.weight"] = layer.input_layernorm.weight
        for n in ("q_proj", "k_proj", "v_proj", "o_proj"):
            out[p + f"self_attn.{n}.weight"] = getattr(a, n).weight
        out[p + "post_attention_layernorm.weight"] = layer.post_attention_layernorm.weight
        f, ff = p + "feed_forward.", layer.feed_forward
        if model.cfg.is_moe(i):
            out[f + "router.weight"] = ff.router.weight  # [E, H]
            out[f + "experts.gate_up_proj"] = ff.gate_up_proj  # [E, H, 2I]
            out[f + "experts.down_proj"] = ff.down_proj  # [E, I, H]
            for n in ("gate_proj", "up_proj", "down_proj"):
                out[f + f"shared_expert.{n}.weight"] = getattr(ff.shared_expert, n).weight
        else:
            for n in ("gate_proj", "up_proj", "down_proj"):
                out[f + f"{n}.weight"] = getattr(ff, n).weight
    out["model.norm.weight"] = model.norm.weight
    out["lm_head.weight"] = model.lm_head.weight
    return out


def write_safetensors(path, tensors, metadata):
    header, blobs, off = {"__metadata__": metadata}, [], 0
    for name, t in tensors.items():
        b = t.detach().to(torch.bfloat16).contiguous().view(torch.int16).numpy().tobytes()
        header[name] = {"dtype": "BF16", "shape": list(t.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)  # keep the data 8-byte aligned
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def config_json(cfg):
    L = cfg.num_hidden_layers
    return {
        "architectures": ["Llama4ForCausalLM"],
        "model_type": "llama4_text",
        "hidden_size": cfg.hidden_size,
        "num_hidden_layers": L,
        "num_attention_heads": cfg.num_attention_heads,
        "num_key_value_heads": cfg.num_key_value_heads,
        "head_dim": cfg.head_dim,
        "vocab_size": cfg.vocab_size,
        "num_local_experts": cfg.num_local_experts,
        "num_experts_per_tok": 1,
        "intermediate_size": cfg.intermediate_size,
        "intermediate_size_mlp": cfg.intermediate_size_mlp,
        "interleave_moe_layer_step": cfg.interleave_moe_layer_step,
        "moe_layers": [i for i in range(L) if cfg.is_moe(i)],
        "no_rope_layers": cfg.no_rope_layers(),
        "attention_chunk_size": cfg.attention_chunk_size,
        "rope_theta": cfg.rope_theta,
        "rope_scaling": cfg.rope_scaling,
        "max_position_embeddings": cfg.max_position_embeddings,
        "rms_norm_eps": cfg.rms_norm_eps,
        "use_qk_norm": cfg.use_qk_norm,
        "attn_temperature_tuning": cfg.attn_temperature_tuning,
        "floor_scale": cfg.floor_scale,
        "attn_scale": cfg.attn_scale,
        "attention_bias": False,
        "hidden_act": "silu",
        "tie_word_embeddings": False,
        "bos_token_id": corpus.BOS,
        "eos_token_id": [corpus.END_OF_TEXT, EOT],
        "pad_token_id": 256 + 12,  # <|finetune_right_pad|>
        "router_aux_loss_coef": 0.001,
        "router_jitter_noise": 0.0,
        "output_router_logits": False,
        "initializer_range": 0.02,
        "for_llm_compressor": False,
        "cache_implementation": "hybrid",
        "torch_dtype": "bfloat16",
        "transformers_version": "4.51.0",
    }


def load(ckpt_path):
    ck = torch.load(ckpt_path, map_location="cpu")
    cfg = Config(**ck["config"])
    model = Llama4Text(cfg)
    model.load_state_dict(ck["model"])
    return model, ck


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ckpt", default="tools/train/out/ckpt.pt")
    ap.add_argument("--tokenizer-from", required=True, help="a `herd synth` output directory")
    ap.add_argument("--out", default="models/default")
    args = ap.parse_args()
    model, ck = load(args.ckpt)
    os.makedirs(args.out, exist_ok=True)
    cfg = model.cfg
    with open(os.path.join(args.out, "config.json"), "w") as f:
        json.dump(config_json(cfg), f, indent=2)
        f.write("\n")
    gen = {"bos_token_id": corpus.BOS, "eos_token_id": [corpus.END_OF_TEXT, EOT],
           "pad_token_id": 256 + 12, "do_sample": True, "temperature": 0.6, "top_p": 0.9,
           "transformers_version": "4.51.0"}
    with open(os.path.join(args.out, "generation_config.json"), "w") as f:
        json.dump(gen, f, indent=2)
        f.write("\n")
    for n in TOKENIZER_FILES:
        shutil.copyfile(os.path.join(args.tokenizer_from, n), os.path.join(args.out, n))
    meta = {"format": "pt", "herd_trained": f"step={ck['step']} seed={ck['seed']}"}
    write_safetensors(os.path.join(args.out, "model.safetensors"), hf_tensors(model), meta)
    # The held-out documents as plain text (for `herd perplexity -f`), blank-line separated.
    _, held = corpus.split(corpus.documents())
    with open(os.path.join(args.out, "heldout.txt"), "w") as f:
        f.write("\n\n".join(held) + "\n")
    print(f"exported step {ck['step']} (held-out loss {ck['heldout_loss']}) to {args.out}")


if __name__ == "__main__":
    main()
