#!/usr/bin/python3
"""CTest server_images (issue 13): `herd serve` on a synthetic model with a vision tower. A chat
request with two images as image_url data URLs (640x480 -> 2x2 tiles + global, 727 tokens;
300x800 -> 1x3 + global, 582 tokens: spec §5.1 examples) streams a reply, and its
usage.prompt_tokens is the text-only count + 727 + 582 (each image item's <|image|> placeholder
in the template becomes the image's layout). A truncated PNG is a 400 while the first request is still
streaming, and a model without vision tensors answers images with a 400.

usage: images_test.py HERD WORK_DIR
"""
import base64
import io
import json
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

from PIL import Image

herd, work = sys.argv[1], Path(sys.argv[2])


def png(w, h, k):
    im = Image.new("RGB", (w, h))
    im.putdata([((x * k) & 255, (y * 3) & 255, (x ^ y) & 255) for y in range(h) for x in range(w)])
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return buf.getvalue()


def data_url(b):
    return "data:image/png;base64," + base64.b64encode(b).decode()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(model):
    # The free port can be taken by another test's server before ours binds it (CTest runs
    # server tests in parallel): then ours exits, and we try another port rather than talk to
    # the other server.
    for _ in range(5):
        port = free_port()
        log = open(work / f"serve-{port}.log", "w+b")  # a file: a pipe could fill and block it
        p = subprocess.Popen([herd, "serve", "-m", str(model), "--port", str(port), "-t", "2"],
                             stdout=subprocess.DEVNULL, stderr=log)
        for _ in range(600):
            if p.poll() is not None:
                log.seek(0)
                print("server exited:", log.read().decode(errors="replace")[-300:])
                break
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1)
                if p.poll() is None:
                    return p, port
            except OSError:
                time.sleep(0.1)
        else:
            p.kill()
            raise SystemExit("FAIL: server did not start")
    raise SystemExit("FAIL: server did not start on 5 ports")


def post(port, body, stream=False):
    req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/chat/completions",
                                 data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    try:
        r = urllib.request.urlopen(req, timeout=300)
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())
    if not stream:
        return r.status, json.loads(r.read())
    events = []
    for line in r:
        line = line.decode().strip()
        if line.startswith("data: ") and line != "data: [DONE]":
            events.append(json.loads(line[6:]))
    return r.status, events


def content(parts):
    return [{"role": "user", "content": parts}]


def main():
    work.mkdir(parents=True, exist_ok=True)
    model, text_model = work / "tiny-vision", work / "tiny-text"
    if not (model / "config.json").exists():
        subprocess.run([herd, "synth", "--vision", "-o", str(model)], check=True,
                       capture_output=True)
    if not (text_model / "config.json").exists():
        subprocess.run([herd, "synth", "--text-only", "-o", str(text_model)], check=True,
                       capture_output=True)
    a, b = png(640, 480, 3), png(300, 800, 5)
    text = {"type": "text", "text": "Compare these two pictures."}
    server, port = start(model)
    try:
        status, plain = post(port, {"messages": content([text]), "max_tokens": 1})
        assert status == 200, plain
        base = plain["usage"]["prompt_tokens"]
        body = {"messages": content([{"type": "image_url", "image_url": {"url": data_url(a)}},
                                     {"type": "image_url", "image_url": {"url": data_url(b)}},
                                     text]),
                "max_tokens": 8, "stream": True, "stream_options": {"include_usage": True}}
        result = {}
        t = threading.Thread(target=lambda: result.update(r=post(port, body, stream=True)))
        t.start()
        # While it runs: a truncated PNG is a 400 naming the part.
        bad = {"messages": content([{"type": "image_url",
                                     "image_url": {"url": data_url(a[: len(a) // 2])}}, text]),
               "max_tokens": 1}
        status, err = post(port, bad)
        assert status == 400, (status, err)
        print("ok: truncated PNG ->", status, err["error"]["message"][:100])
        t.join()
        status, events = result["r"]
        assert status == 200, events
        pieces = [c["delta"].get("content", "") for e in events for c in e.get("choices", [])]
        usage = [e["usage"] for e in events if e.get("usage")]
        assert len(pieces) >= 1 and usage, events[:3]
        # Each image item renders one <|image|>, which its layout (727, 582 tokens) replaces.
        want = base + 727 + 582
        assert usage[-1]["prompt_tokens"] == want, (usage[-1], want)
        # 8 tokens unless the sampled text hit a stop token first (random weights, random seed).
        finish = [c.get("finish_reason") for e in events for c in e.get("choices", [])
                  if c.get("finish_reason")]
        done = usage[-1]["completion_tokens"]
        assert done == 8 or (finish == ["stop"] and 1 <= done < 8), (usage[-1], finish)
        print(f"ok: two images streamed {len(pieces)} chunks, prompt_tokens "
              f"{usage[-1]['prompt_tokens']} = {base} + 727 + 582")
    finally:
        server.terminate()
        server.wait(timeout=60)
    server, port = start(text_model)
    try:
        status, err = post(port, {"messages": content([{"type": "image_url", "image_url": {
            "url": data_url(a)}}, text]), "max_tokens": 1})
        assert status == 400 and "vision encoder" in err["error"]["message"], (status, err)
        print("ok: text model ->", status, err["error"]["message"][:100])
    finally:
        server.terminate()
        server.wait(timeout=60)
    return 0


if __name__ == "__main__":
    sys.exit(main())
