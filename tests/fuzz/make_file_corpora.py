#!/usr/bin/env python3
"""Writes the seed corpora of the file-format fuzz targets (tests/fuzz/corpus_{gguf,safetensors,
config,tokenizer}): small valid inputs of each format, built here from the formats' specs so
the fuzzer starts inside every parser rather than at its first length check. The first byte of
a seed picks the target's mode where it has two (see each fuzz_*.cc). Deterministic output.
usage: make_file_corpora.py OUT_DIR (the tests/fuzz directory)"""
import base64, json, os, struct, sys

out = sys.argv[1]


def put(corpus, name, data):
    d = os.path.join(out, corpus)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# --- GGUF v3 (ggml/docs/gguf.md): header, typed metadata, tensor infos, aligned data ---------
def gstr(s):
    b = s.encode()
    return struct.pack("<Q", len(b)) + b


U8, I8, U16, I16, U32, I32, F32, BOOL, STR, ARR, U64, I64, F64 = range(13)


def gval(t, v):
    fmt = {U8: "<B", I8: "<b", U16: "<H", I16: "<h", U32: "<I", I32: "<i", F32: "<f",
           BOOL: "<?", U64: "<Q", I64: "<q", F64: "<d"}
    return gstr(v) if t == STR else struct.pack(fmt[t], v)


def gguf(kvs, tensors, alignment=32):
    b = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(kvs))
    for k, t, v in kvs:
        b += gstr(k) + struct.pack("<I", t)
        if t == ARR:
            et, items = v
            b += struct.pack("<IQ", et, len(items)) + b"".join(gval(et, x) for x in items)
        else:
            b += gval(t, v)
    data, offs = b"", []
    for name, ne, gtype, payload in tensors:
        data += b"\0" * (-len(data) % alignment)
        offs.append(len(data))
        data += payload
    for (name, ne, gtype, payload), off in zip(tensors, offs):
        b += gstr(name) + struct.pack("<I", len(ne)) + b"".join(struct.pack("<Q", n) for n in ne)
        b += struct.pack("<IQ", gtype, off)
    b += b"\0" * (-len(b) % alignment)
    return b + data


f32 = lambda xs: struct.pack(f"<{len(xs)}f", *xs)
q8_0_block = struct.pack("<e", 0.5) + bytes(range(32))  # ggml block_q8_0: f16 scale, 32 int8
kvs = [("general.architecture", STR, "llama4"), ("general.alignment", U32, 32),
       ("llama4.block_count", U32, 2), ("llama4.embedding_length", U32, 8),
       ("llama4.rope.freq_base", F32, 500000.0), ("llama4.expert_count", U32, 4),
       ("tokenizer.ggml.model", STR, "gpt2"), ("tokenizer.ggml.pre", STR, "llama4"),
       ("tokenizer.ggml.tokens", ARR, (STR, ["a", "b", "ab", "<|begin_of_text|>"])),
       ("tokenizer.ggml.token_type", ARR, (I32, [1, 1, 1, 3])),
       ("tokenizer.ggml.merges", ARR, (STR, ["a b"])),
       ("tokenizer.ggml.bos_token_id", U32, 3), ("general.flag", BOOL, True),
       ("general.values", ARR, (F64, [1.5, -2.0])), ("general.i64", I64, -7),
       ("tokenizer.chat_template", STR, "{{ bos_token }}{% for m in messages %}{{ m.content }}{% endfor %}")]
tensors = [("token_embd.weight", [8, 4], 0, f32([0.25 * i for i in range(32)])),
           ("output_norm.weight", [8], 0, f32([1.0] * 8)),
           ("blk.0.attn_q.weight", [32, 1], 8, q8_0_block),
           ("blk.0.attn_k.weight", [8, 2], 30, struct.pack("<16H", *range(16)))]  # BF16
put("corpus_gguf", "llama4_small", gguf(kvs, tensors))
put("corpus_gguf", "metadata_only", gguf(kvs[:3], []))
put("corpus_gguf", "alignment_64", gguf([("general.alignment", U32, 64)], tensors[:2], 64))


# --- safetensors: u64 header length, JSON header, data; mode byte 0 ------------------------
def safetensors(entries, metadata=None):
    header, data = {}, b""
    for name, dtype, shape, payload in entries:
        header[name] = {"dtype": dtype, "shape": shape,
                        "data_offsets": [len(data), len(data) + len(payload)]}
        data += payload
    if metadata:
        header["__metadata__"] = metadata
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + data


st = safetensors([("model.embed_tokens.weight", "BF16", [4, 2], struct.pack("<8H", *range(8))),
                  ("model.norm.weight", "F32", [2], f32([1.0, 2.0])),
                  ("experts.weight_scale", "F8_E4M3", [3], bytes([0x38, 0x40, 0xb8])),
                  ("empty", "F32", [0, 3], b"")], {"format": "pt"})
put("corpus_safetensors", "shard", b"\0" + st)
put("corpus_safetensors", "scalar", b"\0" + safetensors([("s", "I64", [], struct.pack("<q", 5))]))
index = {"metadata": {"total_size": 48},
         "weight_map": {"model.embed_tokens.weight": "model-00001-of-00002.safetensors",
                        "model.norm.weight": "model-00002-of-00002.safetensors",
                        "lm_head.weight": "model-00002-of-00002.safetensors"}}
put("corpus_safetensors", "index", b"\1" + json.dumps(index, indent=2).encode())

# --- config.json / generation_config.json: mode byte 0 / 1 ----------------------------------
text = {"hidden_size": 64, "intermediate_size": 128, "intermediate_size_mlp": 256,
        "num_hidden_layers": 4, "num_attention_heads": 4, "num_key_value_heads": 2,
        "head_dim": 16, "vocab_size": 300, "num_local_experts": 4, "num_experts_per_tok": 1,
        "interleave_moe_layer_step": 2, "rope_theta": 500000.0, "rms_norm_eps": 1e-5,
        "max_position_embeddings": 4096, "attention_chunk_size": 64, "use_qk_norm": True,
        "no_rope_layers": [1, 1, 1, 0], "attn_temperature_tuning": True, "floor_scale": 32,
        "attn_scale": 0.1, "rope_scaling": {"rope_type": "llama3", "factor": 8.0,
        "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 8192},
        "bos_token_id": 1, "eos_token_id": [2, 3], "pad_token_id": 0, "torch_dtype": "bfloat16",
        "model_type": "llama4_text", "hidden_act": "silu", "tie_word_embeddings": False}
put("corpus_config", "text_flat", b"\0" + json.dumps(text, indent=1).encode())
vision = {"hidden_size": 32, "intermediate_size": 128, "num_hidden_layers": 2,
          "num_attention_heads": 2, "image_size": 336, "patch_size": 14,
          "pixel_shuffle_ratio": 0.5, "projector_input_dim": 64, "projector_output_dim": 64,
          "vision_output_dim": 64, "rope_theta": 10000, "norm_eps": 1e-5,
          "model_type": "llama4_vision_model", "num_channels": 3}
nested = {"architectures": ["Llama4ForConditionalGeneration"], "model_type": "llama4",
          "text_config": text, "vision_config": vision, "image_token_index": 299,
          "boi_token_index": 297, "eoi_token_index": 298}
put("corpus_config", "multimodal", b"\0" + json.dumps(nested).encode())
gen = {"bos_token_id": 1, "eos_token_id": [2, 3], "pad_token_id": 0, "temperature": 0.6,
       "top_p": 0.9, "top_k": 40, "do_sample": True}
put("corpus_config", "generation", b"\1" + json.dumps(gen).encode())

# --- tokenizers: tiktoken ranks (mode 0), tokenizer.json (mode 1) ----------------------------
ranks = [bytes([i]) for i in range(256)] + [b"th", b"the", b" the", b"in", b"ing", b"er"]
tik = b"".join(base64.b64encode(t) + b" %d\n" % r for r, t in enumerate(ranks))
put("corpus_tokenizer", "tiktoken", b"\0" + tik)
byte_chars = {}  # GPT-2's bytes_to_unicode
bs = list(range(ord("!"), ord("~") + 1)) + list(range(0xa1, 0xad)) + list(range(0xae, 0x100))
cs, n = bs[:], 0
for b in range(256):
    if b not in bs:
        bs.append(b); cs.append(256 + n); n += 1
byte_chars = {b: chr(c) for b, c in zip(bs, cs)}
vocab = {"".join(byte_chars[x] for x in t): r for r, t in enumerate(ranks)}
merges = ["t h", "th e", "Ġ the", "i n", "in g", "e r"]
hf = {"version": "1.0", "added_tokens": [
          {"id": 262, "content": "<|begin_of_text|>", "special": True},
          {"id": 263, "content": "<|end_of_text|>", "special": True},
          {"id": 264, "content": "<|eot|>", "special": True},
          {"id": 265, "content": "<|eom|>", "special": True}],
      "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
          {"type": "Split", "pattern": {"Regex": "\\s+|\\w+|[^\\s\\w]+"}, "behavior": "Isolated",
           "invert": False},
          {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True,
           "use_regex": False}]},
      "model": {"type": "BPE", "vocab": vocab, "merges": merges, "ignore_merges": False}}
put("corpus_tokenizer", "tokenizer_json", b"\1" + json.dumps(hf).encode())
