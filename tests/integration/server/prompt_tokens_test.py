#!/usr/bin/env python3
"""CTest server_prompt_tokens: usage.prompt_tokens of /v1/chat/completions equals the token count
of the official chat template (Jinja2, rendered as transformers does) for the same messages:
system, multi-turn, tools with a tool result, content parts. The model is a tiny synthetic one
with the real Llama 4 tokenizer; the rendered text is counted with `herd tokenize --special`.

usage: prompt_tokens_test.py HERD LLAMA4_DIR WORK_DIR
"""
import json
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tokenizer"))
from jinja_render import render_jinja  # noqa: E402  (the same Jinja2 setup as transformers)

herd, llama4, work = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])

WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Current weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                   "required": ["city"]}}}
CASES = [
    {"messages": [{"role": "user", "content": "Hello there!"}]},
    {"messages": [{"role": "system", "content": "You are terse."},
                  {"role": "user", "content": "What is 2+2?"}]},
    {"messages": [{"role": "system", "content": "Be kind."},
                  {"role": "user", "content": "Hi"},
                  {"role": "assistant", "content": "Hello! How can I help?"},
                  {"role": "user", "content": "Tell me a joke about cats, please."}]},
    {"messages": [{"role": "user", "content": [{"type": "text", "text": "Two "},
                                               {"type": "text", "text": "parts, café ☕"}]}]},
    {"messages": [{"role": "user", "content": "Weather in Paris?"}], "tools": [WEATHER]},
    # A tool call and its result. Clients send arguments as JSON text; the server (like vLLM)
    # parses them before rendering, so the template gets the object.
    {"messages": [{"role": "user", "content": "Weather in Paris?"},
                  {"role": "assistant", "content": "", "tool_calls": [
                      {"id": "call_1", "type": "function",
                       "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}]},
                  {"role": "tool", "tool_call_id": "call_1", "content": "18 C and sunny"}],
     "tools": [WEATHER]},
]


def for_template(messages):
    out = json.loads(json.dumps(messages))
    for m in out:
        for call in m.get("tool_calls", []):
            call["function"]["arguments"] = json.loads(call["function"]["arguments"])
    return out


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def post(port, body):
    req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/chat/completions",
                                 data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.loads(r.read())


def count_tokens(model, text):
    out = subprocess.run([herd, "tokenize", "-m", str(model), "--special"], input=text.encode(),
                         capture_output=True, check=True).stdout.decode()
    return len([t for t in out.replace(",", " ").split() if t.strip()])


def main():
    work.mkdir(parents=True, exist_ok=True)
    model = work / "tiny-llama4-tokenizer"
    if not (model / "config.json").exists():
        subprocess.run([herd, "synth", "--preset", "tiny", "--tokenizer", str(llama4), "-o",
                        str(model)], check=True, capture_output=True)
    port = free_port()
    server = subprocess.Popen([herd, "serve", "-m", str(model), "--port", str(port), "-t", "2"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    failures = 0
    try:
        for _ in range(600):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        for i, case in enumerate(CASES):
            body = {"messages": case["messages"], "max_tokens": 1}
            if "tools" in case:
                body["tools"] = case["tools"]
            got = post(port, body)["usage"]["prompt_tokens"]
            text = render_jinja(dict(case, messages=for_template(case["messages"]),
                                     add_generation_prompt=True), llama4)
            want = count_tokens(model, text)
            status = "ok  " if got == want else "FAIL"
            failures += got != want
            print(f"{status} case {i}: usage.prompt_tokens {got}, template tokens {want}")
    finally:
        server.terminate()
        server.wait(timeout=60)
    print(f"{len(CASES) - failures} passed, {failures} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
