#!/usr/bin/env bash
# Packs the llama.cpp tree vendored in the llama-cpp-python source package into a small
# .tar.xz that can be carried to the device machine (the sdist, 77 MB, is over the 64 MiB carry
# limit; the trimmed tree packs to ~4 MB, 25 MB unpacked). bench/gpu/build_llamacpp_cuda.sh
# builds llama-bench and llama-quantize with CUDA from it there.
#
# usage: bench/gpu/pack_llamacpp.sh [SDIST [OUT.tar.xz]]
#   SDIST   llama_cpp_python-<ver>.tar.gz (default: $LLAMACPP_SDIST, else
#           /tmp/dl/llama_cpp_python-0.3.36.tar.gz; bench/peers/llamacpp.sh says how to get it)
#   OUT     default .peers/llama-cpp-cuda-src.tar.xz (.peers/ is git-ignored through
#           .git/info/exclude: `echo /.peers/ >> .git/info/exclude`)
#
# Kept: what CMake reads and compiles for the CPU and CUDA backends with the tools on and tests,
# examples and the server off (CMakeLists.txt, cmake/, licenses/, include/, src/, common/, ggml/
# less the other backends' folders, tools/ less server/cli/ui, vendor/, app/). Dropped: docs, models
# (vocabulary GGUFs), tests, examples, pocs, benches, the Python packages and the backends
# (Metal, Vulkan, SYCL, OpenCL, CANN, HIP, MUSA, ...) that are only read when switched on. So the
# tree configures only with LLAMA_BUILD_TESTS=OFF, LLAMA_BUILD_EXAMPLES=OFF,
# LLAMA_BUILD_SERVER=OFF and none of the dropped backends.
# The archive holds llama.cpp/ with a file PEER_VERSION (sdist version, llama.cpp commit).
case "${1:-}" in -h|--help) sed -n '2,/^case /p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0;; esac
set -euo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
SDIST=${1:-${LLAMACPP_SDIST:-/tmp/dl/llama_cpp_python-0.3.36.tar.gz}}
OUT=${2:-$REPO/.peers/llama-cpp-cuda-src.tar.xz}
[[ -f "$SDIST" ]] || { echo "no sdist at $SDIST (see bench/peers/llamacpp.sh)" >&2; exit 1; }

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
tar xzf "$SDIST" -C "$TMP"
TOP=$(ls -d "$TMP"/llama_cpp_python-*/ | head -1)
SRC=$TOP/vendor/llama.cpp
[[ -f "$SRC/CMakeLists.txt" ]] || { echo "no vendor/llama.cpp in $SDIST" >&2; exit 1; }

DST=$TMP/pack/llama.cpp
mkdir -p "$DST"
for p in CMakeLists.txt CMakePresets.json LICENSE AUTHORS README.md licenses cmake include src common ggml tools vendor app; do
  [[ -e "$SRC/$p" ]] && cp -a "$SRC/$p" "$DST/"
done
for b in cann et hexagon hip metal musa opencl openvino sycl virtgpu vulkan webgpu zdnn zendnn; do
  rm -rf "$DST/ggml/src/ggml-$b"
done
rm -rf "$DST/tools/server" "$DST/tools/cli" "$DST/tools/ui"

COMMIT=$(sed -n 's/.*update llama.cpp to ggml-org\/llama.cpp@\([0-9a-f]*\).*/\1/p' "$TOP/CHANGELOG.md" | head -1)
SDIST_VER=$(sed -n 's/^Version: //p' "$TOP/PKG-INFO" | head -1)
printf 'llama-cpp-python sdist %s (%s)\nllama.cpp commit %s\n' "$SDIST_VER" "$(basename "$SDIST")" "${COMMIT:-unknown}" \
  >"$DST/PEER_VERSION"

mkdir -p "$(dirname "$OUT")"
tar -C "$TMP/pack" --owner=0 --group=0 --sort=name -cf - llama.cpp | xz -T0 -9 >"$OUT.tmp"
mv "$OUT.tmp" "$OUT"
cat "$DST/PEER_VERSION"
echo "$OUT: $(du -k "$OUT" | cut -f1) KiB ($(du -sk "$DST" | cut -f1) KiB unpacked)"
