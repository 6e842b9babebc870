#!/usr/bin/env python3
"""Tool-call validity through an OpenAI-compatible server (hearth serve or llama-server --jinja).

Sends 50 prompts (10 tools x 5 requests; the schemas have required fields, enums, bounded numbers,
nested objects and arrays) with each --choice ("required" unless given; repeat for "auto" too),
and checks each reply: at least one tool call, a known tool name, arguments that parse as a JSON
object and validate against the tool's JSON schema (python-jsonschema). Prints one JSON line per
server and tool choice with the number of replies holding a call, the number whose calls are all
valid, and the kinds of failures. Bounded: 50 requests per choice, --clients at a time, a
timeout per request.
"""

import argparse
import collections
import concurrent.futures
import json
import urllib.request

import jsonschema

S = {"type": "string"}
I = {"type": "integer"}
N = {"type": "number"}
B = {"type": "boolean"}


def tool(name, description, properties, required):
    return {"type": "function", "function": {"name": name, "description": description, "parameters": {
        "type": "object", "properties": properties, "required": required}}}


CURRENCIES = ["USD", "EUR", "GBP", "JPY", "CHF", "SEK", "NOK", "BTC"]

TOOLS = [
    tool("get_weather", "Current weather of a city", {"city": S, "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}}, ["city"]),
    tool("read_file", "Read a file of the project", {"path": S, "start_line": {"type": "integer", "minimum": 1}, "end_line": I}, ["path"]),
    tool("search_code", "Search the code base for a regular expression", {"pattern": S, "options": {
        "type": "object", "properties": {"case_sensitive": B, "globs": {"type": "array", "items": S}}, "required": ["case_sensitive"]}},
        ["pattern"]),
    tool("run_command", "Run a shell command", {"argv": {"type": "array", "items": S, "minItems": 1}, "timeout_seconds": {
        "type": "number", "exclusiveMinimum": 0}}, ["argv"]),
    tool("send_email", "Send an email", {"to": {"type": "array", "items": S, "minItems": 1}, "subject": S, "body": S,
                                         "priority": {"type": "string", "enum": ["low", "normal", "high"]}}, ["to", "subject", "body"]),
    tool("create_event", "Add an event to the calendar", {"title": S, "date": S, "attendees": {"type": "array", "items": {
        "type": "object", "properties": {"name": S, "email": S}, "required": ["name"]}}}, ["title", "date"]),
    tool("convert_currency", "Convert an amount between currencies", {"amount": N, "from": {"type": "string", "enum": CURRENCIES},
                                                                      "to": {"type": "string", "enum": CURRENCIES}}, ["amount", "from", "to"]),
    tool("set_timer", "Start a timer", {"minutes": {"type": "integer", "minimum": 1, "maximum": 1440}, "label": S}, ["minutes"]),
    tool("translate", "Translate text", {"text": S, "target_language": S}, ["text", "target_language"]),
    tool("book_table", "Book a restaurant table", {"restaurant": S, "people": {"type": "integer", "minimum": 1, "maximum": 20},
                                                   "time": S, "seating": {"type": "string", "enum": ["indoor", "outdoor"]}},
         ["restaurant", "people", "time"]),
]

PROMPTS = {
    "get_weather": ["What's the weather in Paris?", "Is it raining in Tokyo right now?", "Temperature in Berlin in fahrenheit please.",
                    "How cold is it in Oslo?", "Weather for São Paulo."],
    "read_file": ["Show me src/main.rs.", "Open Cargo.toml lines 1 to 20.", "What is in README.md?",
                  "Read crates/engine/src/lib.rs from line 10.", "Print the file docs/design.md."],
    "search_code": ["Find where `fn forward` is defined.", "Search for TODO comments in Rust files.", "Grep for 'unwrap()' case-insensitively.",
                    "Where is KvPool used?", "Look for the string \"max_tokens\" in *.py files."],
    "run_command": ["Run the tests with cargo test.", "List the files in the current directory.", "Show the git log, at most 30 seconds.",
                    "Check the disk usage with df -h.", "Run `make build`."],
    "send_email": ["Email bob@example.com that the build is green.", "Send alice@example.org a note titled Lunch saying I'm late.",
                   "Write to team@example.com: subject 'Release', body 'v1.2 is out'.", "Tell carol@example.com the meeting moved to 3pm.",
                   "Email hr@example.com asking for a day off on Friday."],
    "create_event": ["Add a dentist appointment on 2025-03-14.", "Schedule 'Sprint review' on 2025-05-02 with Ann and Bo.",
                     "Put my mother's birthday on June 3rd in the calendar.", "Create an event 'Team lunch' next Monday, 2025-04-07.",
                     "Calendar: 'Flight to Rome' on 2025-08-20."],
    "convert_currency": ["Convert 100 USD to EUR.", "How many yen is 50 pounds?", "Change 12.5 CHF into USD.",
                         "What is 1000 SEK in NOK?", "Convert 3 bitcoin to dollars."],
    "set_timer": ["Set a timer for 10 minutes.", "Timer: 25 minutes, label it pomodoro.", "Remind me in 3 minutes that the tea is ready.",
                  "Start a 45 minute timer for the oven.", "One hour timer please."],
    "translate": ["Translate 'good morning' into Spanish.", "How do you say 'thank you' in Japanese?", "Translate this to German: the cat sleeps.",
                  "Put 'where is the station?' in French.", "Italian for 'I love pasta'."],
    "book_table": ["Book a table for 4 at Luigi's at 8pm.", "Reserve 2 seats at Sushi Zen for 19:30 outside.",
                   "Table for six at The Oak, 7 pm.", "Book dinner for two at Chez Paul at 20:00, indoors.", "Get me a table for 3 at Noma at noon."],
}

def check(reply, tools_by_name):
    """The reason a reply's tool calls are not valid, or None."""
    message = reply["choices"][0]["message"]
    calls = message.get("tool_calls") or []
    if not calls:
        # A reply cut at max_tokens is told apart from one that stopped without calling.
        return f"no tool call (finish_reason {reply['choices'][0].get('finish_reason')})"
    for call in calls:
        fn = call.get("function", {})
        spec = tools_by_name.get(fn.get("name"))
        if spec is None:
            return "unknown tool name"
        try:
            args = json.loads(fn.get("arguments", ""))
        except json.JSONDecodeError:
            return "arguments are not JSON"
        if not isinstance(args, dict):
            return "arguments are not an object"
        error = jsonschema.exceptions.best_match(jsonschema.Draft202012Validator(spec["parameters"]).iter_errors(args))
        if error is not None:
            return f"schema: {error.validator}"
    return None


def ask(url, prompt, choice, args):
    body = {"model": "m", "messages": [{"role": "user", "content": prompt}], "tools": TOOLS, "tool_choice": choice,
            "max_tokens": args.max_tokens, "temperature": args.temperature}
    req = urllib.request.Request(f"{url}/v1/chat/completions", json.dumps(body).encode(),
                                 {"Content-Type": "application/json", "Authorization": "Bearer none"})
    with urllib.request.urlopen(req, timeout=args.timeout) as r:
        return json.load(r)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", action="append", required=True, help="server base URL (repeat for several)")
    p.add_argument("--label", action="append", help="a label per --url")
    p.add_argument("--choice", action="append", choices=["required", "auto"], help="tool_choice (repeat for both)")
    p.add_argument("--temperature", type=float, default=0)
    p.add_argument("--max-tokens", type=int, default=96)
    p.add_argument("--clients", type=int, default=4)
    p.add_argument("--timeout", type=float, default=300)
    args = p.parse_args()
    tools_by_name = {t["function"]["name"]: t["function"] for t in TOOLS}
    prompts = [prompt for name in PROMPTS for prompt in PROMPTS[name]]
    for i, url in enumerate(args.url):
        label = args.label[i] if args.label and i < len(args.label) else url
        for choice in args.choice or ["required"]:
            failures = collections.Counter()
            with concurrent.futures.ThreadPoolExecutor(args.clients) as pool:
                futures = [pool.submit(ask, url, prompt, choice, args) for prompt in prompts]
                for f in futures:
                    try:
                        problem = check(f.result(), tools_by_name)
                    except Exception as e:  # noqa: BLE001 - a failed request counts as invalid
                        problem = f"request failed: {type(e).__name__}"
                    if problem:
                        failures[problem] += 1
            valid = len(prompts) - sum(failures.values())
            with_call = len(prompts) - sum(n for p, n in failures.items() if p.startswith(("no tool call", "request")))
            print(json.dumps({"label": label, "tool_choice": choice, "temperature": args.temperature, "prompts": len(prompts),
                              "with_call": with_call, "valid": valid, "valid_rate": round(valid / len(prompts), 3),
                              "failures": dict(failures)}), flush=True)


if __name__ == "__main__":
    main()
