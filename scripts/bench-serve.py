#!/usr/bin/env python3
"""Benchmarks an OpenAI-compatible server (hearth serve or llama-server) on loopback.

  throughput  N concurrent clients, each sending R chat requests that generate exactly T tokens
              (ignore_eos); prints generated tokens per second over the wall time.
  growing     one conversation resent with a new user turn each time; prints the time to first
              token of each turn and the prompt/cached token counts the server reports, then the
              last turn once more with its start changed (nothing cached) for comparison.
  load        C client threads firing requests for at most S seconds and K requests in all
              (half of them streamed), waiting --backoff seconds after a 429; counts statuses
              (200, 429, other) and samples the server's RSS (--pid) every second.

Only standard-library Python; every loop is bounded in count and time.
"""

import argparse
import http.client
import json
import threading
import time
import urllib.parse

TOPICS = ["the sea", "mountains", "a city at night", "an old library", "a forest in autumn", "the desert",
          "a train journey", "a thunderstorm", "a market", "the moon"]


def request(base, body, stream=False, timeout=600):
    """POSTs a chat completion. Returns (status, parsed JSON or None, seconds to first content)."""
    u = urllib.parse.urlparse(base)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)
    start = time.perf_counter()
    conn.request("POST", "/v1/chat/completions", json.dumps(dict(body, stream=stream)),
                 {"Content-Type": "application/json", "Authorization": "Bearer none"})
    resp = conn.getresponse()
    if resp.status != 200:
        resp.read()
        conn.close()
        return resp.status, None, None
    if not stream:
        data = json.loads(resp.read())
        conn.close()
        return 200, data, None
    ttft, text, usage = None, "", None
    for raw in resp:
        line = raw.decode().strip()
        if not line.startswith("data: ") or line == "data: [DONE]":
            continue
        chunk = json.loads(line[6:])
        if chunk.get("usage"):
            usage = chunk["usage"]
        for c in chunk.get("choices", []):
            piece = (c.get("delta") or {}).get("content") or ""
            if piece and ttft is None:
                ttft = time.perf_counter() - start
            text += piece
    conn.close()
    return 200, {"text": text, "usage": usage}, ttft


def throughput(args):
    for clients in [int(c) for c in args.clients.split(",")]:
        tokens = [0] * clients
        errors = [0] * clients

        def client(i):
            for r in range(args.requests):
                topic = TOPICS[(i * args.requests + r) % len(TOPICS)]
                body = {"model": "m", "max_tokens": args.tokens, "temperature": 0, "ignore_eos": True,
                        "messages": [{"role": "user", "content": f"Client {i}, request {r}: write about {topic}."}]}
                status, data, _ = request(args.url, body)
                if status == 200:
                    tokens[i] += data["usage"]["completion_tokens"]
                else:
                    errors[i] += 1

        threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
        start = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - start
        print(json.dumps({"label": args.label, "mode": "throughput", "clients": clients, "requests": clients * args.requests,
                          "tokens": sum(tokens), "errors": sum(errors), "seconds": round(wall, 2),
                          "tokens_per_second": round(sum(tokens) / wall, 1)}), flush=True)


def growing(args):
    messages = [{"role": "system", "content": "You are a helpful assistant. " * 20}]
    for turn in range(args.turns):
        messages.append({"role": "user", "content": f"Turn {turn}: tell me one fact about {TOPICS[turn % len(TOPICS)]}."})
        body = {"model": "m", "max_tokens": args.tokens, "temperature": 0, "messages": messages,
                "stream_options": {"include_usage": True}}
        status, data, ttft = request(args.url, body, stream=True)
        assert status == 200, status
        usage = data["usage"] or {}
        cached = (usage.get("prompt_tokens_details") or {}).get("cached_tokens")
        print(json.dumps({"label": args.label, "mode": "growing", "turn": turn, "prompt_tokens": usage.get("prompt_tokens"),
                          "cached_tokens": cached, "ttft_ms": round(ttft * 1000, 1) if ttft else None}), flush=True)
        messages.append({"role": "assistant", "content": data["text"]})
    # The last prompt again with its first message changed, so nothing of it is cached: the
    # time to first token the same conversation costs without the prefix cache.
    messages[0]["content"] = "You are a kind assistant. " + messages[0]["content"]
    messages.pop()
    body = {"model": "m", "max_tokens": args.tokens, "temperature": 0, "messages": messages,
            "stream_options": {"include_usage": True}}
    status, data, ttft = request(args.url, body, stream=True)
    assert status == 200, status
    usage = data["usage"] or {}
    cached = (usage.get("prompt_tokens_details") or {}).get("cached_tokens")
    print(json.dumps({"label": args.label, "mode": "growing", "turn": "last, uncached", "prompt_tokens": usage.get("prompt_tokens"),
                      "cached_tokens": cached, "ttft_ms": round(ttft * 1000, 1) if ttft else None}), flush=True)


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return None


def load(args):
    counts = {"200": 0, "429": 0, "other": 0}
    lock = threading.Lock()
    sent = [0]
    deadline = time.monotonic() + args.seconds
    samples = []

    def client(i):
        while time.monotonic() < deadline:
            with lock:
                if sent[0] >= args.total:
                    return
                sent[0] += 1
                n = sent[0]
            body = {"model": "m", "max_tokens": args.tokens, "temperature": 0.8, "seed": n,
                    "messages": [{"role": "user", "content": f"Request {n}: a sentence about {TOPICS[n % len(TOPICS)]}."}]}
            try:
                status, _, _ = request(args.url, body, stream=(n % 2 == 0), timeout=120)
            except OSError:
                status = -1
            key = str(status) if status in (200, 429) else "other"
            with lock:
                counts[key] += 1
            if status == 429:
                time.sleep(args.backoff)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(args.concurrency)]
    start = time.monotonic()
    for t in threads:
        t.start()
    while any(t.is_alive() for t in threads):
        if args.pid:
            samples.append(rss_kib(args.pid))
        time.sleep(1)
    for t in threads:
        t.join()
    if args.pid:
        samples.append(rss_kib(args.pid))
    print(json.dumps({"label": args.label, "mode": "load", "concurrency": args.concurrency, "sent": sent[0],
                      "seconds": round(time.monotonic() - start, 1), "status": counts,
                      "rss_mib_first": round(samples[0] / 1024, 1) if samples else None,
                      "rss_mib_max": round(max(samples) / 1024, 1) if samples else None,
                      "rss_mib_last": round(samples[-1] / 1024, 1) if samples else None}), flush=True)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("mode", choices=["throughput", "growing", "load"])
    p.add_argument("--url", default="http://127.0.0.1:8080")
    p.add_argument("--label", default="")
    p.add_argument("--clients", default="1,4,8")
    p.add_argument("--requests", type=int, default=2, help="requests per client (throughput)")
    p.add_argument("--tokens", type=int, default=64, help="tokens generated per request")
    p.add_argument("--turns", type=int, default=8, help="turns of the growing conversation")
    p.add_argument("--concurrency", type=int, default=32, help="client threads (load)")
    p.add_argument("--seconds", type=float, default=60, help="time bound (load)")
    p.add_argument("--total", type=int, default=400, help="request bound (load)")
    p.add_argument("--backoff", type=float, default=0.0, help="seconds a client waits after a 429 (load)")
    p.add_argument("--pid", type=int, help="server process to sample RSS of (load)")
    args = p.parse_args()
    {"throughput": throughput, "growing": growing, "load": load}[args.mode](args)


if __name__ == "__main__":
    main()
