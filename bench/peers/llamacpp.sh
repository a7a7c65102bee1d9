#!/usr/bin/env bash
# Builds the llama.cpp peer (CPU only, Release) from the llama.cpp tree vendored in the
# llama-cpp-python source package on PyPI, plus our small reference driver
# bench/peers/llamacpp_ref.cpp linked against its libllama.
#
# usage: bench/peers/llamacpp.sh BUILD_DIR [SDIST_TARBALL]
#   BUILD_DIR      where to extract and build (outside the repo), e.g. /work/llamacpp-build
#   SDIST_TARBALL  llama_cpp_python-<ver>.tar.gz; default: $LLAMACPP_SDIST, else
#                  /tmp/dl/llama_cpp_python-0.3.36.tar.gz, else
#                  `pip download --no-deps --no-binary :all: llama-cpp-python==0.3.36`
# env: JOBS (default 2), LLAMACPP_TARGETS (default below), LLAMACPP_NATIVE (ON|OFF, default ON),
#      LLAMACPP_PARITY (0|1, default 0): 1 builds the reference for squeeze's bit-level parity tests
#      (`--numerics llamacpp`): GGML_NATIVE=OFF with AVX/AVX2/FMA/F16C only, no weight repacking
#      (GGML_CPU_REPACK=OFF), no llamafile sgemm (GGML_LLAMAFILE=OFF) and -ffp-contract=off, so every
#      matmul goes through ggml's plain AVX2 vec_dot kernels and scalar C code is not silently fused
#      into FMAs (which would make its rounding depend on the compiler). Use a separate BUILD_DIR
#      (e.g. /work/llamacpp-parity); the default native build is the one to benchmark against.
#
# Results: BUILD_DIR/build/bin/{llama-perplexity,llama-bench,llama-simple,llama-tokenize,llamacpp_ref}
#          BUILD_DIR/VERSION (sdist version and llama.cpp commit)
set -euo pipefail

VERSION=0.3.36
# llama.cpp commit vendored by llama-cpp-python 0.3.36 (from its CHANGELOG.md)
LLAMACPP_COMMIT_DEFAULT=0c1e57098

BUILD_DIR=${1:?usage: $0 BUILD_DIR [SDIST_TARBALL]}
SDIST=${2:-${LLAMACPP_SDIST:-/tmp/dl/llama_cpp_python-$VERSION.tar.gz}}
JOBS=${JOBS:-2}
TARGETS=${LLAMACPP_TARGETS:-"llama-perplexity llama-bench llama-simple llama-tokenize"}
# llama-server is only configured when asked for (it is the peer of squeeze serve).
SERVER=OFF
[[ " $TARGETS " == *" llama-server "* ]] && SERVER=ON
NATIVE=${LLAMACPP_NATIVE:-ON}
PARITY=${LLAMACPP_PARITY:-0}
EXTRA_CMAKE=()
if [[ "$PARITY" == 1 ]]; then
    NATIVE=OFF
    EXTRA_CMAKE=(-DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=OFF
                 -DGGML_AVX512=OFF -DGGML_AVX_VNNI=OFF
                 -DGGML_CPU_REPACK=OFF -DGGML_LLAMAFILE=OFF
                 "-DCMAKE_C_FLAGS=-ffp-contract=off" "-DCMAKE_CXX_FLAGS=-ffp-contract=off")
fi
REPO=$(cd "$(dirname "$0")/../.." && pwd)

mkdir -p "$BUILD_DIR"
BUILD_DIR=$(cd "$BUILD_DIR" && pwd)

if [[ ! -f "$SDIST" ]]; then
    mkdir -p "$BUILD_DIR/dl"
    python3 -m pip download --no-deps --no-binary :all: -d "$BUILD_DIR/dl" "llama-cpp-python==$VERSION"
    SDIST=$(ls "$BUILD_DIR"/dl/llama_cpp_python-*.tar.gz | head -1)
fi

SRC_TOP="$BUILD_DIR/src"
if [[ ! -d "$SRC_TOP/vendor/llama.cpp" ]]; then
    rm -rf "$SRC_TOP" && mkdir -p "$SRC_TOP"
    tar xzf "$SDIST" -C "$SRC_TOP" --strip-components=1
fi
SRC="$SRC_TOP/vendor/llama.cpp"
COMMIT=$(sed -n 's/.*update llama.cpp to ggml-org\/llama.cpp@\([0-9a-f]*\).*/\1/p' "$SRC_TOP/CHANGELOG.md" | head -1)
COMMIT=${COMMIT:-$LLAMACPP_COMMIT_DEFAULT}
SDIST_VER=$(sed -n 's/^Version: //p' "$SRC_TOP/PKG-INFO" | head -1)

cmake -S "$SRC" -B "$BUILD_DIR/build" \
    -DCMAKE_BUILD_TYPE=Release \
    -DBUILD_SHARED_LIBS=ON \
    -DGGML_NATIVE="$NATIVE" \
    -DGGML_CUDA=OFF -DGGML_METAL=OFF -DGGML_VULKAN=OFF -DGGML_RPC=OFF \
    -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_SERVER=$SERVER -DLLAMA_BUILD_APP=OFF \
    -DLLAMA_BUILD_EXAMPLES=ON -DLLAMA_BUILD_TOOLS=ON \
    -DLLAMA_OPENSSL=OFF -DLLAMA_CURL=OFF -DLLAMA_BUILD_UI=OFF -DLLAMA_USE_PREBUILT_UI=OFF \
    -DLLAMA_BUILD_COMMIT="$COMMIT" -DLLAMA_BUILD_NUMBER=0 \
    "${EXTRA_CMAKE[@]}"

# shellcheck disable=SC2086
cmake --build "$BUILD_DIR/build" --config Release -j "$JOBS" --target llama $TARGETS

# Our reference driver (greedy tokens, per-position argmax) against the same libllama.
if [[ -f "$REPO/bench/peers/llamacpp_ref.cpp" ]]; then
    ${CXX:-g++} -O2 -std=c++17 -o "$BUILD_DIR/build/bin/llamacpp_ref" "$REPO/bench/peers/llamacpp_ref.cpp" \
        -I "$SRC/include" -I "$SRC/ggml/include" \
        -L "$BUILD_DIR/build/bin" -lllama -lggml -lggml-base \
        -Wl,-rpath,"$BUILD_DIR/build/bin"
fi

printf 'llama-cpp-python sdist %s\nllama.cpp commit %s\nsdist %s\nGGML_NATIVE %s\n' \
    "$SDIST_VER" "$COMMIT" "$(basename "$SDIST")" "$NATIVE" > "$BUILD_DIR/VERSION"
if [[ "$PARITY" == 1 ]]; then
    printf 'parity build: %s\n' "${EXTRA_CMAKE[*]}" >> "$BUILD_DIR/VERSION"
fi
cat "$BUILD_DIR/VERSION"
ls "$BUILD_DIR/build/bin"
