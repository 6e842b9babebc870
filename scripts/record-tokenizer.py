#!/usr/bin/env python3
"""Records llama.cpp's token ids for the tokenizer corpus, as test fixtures.

Usage: scripts/record-tokenizer.py MODEL_ID=PATH.gguf [...]

Starts llama.cpp's llama-server on each GGUF (vocabulary only matters, so a tiny context) and
asks its /tokenize endpoint for every string of tests/fixtures/tokenizer/corpus.json in two
modes: add_special+parse_special (a prompt) and neither (plain text, e.g. a tool result).
Writes tests/fixtures/tokenizer/MODEL_ID.json.
"""
import json
import os
import pathlib
import subprocess
import sys
import time
import urllib.request

ROOT = pathlib.Path(__file__).resolve().parent.parent
BIN = pathlib.Path(os.environ.get("LLAMA_CPP_BIN", pathlib.Path.home() / ".cache/hearth-ref/llama.cpp/bin"))
PORT = int(os.environ.get("PORT", "18291"))


def post(path, body):
    req = urllib.request.Request(f"http://127.0.0.1:{PORT}{path}", data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.loads(r.read())


def wait_ready(proc):
    for _ in range(600):
        if proc.poll() is not None:
            raise SystemExit("llama-server exited early")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{PORT}/health", timeout=2) as r:
                if r.status == 200:
                    return
        except Exception:
            pass
        time.sleep(0.2)
    raise SystemExit("llama-server did not become ready")


def main():
    corpus = json.loads((ROOT / "tests/fixtures/tokenizer/corpus.json").read_text())
    for arg in sys.argv[1:]:
        model_id, path = arg.split("=", 1)
        proc = subprocess.Popen([str(BIN / "llama-server"), "-m", path, "--port", str(PORT), "-c", "256",
                                 "-t", "1", "--no-warmup",
                                 # Repacked weights may use AMX tiles, which some kernels do not enable.
                                 "--no-repack"], stdout=subprocess.DEVNULL, stderr=open("/tmp/llama-server-tok.log", "w"))
        try:
            wait_ready(proc)
            cases = []
            for text in corpus:
                prompt = post("/tokenize", {"content": text, "add_special": True, "parse_special": True})["tokens"]
                plain = post("/tokenize", {"content": text, "add_special": False, "parse_special": False})["tokens"]
                cases.append({"text": text, "prompt": prompt, "plain": plain})
        finally:
            proc.terminate()
            proc.wait()
        out = ROOT / f"tests/fixtures/tokenizer/{model_id}.json"
        out.write_text(json.dumps({"model": pathlib.Path(path).name, "cases": cases}, ensure_ascii=False) + "\n")
        print(f"{model_id}: {len(cases)} strings -> {out}")


if __name__ == "__main__":
    main()
