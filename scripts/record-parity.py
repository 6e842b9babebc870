#!/usr/bin/env python3
"""Records llama.cpp reference outputs that hearth's parity tests compare against.

For each model: greedy continuations (token ids and the top-2 log-probabilities at each step, so a
divergence can be shown to be a near-tie) from llama-server, and the perplexity of
tests/fixtures/perplexity.txt from llama-perplexity. Tests only read the JSON this writes; running
this script needs llama.cpp (see ../shared/tools/reference-llama-cpp.sh) and the models.

usage: scripts/record-parity.py MODEL_ID=PATH.gguf [MODEL_ID=PATH.gguf ...]
"""

import json
import os
import re
import subprocess
import sys
import time
import urllib.request

from gguf import GGUFReader  # pip install gguf

BIN = os.path.expanduser(os.environ.get("HEARTH_REF_BIN", "~/.cache/hearth-ref/llama.cpp/bin"))
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "fixtures", "parity")
PORT = 18181
N_PREDICT = 64
PPL_CTX = 512
THREADS = 2

# Raw prompts (no chat template) and chat-formatted ones with the model's special tokens.
PROMPTS = {
    "chatml": [
        "def fibonacci(n):\n",
        "The three most important things to know about the Rust borrow checker are",
        "<|im_start|>system\nYou are a helpful coding assistant.<|im_end|>\n<|im_start|>user\nWrite a Python function that reverses a string.<|im_end|>\n<|im_start|>assistant\n",
        "<|im_start|>user\nWhat does `git rebase -i HEAD~3` do?<|im_end|>\n<|im_start|>assistant\n",
        "// A binary search over a sorted slice in Rust\nfn binary_search(xs: &[i32], target: i32) -> Option<usize> {\n",
    ],
    "gemma": [
        "def fibonacci(n):\n",
        "The three most important things to know about the Rust borrow checker are",
        "<start_of_turn>user\nWrite a Python function that reverses a string.<end_of_turn>\n<start_of_turn>model\n",
        "Once upon a time, in a small village by the sea,",
        "// A binary search over a sorted slice in Rust\nfn binary_search(xs: &[i32], target: i32) -> Option<usize> {\n",
    ],
}


def post(path, body):
    req = urllib.request.Request(
        f"http://127.0.0.1:{PORT}{path}", data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=600) as r:
        return json.loads(r.read())


def record_greedy(model_id, path):
    style = "gemma" if "gemma" in model_id else "chatml"
    server = subprocess.Popen(
        [f"{BIN}/llama-server", "-m", path, "--host", "127.0.0.1", "--port", str(PORT), "-t", str(THREADS),
         "-c", "2048", "--no-warmup", "-np", "1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(600):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{PORT}/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except Exception:
                time.sleep(0.5)
        cases = []
        for prompt in PROMPTS[style]:
            ids = post("/tokenize", {"content": prompt, "add_special": True, "parse_special": True})["tokens"]
            r = post("/completion", {
                "prompt": ids, "n_predict": N_PREDICT, "temperature": -1.0, "return_tokens": True,
                "n_probs": 2, "cache_prompt": False, "ignore_eos": True,
            })
            top2 = [[[p["id"], p["logprob"]] for p in step["top_logprobs"]] for step in r["completion_probabilities"]]
            cases.append({"prompt": prompt, "prompt_ids": ids, "tokens": r["tokens"], "top2": top2})
            print(f"{model_id}: {len(r['tokens'])} tokens for {prompt[:40]!r}", file=sys.stderr)
        with open(os.path.join(ROOT, "tests", "fixtures", "perplexity.txt")) as f:
            text_ids = post("/tokenize", {"content": f.read(), "add_special": True, "parse_special": False})["tokens"]
        return cases, text_ids
    finally:
        server.terminate()
        server.wait()


def record_perplexity(path):
    text = os.path.join(ROOT, "tests", "fixtures", "perplexity.txt")
    out = subprocess.run(
        [f"{BIN}/llama-perplexity", "-m", path, "-f", text, "-c", str(PPL_CTX), "-b", str(PPL_CTX), "-t", str(THREADS)],
        capture_output=True, text=True, check=True,
    )
    m = re.search(r"Final estimate: PPL = ([0-9.]+)", out.stdout + out.stderr)
    if not m:
        sys.exit("llama-perplexity printed no final estimate")
    return float(m.group(1))


def main():
    os.makedirs(OUT, exist_ok=True)
    for arg in sys.argv[1:]:
        model_id, path = arg.split("=", 1)
        greedy, text_ids = record_greedy(model_id, path)
        ppl = record_perplexity(path)
        bos = GGUFReader(path).fields.get("tokenizer.ggml.bos_token_id")
        add_bos = GGUFReader(path).fields.get("tokenizer.ggml.add_bos_token")
        bos_id = int(bos.contents()) if bos is not None and add_bos is not None and add_bos.contents() else None
        fixture = {"model": model_id, "n_predict": N_PREDICT, "greedy": greedy,
                   "perplexity": {"n_ctx": PPL_CTX, "ppl": ppl, "bos": bos_id, "tokens": text_ids}}
        with open(os.path.join(OUT, f"{model_id}.json"), "w") as f:
            json.dump(fixture, f, indent=1)
        print(f"{model_id}: perplexity {ppl}", file=sys.stderr)


if __name__ == "__main__":
    main()
