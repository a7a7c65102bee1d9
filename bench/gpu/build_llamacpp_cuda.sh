#!/usr/bin/env bash
# Builds the llama.cpp peer with CUDA on the device machine: llama-bench and llama-quantize,
# Release, CUDA for sm_90a (CUDA_ARCH), flash-attention kernels on (GGML_CUDA_FA, the default),
# from the trimmed source tarball of bench/gpu/pack_llamacpp.sh (llama.cpp as vendored by the
# llama-cpp-python 0.3.36 sdist).
#
# usage: bench/gpu/build_llamacpp_cuda.sh [TARBALL [BUILD_DIR]]      (from anywhere)
#   TARBALL    default .peers/llama-cpp-cuda-src.tar.xz
#   BUILD_DIR  default .peers/build-llamacpp-cuda (inside the repo, git-ignored, so that it
#              survives between calls while the device machine stays warm); the sources go to
#              BUILD_DIR-src. Binaries: BUILD_DIR/bin/llama-bench, BUILD_DIR/bin/llama-quantize.
# Carry only the tarball to the device (carry ".peers/llama-cpp-cuda-src.tar.xz", not ".peers":
# a carried path replaces the one there, and with it the build). Later calls that carried other
# files under .peers/ (or nothing, after one that did) have been seen to leave .peers/ without the
# build: to keep it across such calls, build outside the repo (BUILD_DIR /tmp/lcpp, then
# LLAMA_BENCH=/tmp/lcpp/bin/llama-bench for bench_8b.sh); /tmp survives while the machine is warm.
#
# Does nothing but print the version when BUILD_DIR/bin/llama-bench exists (FORCE=1 rebuilds).
# The build (about 150 CUDA files) is stopped after BUILD_TIMEOUT_S seconds (default 540, under
# the device's 10-minute command limit) and exits 2 then: run the script again and ninja/make goes
# on where it stopped. Log: BUILD_DIR/build.log (and configure.log). Prints the llama.cpp commit.
# env: CUDA_ARCH (default 90a), JOBS (default nproc), BUILD_TIMEOUT_S, FORCE.
case "${1:-}" in -h|--help) sed -n '2,/^case /p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0;; esac
set -euo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
TARBALL=${1:-$REPO/.peers/llama-cpp-cuda-src.tar.xz}
BUILD=${2:-$REPO/.peers/build-llamacpp-cuda}
ARCH=${CUDA_ARCH:-90a}
JOBS=${JOBS:-$(nproc)}
LIMIT=${BUILD_TIMEOUT_S:-540}
T0=$(date +%s)

mkdir -p "$BUILD"
BUILD=$(cd "$BUILD" && pwd)
SRC_TOP=$BUILD-src
SRC=$SRC_TOP/llama.cpp
if [[ -x "$BUILD/bin/llama-bench" && "${FORCE:-0}" != 1 ]]; then
  echo "llama-bench already built: $BUILD/bin/llama-bench"
  cat "$BUILD/VERSION" 2>/dev/null || true
  exit 0
fi

if [[ ! -f "$SRC/CMakeLists.txt" || "$TARBALL" -nt "$SRC/CMakeLists.txt" ]]; then
  [[ -f "$TARBALL" ]] || { echo "no source tarball at $TARBALL (make it with bench/gpu/pack_llamacpp.sh and carry it)" >&2; exit 1; }
  rm -rf "$SRC_TOP" && mkdir -p "$SRC_TOP"
  tar xJf "$TARBALL" -C "$SRC_TOP"
  touch "$SRC/CMakeLists.txt"
fi
COMMIT=$(sed -n 's/^llama.cpp commit //p' "$SRC/PEER_VERSION" 2>/dev/null | head -1)
COMMIT=${COMMIT:-unknown}
echo "llama.cpp commit $COMMIT ($(head -1 "$SRC/PEER_VERSION" 2>/dev/null))"

GEN=()
command -v ninja >/dev/null && GEN=(-G Ninja)
if [[ ! -f "$BUILD/CMakeCache.txt" ]]; then
  if ! cmake -S "$SRC" -B "$BUILD" "${GEN[@]}" \
      -DCMAKE_BUILD_TYPE=Release \
      -DGGML_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES="$ARCH" -DGGML_CUDA_FA=ON -DGGML_CUDA_NCCL=OFF \
      -DGGML_NATIVE=ON \
      -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF \
      -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF -DLLAMA_BUILD_APP=OFF \
      -DLLAMA_BUILD_TOOLS=ON \
      -DLLAMA_BUILD_COMMIT="$COMMIT" -DLLAMA_BUILD_NUMBER=0 >"$BUILD/configure.log" 2>&1; then
    tail -30 "$BUILD/configure.log"
    rm -f "$BUILD/CMakeCache.txt"
    echo "llama.cpp configure FAILED (see $BUILD/configure.log)"
    exit 1
  fi
  echo "configured ($(( $(date +%s) - T0 )) s)"
fi

set +e
timeout "$LIMIT" cmake --build "$BUILD" --config Release -j "$JOBS" --target llama-bench llama-quantize >>"$BUILD/build.log" 2>&1
rc=$?
set -e
if [[ $rc -eq 124 ]]; then
  echo "llama.cpp build not finished after $LIMIT s (at step $(grep -o '^\[[0-9]*/[0-9]*\]' "$BUILD/build.log" | tail -1)): run again to continue"
  exit 2
elif [[ $rc -ne 0 ]]; then
  grep -E "error|Error" "$BUILD/build.log" | head -40
  echo "llama.cpp build FAILED (rc $rc, see $BUILD/build.log)"
  exit 1
fi
printf 'llama.cpp commit %s\n%s\nCUDA arch %s, nvcc %s\n' "$COMMIT" "$(head -1 "$SRC/PEER_VERSION")" "$ARCH" \
  "$(nvcc --version 2>/dev/null | sed -n 's/.*release \([0-9.]*\).*/\1/p')" >"$BUILD/VERSION"
cat "$BUILD/VERSION"
echo "built $BUILD/bin/llama-bench in $(( $(date +%s) - T0 )) s"
