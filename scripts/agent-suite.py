#!/usr/bin/env python3
"""The agent task suite: small coding tasks, each in a fresh fixture repository, run through
`hearth exec --json` and judged by an automatic checker.

Prints, per task, whether the checker passed, the wall time, the model calls, and the prompt
tokens computed versus reused from the KV cache; then the success rate and totals.

Each task runs in the same folder every time (under the system's temporary directory), because
the workspace path is part of the system prompt: a random folder name changes the prompt and so,
near a tie between two tokens, what the model does. The same binary, model, seed and temperature
therefore give the same result. A single greedy run is one sample; `--temp 0.2 --seeds 1,2,3`
gives several, for comparing two versions of the agent.

    scripts/agent-suite.py [--hearth target/release/hearth] [-m qwen2.5-coder-1.5b] [-t 2]
                           [--temp T] [--seeds 1,2,3] [--only NAME,...] [--json results.json]
                           [--transcripts DIR]
"""
import argparse
import fcntl
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time


def run_py(ws, code):
    r = subprocess.run([sys.executable, "-c", code], cwd=ws, capture_output=True, text=True, timeout=30)
    return r.returncode == 0


def read(ws, path):
    try:
        with open(os.path.join(ws, path)) as f:
            return f.read()
    except OSError:
        return ""


TASKS = [
    {
        "name": "fix-failing-test",
        "files": {
            "calc.py": "def add(a, b):\n    return a - b\n",
            "test_calc.py": "from calc import add\n\nassert add(2, 3) == 5\nassert add(-1, 1) == 0\nprint('ok')\n",
        },
        "prompt": "The test in test_calc.py fails. Find the bug in calc.py and fix it so `python3 test_calc.py` passes.",
        "check": lambda ws, text: run_py(ws, "import runpy; runpy.run_path('test_calc.py')"),
    },
    {
        "name": "add-function",
        "files": {"calc.py": "def add(a, b):\n    return a + b\n"},
        "prompt": "Add a function `multiply(a, b)` to calc.py that returns the product of a and b.",
        "check": lambda ws, text: run_py(ws, "from calc import multiply, add\nassert multiply(3, 4) == 12 and add(1, 2) == 3"),
    },
    {
        "name": "rename-across-files",
        "files": {
            "users.py": "def get_user(uid):\n    return {'id': uid}\n",
            "main.py": "from users import get_user\n\nprint(get_user(7)['id'])\n",
        },
        "prompt": "Rename the function get_user to fetch_user everywhere in this project (its definition and every use).",
        "check": lambda ws, text: "get_user" not in read(ws, "users.py") + read(ws, "main.py")
        and "def fetch_user" in read(ws, "users.py")
        and run_py(ws, "import runpy; runpy.run_path('main.py')"),
    },
    {
        "name": "answer-port",
        "files": {
            "server.py": "import http.server\n\nPORT = 8731\n\n\ndef serve():\n    http.server.HTTPServer(('', PORT), http.server.SimpleHTTPRequestHandler).serve_forever()\n",
            "README.md": "# demo\nA tiny web server.\n",
        },
        "prompt": "Which TCP port does this project's server listen on? Answer with the number.",
        "check": lambda ws, text: "8731" in text,
    },
    {
        "name": "run-and-report",
        "files": {"count.py": "print(sum(i * i for i in range(20)))\n"},
        "prompt": "Run `python3 count.py` and tell me the number it prints.",
        "check": lambda ws, text: "2470" in text,
    },
    {
        "name": "create-file",
        "files": {"README.md": "# notes\n"},
        "prompt": "Create a file named hello.txt whose content is exactly: hello world",
        "check": lambda ws, text: read(ws, "hello.txt").strip() == "hello world",
    },
    {
        "name": "fix-syntax-error",
        "files": {"shapes.py": "def area(w, h)\n    return w * h\n"},
        "prompt": "shapes.py has a syntax error. Fix it.",
        "check": lambda ws, text: run_py(ws, "from shapes import area\nassert area(2, 3) == 6"),
    },
    {
        "name": "find-todo",
        "files": {
            "app/__init__.py": "",
            "app/strings.py": "def slug(s):\n    # TODO: handle unicode\n    return s.lower().replace(' ', '-')\n",
            "app/numbers.py": "def double(x):\n    return 2 * x\n",
        },
        "prompt": "Which file contains a TODO comment? Give its path.",
        "check": lambda ws, text: "strings.py" in text,
    },
    {
        "name": "edit-config",
        "files": {"config.json": '{\n  "name": "svc",\n  "timeout": 30,\n  "retries": 3\n}\n'},
        "prompt": "In config.json, change the timeout from 30 to 60. Keep everything else as it is.",
        "check": lambda ws, text: json.loads(read(ws, "config.json") or "null") == {"name": "svc", "timeout": 60, "retries": 3},
    },
    {
        "name": "count-files",
        "files": {
            "src/a.py": "A = 1\n",
            "src/b.py": "B = 2\n",
            "src/c.py": "C = 3\n",
            "src/notes.txt": "not code\n",
        },
        "prompt": "How many Python (.py) files are in the src directory? Answer with the number.",
        "check": lambda ws, text: "3" in text or "three" in text.lower(),
    },
    {
        "name": "add-test",
        "files": {
            "mathx.py": "def subtract(a, b):\n    return a - b\n",
            "test_mathx.py": "from mathx import subtract\n\n\ndef test_zero():\n    assert subtract(1, 1) == 0\n",
        },
        "prompt": "Add a test function named test_subtract to test_mathx.py that checks subtract(5, 3) == 2.",
        "check": lambda ws, text: "def test_subtract" in read(ws, "test_mathx.py")
        and run_py(ws, "import test_mathx\ntest_mathx.test_subtract()\ntest_mathx.test_zero()"),
    },
    {
        "name": "fix-logic-bug",
        "files": {"numbers.py": "def is_even(n):\n    return n % 2 == 1\n"},
        "prompt": "is_even in numbers.py returns the wrong answer. Fix it.",
        "check": lambda ws, text: run_py(ws, "from numbers import is_even\nassert is_even(4) and not is_even(7)"),
    },
]


def run_task(task, args, seed):
    ws = os.path.join(tempfile.gettempdir(), "hearth-suite", task["name"])
    shutil.rmtree(ws, ignore_errors=True)
    os.makedirs(ws)
    for path, content in task["files"].items():
        full = os.path.join(ws, path)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full, "w") as f:
            f.write(content)
    cmd = [args.hearth, "exec", task["prompt"], "--json", "-m", args.model, "--mode", "full-auto",
           "--temp", str(args.temp), "-s", str(seed), "--max-steps", str(args.max_steps), "-n", str(args.max_tokens),
           "--no-session", "-C", ws]
    if args.threads:
        cmd += ["-t", str(args.threads)]
    start = time.time()
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout)
        stdout, error = out.stdout, (out.stderr.strip().splitlines() or [""])[-1] if out.returncode else None
    except subprocess.TimeoutExpired as e:
        stdout, error = (e.stdout or b"").decode() if isinstance(e.stdout, bytes) else (e.stdout or ""), "timeout"
    wall = time.time() - start
    if args.transcripts:
        os.makedirs(args.transcripts, exist_ok=True)
        suffix = f"-seed{seed}" if len(args.seeds) > 1 else ""
        with open(os.path.join(args.transcripts, f"{task['name']}{suffix}.jsonl"), "w") as f:
            f.write(stdout)
    events = []
    for line in stdout.splitlines():
        try:
            events.append(json.loads(line))
        except json.JSONDecodeError:
            pass
    text = "".join(e.get("text", "") for e in events if e["type"] == "turn_done")
    usage = [e for e in events if e["type"] == "usage"]
    calls = [e["name"] for e in events if e["type"] == "tool_call"]
    try:
        ok = error is None and bool(task["check"](ws, text))
    except Exception as e:  # a checker crash is a failed task
        ok, error = False, f"checker: {e}"
    shutil.rmtree(ws, ignore_errors=True)
    return {
        "name": task["name"], "seed": seed, "ok": ok, "wall_s": round(wall, 1), "model_calls": len(usage), "tools": calls,
        "prompt_tokens": sum(u["prompt_tokens"] for u in usage),
        "reused_tokens": sum(u["cached_prompt_tokens"] for u in usage),
        "generated_tokens": sum(u["completion_tokens"] for u in usage),
        "error": error, "answer": text[:200],
    }


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--hearth", default="target/release/hearth")
    p.add_argument("-m", "--model", default="qwen2.5-coder-1.5b")
    p.add_argument("-t", "--threads", type=int)
    p.add_argument("--temp", type=float, default=0.0)
    p.add_argument("--max-steps", type=int, default=10)
    p.add_argument("--max-tokens", type=int, default=400)
    p.add_argument("--timeout", type=int, default=900)
    p.add_argument("--seeds", default="1", help="comma-separated sampling seeds; each task runs once per seed")
    p.add_argument("--only")
    p.add_argument("--json")
    p.add_argument("--transcripts", help="directory to keep each task's `hearth exec --json` events in")
    args = p.parse_args()
    args.seeds = [int(s) for s in args.seeds.split(",")]
    tasks = [t for t in TASKS if not args.only or t["name"] in args.only.split(",")]
    # Every run uses the same fixture folders (their paths are in the system prompt), so a second
    # suite running at the same time would delete the first one's files mid-task.
    root = os.path.join(tempfile.gettempdir(), "hearth-suite")
    os.makedirs(root, exist_ok=True)
    lock = open(os.path.join(root, ".lock"), "w")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        sys.exit(f"another agent suite is running in {root}; wait for it to finish")
    results = []
    print(f"{'task':<22} {'seed':>4} {'ok':<4} {'wall s':>7} {'calls':>5} {'prompt':>7} {'reused':>7} {'new':>6}  tools")
    for task in tasks:
        for seed in args.seeds:
            r = run_task(task, args, seed)
            results.append(r)
            print(f"{r['name']:<22} {seed:>4} {'yes' if r['ok'] else 'no':<4} {r['wall_s']:>7} {r['model_calls']:>5} "
                  f"{r['prompt_tokens']:>7} {r['reused_tokens']:>7} {r['prompt_tokens'] - r['reused_tokens']:>6}  "
                  f"{','.join(r['tools'])}{'  [' + r['error'] + ']' if r['error'] else ''}", flush=True)
    n_ok = sum(r["ok"] for r in results)
    prompt = sum(r["prompt_tokens"] for r in results)
    reused = sum(r["reused_tokens"] for r in results)
    wall = sum(r["wall_s"] for r in results)
    runs = f"task runs ({len(tasks)} tasks x {len(args.seeds)} seeds)" if len(args.seeds) > 1 else "tasks"
    print(f"\n{args.model}: {n_ok}/{len(results)} {runs} passed, {wall:.0f} s in all; "
          f"prompt tokens {prompt}, reused from the KV cache {reused} "
          f"({100 * reused / max(prompt, 1):.1f}%), computed {prompt - reused}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"model": args.model, "temp": args.temp, "seeds": args.seeds, "results": results}, f, indent=1)


if __name__ == "__main__":
    main()
