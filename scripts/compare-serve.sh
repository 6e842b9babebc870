#!/usr/bin/env bash
# Runs the server measurements of scripts/tool-call-validity.py and scripts/bench-serve.py against
# `hearth serve` and llama.cpp's `llama-server --jinja` on the same GGUF, each server alone on the
# machine, and appends the JSON lines to compare-serve-MODEL.jsonl in the current directory.
#
#   scripts/compare-serve.sh MODEL_ID GGUF PARALLEL PART...
#
# PART: valid (tool_choice required and auto), validreq (required only), tput (1, 4 and 8
# concurrent clients), grow (time to first token of a resent growing conversation), load (hearth
# only: three bounded rounds of 32 client threads). HEARTH (default target/release/hearth) and
# LLAMA_BIN (default ~/.cache/hearth-ref/llama.cpp/bin, see ../shared/tools/reference-llama-cpp.sh)
# name the binaries; THREADS (default 2) the threads of both.
set -u
M=$1; G=$2; P=$3; shift 3
ROOT=$(cd "$(dirname "$0")/.." && pwd)
HB=${HEARTH:-$ROOT/target/release/hearth}
LB=${LLAMA_BIN:-$HOME/.cache/hearth-ref/llama.cpp/bin}
T=${THREADS:-2}
OUT=$PWD/compare-serve-$M.jsonl
S=$ROOT/scripts
wait_up() {
    for _ in $(seq 1 240); do curl -sf "$1/health" >/dev/null 2>&1 && return 0; sleep 0.5; done
    echo "server $1 did not come up" >&2; return 1
}
start() { # start h|l: sets URL, PID and LABEL
    if [ "$1" = h ]; then
        "$HB" serve "$G" --port 8090 --parallel "$P" -t "$T" >"serve-hearth-$M.log" 2>&1 &
        PID=$!; URL=http://127.0.0.1:8090; LABEL=hearth-$M
    else
        "$LB/llama-server" -m "$G" --port 8091 --jinja -np 8 -c 32768 -t "$T" >"serve-llama-$M.log" 2>&1 &
        PID=$!; URL=http://127.0.0.1:8091; LABEL=llama-server-$M
    fi
    wait_up "$URL"
}
stop() { kill "$PID" 2>/dev/null; wait "$PID" 2>/dev/null; }
for part in "$@"; do
    case $part in
    valid | validreq)
        choices=(--choice required); [ "$part" = valid ] && choices+=(--choice auto)
        for srv in h l; do
            start $srv || continue
            python3 "$S/tool-call-validity.py" --url "$URL" --label "$LABEL" "${choices[@]}" --temperature 0.7 \
                --max-tokens 200 --clients 4 --timeout 900 | tee -a "$OUT"
            stop
        done ;;
    tput | grow)
        for srv in h l; do
            start $srv || continue
            if [ "$part" = tput ]; then
                python3 "$S/bench-serve.py" throughput --url "$URL" --label "$LABEL" --clients 1,4,8 --requests 1 --tokens 48 | tee -a "$OUT"
            else
                python3 "$S/bench-serve.py" growing --url "$URL" --label "$LABEL" --turns 6 --tokens 48 | tee -a "$OUT"
            fi
            stop
        done ;;
    load)
        start h || continue
        for round in 1 2 3; do
            python3 "$S/bench-serve.py" load --url "$URL" --label "$LABEL-round$round" --concurrency 32 --seconds 60 \
                --total 400 --tokens 16 --backoff 0.5 --pid "$PID" | tee -a "$OUT"
        done
        stop ;;
    *) echo "unknown part $part" >&2; exit 2 ;;
    esac
done
