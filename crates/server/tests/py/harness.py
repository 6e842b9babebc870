"""A tiny test runner for the client scripts: runs every test_* function of a module, prints one
line per test and a closing 'N passed, N failed' line, exits non-zero on any failure.

The scripts talk to a running `hearth serve` at $HEARTH_BASE_URL with key $HEARTH_API_KEY.
$HEARTH_CONSTRAINED=1 (from /health) turns on the assertions that need grammar-constrained
decoding; without it tool calls and JSON are unconstrained and only their shape is checked.
"""

import json
import os
import sys
import traceback
import urllib.request

BASE_URL = os.environ["HEARTH_BASE_URL"]
API_KEY = os.environ["HEARTH_API_KEY"]


def constrained() -> bool:
    """Whether the server enforces tool-call and JSON grammars (grammar crate landed)."""
    with urllib.request.urlopen(f"{BASE_URL}/health") as r:
        return bool(json.load(r)["constrained_decoding"])


WEATHER_TOOL = {
    "name": "get_weather",
    "description": "Get the current weather for a city",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
        "required": ["city"],
    },
}


def run(module_globals) -> None:
    tests = [(n, f) for n, f in module_globals.items() if n.startswith("test_") and callable(f)]
    passed = failed = 0
    for name, fn in tests:
        try:
            fn()
            passed += 1
            print(f"ok      {name}", flush=True)
        except Exception:  # noqa: BLE001 - every failure is reported, then counted
            failed += 1
            print(f"FAILED  {name}", flush=True)
            traceback.print_exc()
    print(f"{passed} passed, {failed} failed", flush=True)
    sys.exit(1 if failed else 0)
