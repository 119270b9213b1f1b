#!/usr/bin/env python3
"""Chat template conformance (CTest tokenizer_chat_template).

Renders every case in chat_cases.json, plus the worked examples of prompt_format.md, with
Jinja2 the way transformers does (ImmutableSandboxedEnvironment, trim_blocks, lstrip_blocks,
tojson = json.dumps(ensure_ascii=False), raise_exception) and with herd's renderer (through
tokenizer_tool render-chat). The texts must be identical byte for byte; herd's ids must equal
the rendered text encoded with specials allowed (except where content spells a special token,
which herd keeps as plain text on purpose); prompt_format.md's prompts must be reproduced.

usage: chat_template_test.py TOKENIZER_TOOL LLAMA4_DIR
"""
import json
import re
import subprocess
import sys
from pathlib import Path

from jinja_render import render_jinja  # noqa: E402

HERE = Path(__file__).resolve().parent
tool, llama4 = sys.argv[1], Path(sys.argv[2])


def prompt_format_examples():
    """(name, messages, expected prompt) for each text or image prompt in prompt_format.md."""
    md = (llama4 / "prompt_format.md").read_text()
    blocks = re.findall(r"##### Input Prompt Format\n```\n(.*?)\n```", md, re.S)
    out = []
    for i, block in enumerate(blocks):
        # Meta's prompts expand images; the template emits the <|image|> placeholder the
        # vision code expands later, so compare with each image collapsed to it.
        prompt = re.sub(r"<\|image_start\|>.*?<\|image_end\|>", "<|image|>", block, flags=re.S)
        gen = "<|header_start|>assistant<|header_end|>\n\n"
        if not prompt.endswith(gen):
            continue  # tool-calling examples end elsewhere; their system texts are covered below
        body = prompt[len("<|begin_of_text|>"):-len(gen)]
        messages = []
        for role, content in re.findall(
                r"<\|header_start\|>(\w+)<\|header_end\|>\n\n(.*?)(?:<\|eot\|>|<\|eom\|>)", body, re.S):
            parts = re.split(r"(<\|image\|>)", content)
            if len(parts) == 1:
                messages.append({"role": role, "content": content})
            else:
                items = [{"type": "image"} if p == "<|image|>" else {"type": "text", "text": p}
                         for p in parts if p]
                messages.append({"role": role, "content": items})
        out.append((f"prompt_format_{i}", messages, prompt))
    return out


cases = json.loads((HERE / "chat_cases.json").read_text())
examples = prompt_format_examples()
for name, messages, _ in examples:
    cases.append({"name": name, "messages": messages})
if len(examples) < 3:
    print(f"FAIL: found only {len(examples)} worked examples in prompt_format.md")
    sys.exit(1)

proc = subprocess.run([tool, "render-chat", str(llama4)], input=json.dumps(cases),
                      capture_output=True, text=True)
if proc.returncode != 0:
    print(proc.stderr)
    sys.exit(1)
results = [json.loads(line) for line in proc.stdout.splitlines()]
expected_prompt = {name: prompt for name, _, prompt in examples}
failures = 0
for case, res in zip(cases, results):
    name = case["name"]
    want = render_jinja(case, llama4)
    if "error" in res:
        print(f"{name}: herd failed: {res['error']}")
        failures += 1
        continue
    if res["text"] != want:
        k = next((i for i, (a, b) in enumerate(zip(res["text"], want)) if a != b),
                 min(len(want), len(res["text"])))
        print(f"{name}: text differs at {k}:\n  jinja: {want[k-20:k+60]!r}\n  herd:  {res['text'][k-20:k+60]!r}")
        failures += 1
    if name in expected_prompt and want != expected_prompt[name]:
        print(f"{name}: Jinja does not reproduce prompt_format.md")
        failures += 1
    plain_special = "<|eot|>" in json.dumps(case["messages"])
    if not plain_special and res["ids"] != res["ids_of_text"]:
        print(f"{name}: ids differ from the rendered text's encoding")
        failures += 1
    if plain_special and res["ids"] == res["ids_of_text"]:
        print(f"{name}: a special-token string in content was tokenized as a special")
        failures += 1
    n_images = json.dumps(case["messages"]).count('"type": "image"')
    if len(res["image_positions"]) != n_images:
        print(f"{name}: {len(res['image_positions'])} image positions, expected {n_images}")
        failures += 1
print(f"chat template: {len(cases) - failures} passed, {failures} failed")
sys.exit(1 if failures else 0)
