#!/usr/bin/env bash
# Build llama-cpp-python once, for any x86-64 CPU, and install it into a venv.
#
#   models/install_llama_cpp.sh PYTHON VERSION WHEEL_CACHE BUILD
#
# BUILD=portable (the default of `make setup`): ggml's CPU code is built once per x86-64
#   generation (GGML_CPU_ALL_VARIANTS: from plain x86-64 and SSE4.2 up to AVX-512 and AMX), and
#   voicebox loads the best one this CPU supports when the model starts
#   (voicebox/thinking/llama_backend.py). One wheel then runs on whatever machine it lands on.
# BUILD=native: -march=native, for this CPU only. Its wheel is cached under this CPU's flags, so a
#   machine whose CPU changes builds again instead of reusing a wheel that may crash (SIGILL).
#
# Wheels are cached in WHEEL_CACHE/llama_cpp_python-VERSION-<build key>/, the key naming the build
# flags: a cached wheel is only ever reused for the same flags. pip's own wheel cache is bypassed
# (--no-cache-dir): keyed by version alone, it hands back whatever was built last.
set -euo pipefail
py=$1 version=$2 cache=$3 build=${4:-portable}

case "$build" in
  portable)
    flags="-DGGML_NATIVE=OFF -DGGML_BACKEND_DL=ON -DGGML_CPU_ALL_VARIANTS=ON"
    key="portable-$(printf '%s' "$flags ${LLAMA_CMAKE_ARGS:-}" | sha256sum | cut -c1-12)"
    ;;
  native)
    flags="-DGGML_NATIVE=ON"
    cpu=$(grep -m1 '^flags' /proc/cpuinfo 2>/dev/null || uname -m)
    key="native-$(printf '%s' "$flags ${LLAMA_CMAKE_ARGS:-} $cpu" | sha256sum | cut -c1-12)"
    ;;
  *)
    echo "install_llama_cpp.sh: LLAMA_BUILD must be portable or native, not '$build'" >&2
    exit 2
    ;;
esac

dir="$cache/llama_cpp_python-$version-$key"
if ! ls "$dir"/llama_cpp_python-"$version"-*.whl >/dev/null 2>&1; then
  mkdir -p "$cache"
  tmp=$(mktemp -d "$cache/.building-XXXXXX")
  trap 'rm -rf "$tmp"' EXIT
  echo "Building llama-cpp-python $version ($build: $flags ${LLAMA_CMAKE_ARGS:-}); about 12 minutes on 2 cores"
  CMAKE_ARGS="$flags ${LLAMA_CMAKE_ARGS:-}" CMAKE_BUILD_PARALLEL_LEVEL="$(nproc)" \
    "$py" -m pip wheel -q --no-deps --no-cache-dir "llama-cpp-python==$version" -w "$tmp"
  printf '%s\n' "$flags ${LLAMA_CMAKE_ARGS:-}" > "$tmp/BUILD_FLAGS"
  rm -rf "$dir"
  mv "$tmp" "$dir"  # whole or not at all: an interrupted build leaves no wheel behind
  trap - EXIT
fi
# Replace whatever build the venv had (another BUILD, or an old native wheel of the same version).
"$py" -m pip uninstall -q -y llama-cpp-python >/dev/null 2>&1 || true
"$py" -m pip install -q "$dir"/llama_cpp_python-"$version"-*.whl
echo "llama-cpp-python $version installed: $build build from $dir"
