#!/usr/bin/env python3
"""Records the prompts llama.cpp renders from each model's chat template, for hearth's parity test.

For each model, starts `llama-server --jinja` on a loopback port and posts a fixed set of
conversations (system prompts, multi-turn, tools, tool calls and results, Unicode) to its
`POST /apply-template` endpoint, which renders a chat request into the prompt text without running
the model. Writes tests/fixtures/templates/<id>.json with each case and the prompt llama.cpp
rendered. A model whose GGUF has no template (Gemma 3 270M) gets the fallback from its manifest in
models/, passed with --chat-template-file, as hearth does.

Tests only read the JSON this writes; running this script needs llama.cpp (see
../shared/tools/reference-llama-cpp.sh) and the models.

usage: scripts/record-templates.py [MODEL_ID[=PATH.gguf] ...]
  (default: every model in models/, from ~/.cache/hearth/models/<id>/<file>)
"""

import json
import os
import subprocess
import sys
import tempfile
import time
import tomllib
import urllib.error
import urllib.request

BIN = os.path.expanduser(os.environ.get("HEARTH_REF_BIN", "~/.cache/hearth-ref/llama.cpp/bin"))
CACHE = os.path.expanduser(os.environ.get("HEARTH_HOME", "~/.cache/hearth"))
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "fixtures", "templates")
PORT = 18182

TOOLS = [
    {"type": "function", "function": {
        "name": "read_file",
        "description": "Read a file from the workspace and return its contents.",
        "parameters": {"type": "object", "properties": {
            "path": {"type": "string", "description": "Path relative to the workspace root"},
            "start_line": {"type": "integer", "description": "First line to return (1-based)", "minimum": 1},
        }, "required": ["path"]},
    }},
    {"type": "function", "function": {
        "name": "run_command",
        "description": "Run a shell command; output over 10 KB is cut. Use \"quotes\" & <care>.",
        "parameters": {"type": "object", "properties": {
            "argv": {"type": "array", "items": {"type": "string"}},
            "timeout_s": {"type": "number"},
            "mode": {"type": "string", "enum": ["read-only", "write"]},
            "env": {"type": "object", "additionalProperties": {"type": "string"}},
        }, "required": ["argv"]},
    }},
]

UNICODE_TOOL = {"type": "function", "function": {
    "name": "übersetzen",
    "description": "Übersetzt Text ins Japanische — 翻訳 🌐",
    "parameters": {"type": "object", "properties": {"text": {"type": "string", "description": "Quelltext"}}},
}}

SYSTEM = "You are hearth, a coding assistant. Answer briefly."

CASES = [
    {"name": "system_and_user", "add_generation_prompt": True, "messages": [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": "Write a function that reverses a string in Rust."},
    ]},
    {"name": "user_only", "add_generation_prompt": True, "messages": [
        {"role": "user", "content": "What does `git rebase -i HEAD~3` do?"},
    ]},
    {"name": "multi_turn", "add_generation_prompt": True, "messages": [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": "Name a sorting algorithm."},
        {"role": "assistant", "content": "Merge sort."},
        {"role": "user", "content": "And its worst-case complexity?"},
        {"role": "assistant", "content": "O(n log n)."},
        {"role": "user", "content": "Thanks!"},
    ]},
    {"name": "no_generation_prompt", "add_generation_prompt": False, "messages": [
        {"role": "user", "content": "Say hi."},
        {"role": "assistant", "content": "Hi!"},
        {"role": "user", "content": "Again."},
    ]},
    {"name": "ends_with_assistant", "add_generation_prompt": False, "messages": [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": "2 + 2?"},
        {"role": "assistant", "content": "4"},
    ]},
    {"name": "whitespace_and_code", "add_generation_prompt": True, "messages": [
        {"role": "system", "content": "  Indented system prompt.\n\n"},
        {"role": "user", "content": "\n\nFix this:\n```python\ndef f(x):\n\treturn x  # tab\n```\n   "},
        {"role": "assistant", "content": "   Use four spaces:\n```python\ndef f(x):\n    return x\n```\n"},
        {"role": "user", "content": ""},
    ]},
    {"name": "unicode", "add_generation_prompt": True, "messages": [
        {"role": "system", "content": "Réponds en français. 日本語も可。"},
        {"role": "user", "content": "Ça va ? 🦀 Привет, мир! \u00a0non-breaking, \u200bzero-width, עברית"},
    ]},
    {"name": "tools_with_system", "add_generation_prompt": True, "tools": TOOLS, "messages": [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": "Show me src/main.rs."},
    ]},
    {"name": "tools_without_system", "add_generation_prompt": True, "tools": TOOLS, "messages": [
        {"role": "user", "content": "List the files in src."},
    ]},
    {"name": "tool_call_and_result", "add_generation_prompt": True, "tools": TOOLS, "messages": [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": "Show me the first lines of src/main.rs."},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_1", "type": "function",
             "function": {"name": "read_file", "arguments": "{\"path\": \"src/main.rs\", \"start_line\": 1}"}},
        ]},
        {"role": "tool", "tool_call_id": "call_1", "name": "read_file", "content": "fn main() {\n    println!(\"hi\");\n}\n"},
    ]},
    {"name": "parallel_tool_calls", "add_generation_prompt": True, "tools": TOOLS, "messages": [
        {"role": "user", "content": "Run the tests and show Cargo.toml."},
        {"role": "assistant", "content": "Doing both.", "tool_calls": [
            {"id": "call_a", "type": "function", "function": {"name": "run_command", "arguments": {
                "argv": ["cargo", "test", "--", "--nocapture"], "timeout_s": 120.5, "mode": "read-only",
                "env": {"RUST_LOG": "debug", "QUOTE": "a \"b\" \\ c <d> & 'e'\n"}}}},
            {"id": "call_b", "type": "function", "function": {"name": "read_file", "arguments": {"path": "Cargo.toml"}}},
        ]},
        {"role": "tool", "tool_call_id": "call_a", "content": "test result: ok. 3 passed"},
        {"role": "tool", "tool_call_id": "call_b", "content": "[package]\nname = \"demo\""},
        {"role": "assistant", "content": "All 3 tests pass; the package is named demo."},
        {"role": "user", "content": "Great."},
    ]},
    {"name": "unicode_tool_call", "add_generation_prompt": True, "tools": [UNICODE_TOOL], "messages": [
        {"role": "user", "content": "Übersetze „Grüße“."},
        {"role": "assistant", "content": "", "tool_calls": [
            {"id": "c9", "type": "function", "function": {"name": "übersetzen", "arguments": {"text": "Grüße 👋 — 你好"}}},
        ]},
        {"role": "tool", "tool_call_id": "c9", "name": "übersetzen", "content": "挨拶 👋"},
    ]},
    {"name": "tool_result_without_tools", "add_generation_prompt": True, "messages": [
        {"role": "user", "content": "What is in notes.txt?"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"type": "function", "function": {"name": "read_file", "arguments": "{\"path\":\"notes.txt\"}"}},
        ]},
        {"role": "tool", "content": "buy milk"},
    ]},
]


def post(path, body):
    req = urllib.request.Request(
        f"http://127.0.0.1:{PORT}{path}", data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=120) as r:
        return json.loads(r.read())


def wait_healthy(server):
    for _ in range(600):
        if server.poll() is not None:
            sys.exit(f"llama-server exited with {server.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{PORT}/health", timeout=2) as r:
                if r.status == 200:
                    return
        except Exception:
            time.sleep(0.5)
    sys.exit("llama-server did not become healthy")


def record(manifest, path):
    args = [f"{BIN}/llama-server", "-m", path, "--host", "127.0.0.1", "--port", str(PORT), "-t", "2", "-c", "2048",
            "--no-warmup", "-np", "1", "--jinja", "--no-prefill-assistant",
            # The reference build runs AMX kernels on repacked weights, which this kernel refuses
            # (SIGILL); rendering templates needs no compute anyway.
            "--no-repack"]
    fallback = manifest.get("chat_template")
    with tempfile.NamedTemporaryFile("w", suffix=".jinja") as template_file:
        if fallback is not None:
            template_file.write(fallback)
            template_file.flush()
            args += ["--chat-template-file", template_file.name]
        server = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_healthy(server)
            cases = []
            for case in CASES:
                body = {"messages": case["messages"], "add_generation_prompt": case["add_generation_prompt"]}
                if "tools" in case:
                    body["tools"] = case["tools"]
                try:
                    prompt = post("/apply-template", body)["prompt"]
                except urllib.error.HTTPError as e:
                    sys.exit(f"{manifest['id']}: case {case['name']} failed: {e.read().decode()}")
                cases.append({**case, "prompt": prompt})
                print(f"{manifest['id']}: {case['name']}: {len(prompt)} chars", file=sys.stderr)
            return {"model": manifest["id"], "template": "manifest" if fallback is not None else "gguf",
                    "cases": cases}
        finally:
            server.terminate()
            server.wait()


def main():
    manifests = {}
    for name in sorted(os.listdir(os.path.join(ROOT, "models"))):
        with open(os.path.join(ROOT, "models", name), "rb") as f:
            manifest = tomllib.load(f)
        manifests[manifest["id"]] = manifest
    targets = sys.argv[1:] or list(manifests)
    os.makedirs(OUT, exist_ok=True)
    for target in targets:
        model_id, _, path = target.partition("=")
        manifest = manifests[model_id]
        path = path or os.path.join(CACHE, "models", model_id, manifest["file"])
        fixture = record(manifest, path)
        with open(os.path.join(OUT, f"{model_id}.json"), "w") as f:
            json.dump(fixture, f, indent=1, ensure_ascii=False)
            f.write("\n")


if __name__ == "__main__":
    main()
