#!/usr/bin/env bash
# Side by side on one machine, in one run: llama-cpp-python's server, ozfig, and llama.cpp's own
# llama-server -np 8, each at 1 and 8 concurrent clients on /v1/chat/completions (streaming and
# not), with the same model, prompts and max_tokens. Prints one JSON line per measurement.
#
#   bash bench/serving_bench.sh MODEL.gguf [LLAMA_SERVER_BIN] [LCPP_PYTHON]
#
# LLAMA_SERVER_BIN: llama-server built from the llama.cpp source in the llama-cpp-python sdist
#   (cmake --build BUILD --target llama-server); skipped when absent.
# LCPP_PYTHON: a python with `llama-cpp-python[server]` installed (its own venv: it pins fastapi).
set -uo pipefail
model="$1"
llama_server="${2:-$HOME/.cache/ozfig-llama.cpp/build/bin/llama-server}"
lcpp_python="${3:-$HOME/.cache/ozfig-bench/lcpp-venv/bin/python}"
here="$(cd "$(dirname "$0")" && pwd)"
py="${PYTHON:-python}"
threads="${THREADS:-$(nproc)}"
max_tokens="${MAX_TOKENS:-128}"
slots="${SLOTS:-8}"
port=18080

wait_up() {  # url
  for _ in $(seq 1 600); do
    curl -sf "$1" >/dev/null 2>&1 && return 0
    sleep 0.2
  done
  echo "server at $1 did not come up" >&2; return 1
}

load() {  # label clients requests [--stream]
  "$py" "$here/load.py" --url "http://127.0.0.1:$port" --label "$1" --clients "$2" --requests "$3" \
    --max-tokens "$max_tokens" ${4:-}
}

suite() {  # label
  load "$1" 1 4
  load "$1" 1 4 --stream
  load "$1" 8 16
  load "$1" 8 16 --stream
}

stop() { kill "$1" 2>/dev/null; wait "$1" 2>/dev/null; }

# 1. llama-cpp-python's own server
if [ -x "$lcpp_python" ]; then
  "$lcpp_python" -m llama_cpp.server --model "$model" --n_ctx 2048 --n_threads "$threads" \
    --n_threads_batch "$threads" --host 127.0.0.1 --port $port >/tmp/bench-lcpp.log 2>&1 &
  pid=$!
  wait_up "http://127.0.0.1:$port/v1/models" && suite llama-cpp-python-server
  stop $pid
fi

# 2. ozfig
"$py" -m ozfig serve --model "$model" --host 127.0.0.1 --port $port --slots "$slots" --ctx 1024 \
  --max-tokens "$max_tokens" --threads "$threads" --log-level warning >/tmp/bench-ozfig.log 2>&1 &
pid=$!
wait_up "http://127.0.0.1:$port/health" && suite ozfig
stop $pid

# 3. llama.cpp's llama-server with 8 slots
if [ -x "$llama_server" ]; then
  # on CPUs with AMX, llama.cpp's repacked weight buffers crash; ozfig loads without them there,
  # and so does llama-server here (--no-repack), so both run the same kernels
  repack=()
  grep -q " amx_tile" /proc/cpuinfo 2>/dev/null && repack=(--no-repack)
  "$llama_server" -m "$model" -np "$slots" -c $((1024 * slots)) -t "$threads" --host 127.0.0.1 --port $port \
    "${repack[@]}" >/tmp/bench-llama-server.log 2>&1 &
  pid=$!
  wait_up "http://127.0.0.1:$port/health" && suite llama-server-np$slots
  stop $pid
fi
