#!/usr/bin/env bash
# Side by side on one machine, in one run: llama-cpp-python's server, ozfig, and llama.cpp's own
# llama-server -np SLOTS, each at 1 and 8 (CLIENTS) concurrent clients on /v1/chat/completions (streaming and
# not), with the same model, prompts and max_tokens. Prints one JSON line per measurement.
#
#   bash bench/serving_bench.sh MODEL.gguf [LLAMA_SERVER_BIN] [LCPP_PYTHON]
#
# LLAMA_SERVER_BIN: llama-server built from the llama.cpp source in the llama-cpp-python sdist
#   (cmake --build BUILD --target llama-server); skipped when absent.
# LCPP_PYTHON: a python with `llama-cpp-python[server]` installed (its own venv: it pins fastapi).
# Environment: SLOTS (8: both servers' parallel sequences), THREADS, MAX_TOKENS (128), CLIENTS
# (comma-separated client counts, 1,8; each row sends 2 requests per client, at least 4), NGL (GPU
# layers for ozfig and llama-server; unset: their defaults), FLASH (llama-server's -fa on|off|auto;
# unset: its default, auto, as ozfig), LOG_DIR (the servers' logs, /tmp), PYTHON.
set -uo pipefail
model="$1"
llama_server="${2:-$HOME/.cache/ozfig-llama.cpp/build/bin/llama-server}"
lcpp_python="${3:-$HOME/.cache/ozfig-bench/lcpp-venv/bin/python}"
here="$(cd "$(dirname "$0")" && pwd)"
py="${PYTHON:-python}"
threads="${THREADS:-$(nproc)}"
max_tokens="${MAX_TOKENS:-128}"
slots="${SLOTS:-8}"
clients="${CLIENTS:-1,8}"
logs="${LOG_DIR:-/tmp}"
ozfig_gpu=() server_gpu=()
[ -n "${NGL:-}" ] && ozfig_gpu=(--gpu-layers "$NGL") && server_gpu=(-ngl "$NGL")
[ -n "${FLASH:-}" ] && server_gpu+=(-fa "$FLASH")
port=18080

up() {  # url: 200? (curl, else python: a bare GPU image may lack curl)
  if command -v curl >/dev/null; then curl -sf "$1" >/dev/null 2>&1; return; fi
  "$py" -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=5)' "$1" 2>/dev/null
}

wait_up() {  # url
  for _ in $(seq 1 600); do
    up "$1" && return 0
    sleep 0.2
  done
  echo "server at $1 did not come up" >&2; return 1
}

load() {  # label clients requests [--stream]
  "$py" "$here/load.py" --url "http://127.0.0.1:$port" --label "$1" --clients "$2" --requests "$3" \
    --max-tokens "$max_tokens" ${4:-}
}

suite() {  # label
  local c
  for c in ${clients//,/ }; do
    load "$1" "$c" $((2 * c > 4 ? 2 * c : 4))
    load "$1" "$c" $((2 * c > 4 ? 2 * c : 4)) --stream
  done
}

stop() { kill "$1" 2>/dev/null; wait "$1" 2>/dev/null; }

# 1. llama-cpp-python's own server
if [ -x "$lcpp_python" ]; then
  "$lcpp_python" -m llama_cpp.server --model "$model" --n_ctx 2048 --n_threads "$threads" \
    --n_threads_batch "$threads" --host 127.0.0.1 --port $port >"$logs/bench-lcpp.log" 2>&1 &
  pid=$!
  wait_up "http://127.0.0.1:$port/v1/models" && suite llama-cpp-python-server
  stop $pid
fi

# 2. ozfig
"$py" -m ozfig serve --model "$model" --host 127.0.0.1 --port $port --slots "$slots" --ctx 1024 \
  --max-tokens "$max_tokens" --threads "$threads" "${ozfig_gpu[@]}" --log-level warning >"$logs/bench-ozfig.log" 2>&1 &
pid=$!
wait_up "http://127.0.0.1:$port/health" && suite ozfig
stop $pid

# 3. llama.cpp's llama-server with SLOTS slots
if [ -x "$llama_server" ]; then
  # on CPUs with AMX, llama.cpp's repacked weight buffers crash; ozfig loads without them there,
  # and so does llama-server here (--no-repack), so both run the same kernels
  repack=()
  grep -q " amx_tile" /proc/cpuinfo 2>/dev/null && repack=(--no-repack)
  "$llama_server" -m "$model" -np "$slots" -c $((1024 * slots)) -t "$threads" --host 127.0.0.1 --port $port \
    "${repack[@]}" "${server_gpu[@]}" >"$logs/bench-llama-server.log" 2>&1 &
  pid=$!
  wait_up "http://127.0.0.1:$port/health" && suite llama-server-np$slots
  stop $pid
fi
