#!/usr/bin/env bash
# Fill BUNDLE (default .gpu-bundle, git-ignored) with everything bench/gpu/run.sh needs on a GPU
# machine without network. Run it here, where PyPI is reachable, from the repository root:
#
#   bash bench/gpu/prepare.sh [BUNDLE]
#
# It holds:
#   llama-cpp-python-VERSION-src.tar.gz  the sdist, trimmed to what one cmake build of libllama
#                                        (for the Python package) and llama-server needs (~6 MB)
#   wheels/        ozfig's runtime dependencies and llama-cpp-python's, as CPython 3.12 manylinux
#                  x86_64 wheels, resolved here (installed there with --no-deps)
#   wheels-numpy/  numpy, installed there only when the machine's Python has none
#   tools/         the ninja wheel, used when the machine has no ninja
#   bench_decode.py, make_shaped_gguf.py   from ../shared/gpu (the baseline and the 8B-shaped GGUF)
# Environment: PYTHON_VERSION (3.12), VERSION (llama-cpp-python, 0.3.36), SHARED_GPU (../shared/gpu),
# SDIST (a local llama_cpp_python-VERSION.tar.gz; default: /tmp/sdist's, else pip download).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
bundle="${1:-$root/.gpu-bundle}"
version="${VERSION:-0.3.36}"
pyver="${PYTHON_VERSION:-3.12}"
shared="${SHARED_GPU:-$root/../shared/gpu}"
pip=(python3 -m pip)
rm -rf "$bundle"; mkdir -p "$bundle"; bundle="$(cd "$bundle" && pwd)"
work="$(mktemp -d)"; trap 'rm -rf "$work"' EXIT

# 1. llama.cpp's source, from the llama-cpp-python sdist ozfig pins
sdist="${SDIST:-/tmp/sdist/llama_cpp_python-$version.tar.gz}"
if [ ! -f "$sdist" ]; then
  "${pip[@]}" download -q --no-deps --no-binary=:all: "llama-cpp-python==$version" -d "$work"
  sdist="$work/llama_cpp_python-$version.tar.gz"
fi
tar xzf "$sdist" -C "$work"
src="$work/llama_cpp_python-$version"
rm -rf "$src"/{.git,.github,docs,docker,examples,tests,scripts}
(
  cd "$src/vendor/llama.cpp"
  # not built: models, docs, tests, examples, Python tools (tools/ and vendor/ stay: the
  # server links mtmd, cpp-httplib, the UI table, and tools/CMakeLists.txt adds every tool)
  rm -rf .git models docs media benches examples tests pocs conversion gguf-py requirements .github \
    tools/server/tests tools/server/bench
  # the web UI: no npm and no download there; the build embeds an empty table
  find tools/ui -mindepth 1 -maxdepth 1 ! -name CMakeLists.txt ! -name ui.h.in ! -name ui.cpp.in \
    ! -name sources.cmake -exec rm -rf {} +
  find scripts -mindepth 1 ! -name ui-assets.cmake -exec rm -rf {} + 2>/dev/null || true
  cd ggml/src
  rm -rf ggml-sycl ggml-vulkan ggml-opencl ggml-cann ggml-hexagon ggml-metal ggml-openvino \
    ggml-webgpu ggml-virtgpu ggml-et ggml-zdnn ggml-musa ggml-hip ggml-zendnn
)
mv "$src" "$work/src"
tar czf "$bundle/llama-cpp-python-$version-src.tar.gz" -C "$work" src

# 2. wheels: pyproject's runtime dependencies (not llama-cpp-python: built there) and llama-cpp-python's
deps=$(python3 - "$root/pyproject.toml" <<'PY'
import re, sys, tomllib
names = tomllib.load(open(sys.argv[1], "rb"))["project"]["dependencies"]
print("\n".join(d for d in names if not re.match(r"llama-cpp-python\b", d)))
PY
)
wheel_args=(--only-binary=:all: --python-version "$pyver" --implementation cp --abi "cp${pyver/./}"
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64
  --platform manylinux1_x86_64 --platform linux_x86_64)
# shellcheck disable=SC2086
"${pip[@]}" download -q "${wheel_args[@]}" -d "$bundle/wheels" $deps "typing-extensions>=4.5" \
  "diskcache>=5.6.1" "jinja2>=2.11.3" 2> >(grep -v "^WARNING: Location" >&2)
mkdir -p "$bundle/wheels-numpy"
mv "$bundle"/wheels/numpy-*.whl "$bundle/wheels-numpy/"
# ninja, for a machine without one (run.sh takes the binary out of the wheel)
"${pip[@]}" download -q --no-deps "${wheel_args[@]}" -d "$bundle/tools" ninja 2> >(grep -v "^WARNING: Location" >&2)

# run.sh unpacks the wheels as they are: none may carry a .data folder (scripts, headers)
python3 - "$bundle"/wheels*/*.whl <<'PY'
import sys, zipfile
bad = [w for w in sys.argv[1:] if any(".data/" in n for n in zipfile.ZipFile(w).namelist())]
sys.exit(f"wheels with a .data folder: {bad}" if bad else 0)
PY

# 3. the baseline and the shaped model
cp "$shared/bench_decode.py" "$shared/make_shaped_gguf.py" "$bundle/"
echo "bundle: $bundle ($(du -sh "$bundle" | cut -f1)); $(ls "$bundle/wheels" | wc -l) wheels"
