#!/usr/bin/env bash
# ozfig on a GPU machine without network, in one command of at most TOTAL seconds: build llama.cpp
# with CUDA once (libllama for the llama_cpp package and llama-server), install ozfig's
# dependencies from the bundle, write the 8B-shaped GGUF, then measure:
#   prompt   `ozfig serve` answering GET /prompt/{q}, web search on the local fakes (status, TTFT, length)
#   engine   bench/engine_bench.py: ozfig's engine against llama.cpp's own loop, BATCHES sequences
#   serving  bench/serving_bench.sh: ozfig and llama-server side by side, CLIENTS concurrent clients
#   verify   bench/verify_cost.py: what verifying k proposed tokens costs (1 and 8 sequences), the
#            curve `--speculative auto` sizes its proposals by (issue 18: the projected gain)
#   parts    bench/step_parts.py, backend  bench/backend_sampling.py: where the engine's step time
#            goes outside llama_decode, and picking tokens inside the graph (not in the default PHASES)
# Each phase has a time cap and writes to $OUT as it goes (a timeout still leaves the rows so far);
# $OUT/summary.txt has one line per phase, and a compact summary is printed at the end.
#
#   bash bench/gpu/prepare.sh   # first, where PyPI is reachable: fills .gpu-bundle/ (about 55 MB)
#   bash bench/gpu/run.sh       # on the GPU machine, from the repository root, with .gpu-bundle/
#
# Environment (the defaults are for one H200 with 16 cores):
#   BUILD=cuda       cmake build of llama.cpp's libllama and llama-server into WORK/build; `prebuilt`:
#                    LIB_DIR holds a libllama.so, LLAMA_SERVER_BIN an optional llama-server (a CPU check);
#                    `none`: the llama_cpp that PY imports as it is
#   BUILD_DRY=1      configure and `ninja -n` only, then stop;  CMAKE_EXTRA: more -D flags;  CUDA_ARCH=90
#   PY=python3 (3.12: the wheels' version), BUNDLE=.gpu-bundle, OUT, WORK=/tmp/ozfig-gpu, TOTAL=540 (s),
#   PHASES=deps,build,model,prompt,engine,serving,verify (+ parts,backend), SHAPE=llama3.1-8b (or MODEL=path), NGL=99,
#   BATCHES=1,8,32, PROMPT=512, STEPS=128, REPEAT=2 (engine), CLIENTS=1,8,32, SLOTS=32 (serving),
#   MAX_TOKENS=128, THREADS=nproc
set -uo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"; cd "$root"
t0=$(date +%s)
export BUILD_DRY="${BUILD_DRY:-}" PY="${PY:-python3}" BUNDLE="${BUNDLE:-$root/.gpu-bundle}" WORK="${WORK:-/tmp/ozfig-gpu}"
export OUT="${OUT:-/tmp/ozfig-gpu-out}" BUILD="${BUILD:-cuda}" CUDA_ARCH="${CUDA_ARCH:-90}"
TOTAL="${TOTAL:-540}" PHASES="${PHASES:-deps,build,model,prompt,engine,serving,verify}"
SHAPE="${SHAPE:-llama3.1-8b}" NGL="${NGL:-99}" BATCHES="${BATCHES:-1,8,32}" CLIENTS="${CLIENTS:-1,8,32}"
PROMPT="${PROMPT:-512}" STEPS="${STEPS:-128}" REPEAT="${REPEAT:-2}" SLOTS="${SLOTS:-32}"
MAX_TOKENS="${MAX_TOKENS:-128}" THREADS="${THREADS:-$(nproc)}"
MODEL="${MODEL:-$WORK/model-$SHAPE.gguf}"
export site="$WORK/site" builddir="$WORK/build"
mkdir -p "$OUT" "$WORK"
export PIP_ROOT_USER_ACTION=ignore PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONUNBUFFERED=1 PYTHONPATH="$site:$root${PYTHONPATH:+:$PYTHONPATH}"
[ -d /usr/local/cuda/bin ] && export PATH="$PATH:/usr/local/cuda/bin"
case "$BUILD" in
  cuda) export LLAMA_CPP_LIB_PATH="$builddir/bin" LD_LIBRARY_PATH="$builddir/bin:${LD_LIBRARY_PATH:-}"
        server_bin="$builddir/bin/llama-server" ;;
  prebuilt) export LLAMA_CPP_LIB_PATH="$LIB_DIR"; server_bin="${LLAMA_SERVER_BIN:-}" ;;
  none) server_bin="${LLAMA_SERVER_BIN:-}" ;;
esac

note() { echo "$*" | tee -a "$OUT/summary.txt"; }
want() { [[ ",$PHASES," == *",$1,"* ]]; }
left() { echo $((TOTAL - ($(date +%s) - t0))); }
# phase NAME CAP COMMAND...: run COMMAND for at most CAP seconds (less when TOTAL is near), output
# into $OUT/NAME.log as it comes; a line in the summary
phase() {
  local name=$1 cap=$2 l t s rc; shift 2
  l=$(left); t=$((cap < l - 10 ? cap : l - 10))
  if ((t < 15)); then note "$name: skipped, ${l} s left"; return 99; fi
  s=$(date +%s)
  timeout --kill-after=5 "$t" "$@" >"$OUT/$name.log" 2>&1; rc=$?
  note "$name: rc=$rc, $(($(date +%s) - s)) s (cap $t s)$( ((rc == 124 || rc == 137)) && echo ', TIMED OUT')"
  return $rc
}

deps() {
  "$PY" -c 'import sys; print(sys.version); assert sys.version_info[:2] == (3, 12), "wheels are for 3.12"' || return 1
  rm -rf "$site" "$WORK/src" && mkdir -p "$site"
  # the wheels were resolved together by prepare.sh and none has a .data folder: unpacking them is
  # installing them (pip install --target took 45 s on 2 cores, this takes a few)
  wheels=("$BUNDLE"/wheels/*.whl)
  "$PY" -c 'import sys; sys.path.remove(sys.argv[1]); import numpy' "$site" 2>/dev/null || wheels+=("$BUNDLE"/wheels-numpy/*.whl)
  "$PY" - "$site" "${wheels[@]}" <<'PY' || return 1
import sys, zipfile
from concurrent.futures import ThreadPoolExecutor
with ThreadPoolExecutor(8) as pool:
    list(pool.map(lambda w: zipfile.ZipFile(w).extractall(sys.argv[1]), sys.argv[2:]))
print(len(sys.argv) - 2, "wheels unpacked")
PY
  tar xzf "$BUNDLE"/llama-cpp-python-*-src.tar.gz -C "$WORK" || return 1
  [ "$BUILD" = none ] || cp -r "$WORK/src/llama_cpp" "$site/llama_cpp"
  "$PY" -c 'import starlette, uvicorn, aiohttp, pydantic, jinja2, trafilatura, lxml_html_clean, rank_bm25, prometheus_client, gguf, numpy; print("imports ok, numpy", numpy.__version__)'
}

build() {
  local cmake ninja gen=() jobs
  jobs=$(nproc)
  cmake=$(command -v cmake || "$PY" -c 'import cmake, os; print(os.path.join(cmake.CMAKE_BIN_DIR, "cmake"))')
  ninja=$(command -v ninja)
  if [ -z "$ninja" ] && ls "$BUNDLE"/tools/ninja-*.whl >/dev/null 2>&1; then  # the bundle's
    mkdir -p "$WORK/bin" && "$PY" -c 'import sys, zipfile; z = zipfile.ZipFile(sys.argv[1]); n = next(
      n for n in z.namelist() if n.endswith("/scripts/ninja")); open(sys.argv[2], "wb").write(z.read(n))' \
      "$(ls "$BUNDLE"/tools/ninja-*.whl | head -1)" "$WORK/bin/ninja" && chmod +x "$WORK/bin/ninja" && ninja="$WORK/bin/ninja"
  fi
  [ -n "$ninja" ] && gen=(-G Ninja -DCMAKE_MAKE_PROGRAM="$ninja")
  "$cmake" --version | head -1; command -v nvcc && nvcc --version | tail -2
  "$cmake" -S "$WORK/src/vendor/llama.cpp" -B "$builddir" "${gen[@]}" -DCMAKE_BUILD_TYPE=Release \
    -DBUILD_SHARED_LIBS=ON -DGGML_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES="$CUDA_ARCH" \
    -DLLAMA_BUILD_COMMON=ON -DLLAMA_BUILD_TOOLS=ON -DLLAMA_BUILD_SERVER=ON -DLLAMA_BUILD_TESTS=OFF \
    -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_APP=OFF -DLLAMA_BUILD_UI=OFF -DLLAMA_USE_PREBUILT_UI=OFF \
    -DLLAMA_OPENSSL=OFF ${CMAKE_EXTRA:-} || return 1
  if [ -n "${BUILD_DRY:-}" ]; then
    [ -n "$ninja" ] && "$ninja" -C "$builddir" -n llama llama-server | tail -3
    return
  fi
  # -k 0: libllama is still finished when llama-server fails (the Python phases need only it)
  "$cmake" --build "$builddir" --target llama llama-server -j "$jobs" -- $([ -n "$ninja" ] && echo -k 0 || echo -k)
}

note "start $(date -u +%FT%TZ), $(nproc) cores, $(nvidia-smi --query-gpu=name,memory.total,driver_version \
  --format=csv,noheader 2>/dev/null || echo 'no nvidia-smi')"
export -f deps build
if want deps; then
  phase deps 90 bash -c deps || { note "deps failed:"; tail -20 "$OUT/deps.log"; exit 1; }
fi

model_pid=""
if want model && [ ! -s "$MODEL" ]; then  # written while llama.cpp builds (one core of sixteen)
  phase model 150 bash -c '"$PY" "$BUNDLE/make_shaped_gguf.py" --shape "$0" --out "$1.part" && mv "$1.part" "$1"' \
    "$SHAPE" "$MODEL" &
  model_pid=$!
fi

if want build && [ "$BUILD" = cuda ]; then
  phase build 430 bash -c build
  rc=$?
  tail -c 200000 "$OUT/build.log" >"$OUT/build.tail" && mv "$OUT/build.tail" "$OUT/build.log"
  [ -n "${BUILD_DRY:-}" ] && { cat "$OUT/build.log" | tail -5; exit $rc; }
  ((rc != 0)) && grep -m 20 -B2 -A8 "error" "$OUT/build.log" | tail -60
fi
[ -n "$model_pid" ] && wait "$model_pid"
ls -la "$MODEL" 2>/dev/null | tee -a "$OUT/summary.txt"

if ! "$PY" -c 'import llama_cpp; print("llama_cpp", llama_cpp.__version__, "GPU offload:", llama_cpp.llama_supports_gpu_offload())' \
  2>&1 | tee -a "$OUT/summary.txt"; then
  note "llama_cpp does not import: stopping"; PHASES=""
fi
[ -s "$MODEL" ] || { note "no model at $MODEL: stopping"; PHASES=""; }

if want prompt; then
  phase prompt 75 "$PY" bench/gpu/prompt_check.py "$MODEL" --gpu-layers "$NGL" --max-tokens "$MAX_TOKENS" \
    --threads "$THREADS" --ready-timeout 60 --log "$OUT/prompt-serve.log"
fi
if want engine; then
  phase engine 110 "$PY" bench/engine_bench.py "$MODEL" --ngl "$NGL" --batches "$BATCHES" --prompt "$PROMPT" \
    --steps "$STEPS" --repeat "$REPEAT" --threads "$THREADS" --flash --baseline "$BUNDLE/bench_decode.py"
fi
if want serving; then
  [ -x "$server_bin" ] || note "no llama-server at '$server_bin': ozfig alone"
  phase serving 200 env SLOTS="$SLOTS" THREADS="$THREADS" MAX_TOKENS="$MAX_TOKENS" CLIENTS="$CLIENTS" \
    NGL="$NGL" FLASH=auto PYTHON="$PY" LOG_DIR="$OUT" bash bench/serving_bench.sh "$MODEL" "${server_bin:-/none}" /none
fi

if want verify; then
  phase verify 60 "$PY" bench/verify_cost.py "$MODEL" --ngl "$NGL" --sequences 1,8 --max-k 16 --prompt "$PROMPT" \
    --repeat 3 --threads "$THREADS"
fi
if want parts; then
  phase parts 90 "$PY" bench/step_parts.py "$MODEL" --ngl "$NGL" --sequences "$BATCHES"
fi
if want backend; then
  phase backend 90 "$PY" bench/backend_sampling.py "$MODEL" --ngl "$NGL" --sequences "$BATCHES"
fi

note "end: $(($(date +%s) - t0)) s"
"$PY" "$root/bench/gpu/summary.py" "$OUT"
