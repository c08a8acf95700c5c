#!/usr/bin/env bash
# Installs what the project needs on a fresh Debian machine, idempotently:
#   1. the system libraries Pillow-SIMD builds against (apt-get, as root or with sudo);
#   2. Python 3.12 (pyenv's 3.12.x where pyenv exists, else python3.12 on PATH);
#   3. the virtualenv at .venv with requirements-dev.txt, and the project installed into it (editable).
#   4. the real Uppy from npm for the browser tests (npm ci in tests/e2e/uppy).
#   5. the reference thumbhash.js for the ThumbHash test (npm ci in tests/processors/thumbhash_js).
#   6. sharp for the processing benchmark and its test (npm ci in benchmarks/bench_sharp).
# `make demo`, `make test` and `make up` call it; it does nothing when all is in place.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(build-essential libjpeg62-turbo-dev zlib1g-dev libwebp-dev liblcms2-dev libtiff-dev libfreetype-dev postgresql redis-server chromium)

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  echo "bootstrap: installing system packages: ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

find_python() {
  if command -v pyenv >/dev/null 2>&1; then
    local version
    version=$(pyenv versions --bare 2>/dev/null | grep -E '^3\.12(\.[0-9]+)?$' | sort -V | tail -n 1 || true)
    if [ -n "$version" ] && [ -x "$(pyenv prefix "$version")/bin/python" ]; then
      echo "$(pyenv prefix "$version")/bin/python"
      return
    fi
  fi
  for candidate in python3.12 /usr/bin/python3.12 /usr/local/bin/python3.12; do
    if command -v "$candidate" >/dev/null 2>&1; then command -v "$candidate"; return; fi
  done
  echo "bootstrap: Python 3.12 is required (pyenv install 3.12, or apt-get install python3.12)" >&2
  exit 1
}

stamp=.venv/.installed
if [ ! -x .venv/bin/python ] || ! .venv/bin/python -c 'import sys; assert sys.version_info[:2] == (3, 12)' 2>/dev/null; then
  python=$(find_python)
  echo "bootstrap: creating .venv with $python"
  rm -rf .venv
  "$python" -m venv .venv
fi
if [ ! -f "$stamp" ] || [ requirements.txt -nt "$stamp" ] || [ requirements-image.txt -nt "$stamp" ] || [ requirements-dev.txt -nt "$stamp" ]; then
  echo "bootstrap: installing Python packages (Pillow-SIMD builds from source; a few minutes the first time)"
  .venv/bin/python -m pip install -q --upgrade pip wheel setuptools
  # AVX2 where the CPU has it: Pillow-SIMD's resampling and colour paths use it.
  cflags=""
  grep -qw avx2 /proc/cpuinfo 2>/dev/null && cflags="-mavx2"
  # The Pillow plugins (pillow-heif, pillow-avif-plugin) declare a dependency on Pillow:
  # everything else first, from copies of the requirement files without them, then they
  # alone with --no-deps, so Pillow itself is never pulled in.
  no_deps='^(pillow-heif|pillow-avif-plugin)=='
  reqs=$(mktemp -d)
  # requirements.txt is the Lambda's: its last line names vendor/ (make vendor), which a
  # local install does without; the image libraries come from requirements-image.txt.
  { grep -vE '^-r vendor/' requirements.txt; grep -vE "$no_deps" requirements-image.txt; } >"$reqs/requirements.txt"
  sed "s|^-r requirements.txt|-r $reqs/requirements.txt|" requirements-dev.txt >"$reqs/requirements-dev.txt"
  CC="cc $cflags" .venv/bin/python -m pip install -q -r "$reqs/requirements-dev.txt"
  # shellcheck disable=SC2046  # one argument per requirement line
  .venv/bin/python -m pip install -q --no-deps $(grep -E "$no_deps" requirements-image.txt)
  rm -rf "$reqs"
  # Pillow-SIMD and Pillow share the PIL namespace; nothing may replace the SIMD build.
  if .venv/bin/python -m pip show pillow >/dev/null 2>&1; then
    echo "bootstrap: a dependency pulled in Pillow; restoring Pillow-SIMD" >&2
    .venv/bin/python -m pip uninstall -q -y pillow pillow-simd
    CC="cc $cflags" .venv/bin/python -m pip install -q --no-deps --force-reinstall "$(grep -E '^pillow-simd' requirements-image.txt)"
  fi
  touch "$stamp"
fi
# The project itself, editable, so that its packages (chalicelib, infra, local_stack, ...)
# import as themselves from anywhere, with no sys.path edits; again whenever pyproject.toml
# changes (its package list). --no-deps: the requirement files pinned everything above.
project_stamp=.venv/.project-installed
if [ ! -f "$project_stamp" ] || [ pyproject.toml -nt "$project_stamp" ] || [ "$stamp" -nt "$project_stamp" ]; then
  echo "bootstrap: installing the project into .venv (pip install -e . --no-deps)"
  .venv/bin/python -m pip install -q --no-deps --no-build-isolation -e .
  touch "$project_stamp"
fi

# The browser tests load the real Uppy bundle (tests/e2e/test_browser_gallery.py): the
# versions package-lock.json pins, from the npm registry. Node itself comes from apt unless
# some other install (nodesource, nvm) already put npm on the PATH.
uppy=tests/e2e/uppy
if ! command -v npm >/dev/null 2>&1; then
  echo "bootstrap: installing npm (for the Uppy browser test)"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq npm >/dev/null
fi
if [ ! -f "$uppy/node_modules/.package-lock.json" ] || [ "$uppy/package-lock.json" -nt "$uppy/node_modules/.package-lock.json" ]; then
  echo "bootstrap: installing Uppy for the browser tests (npm ci in $uppy)"
  (cd "$uppy" && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error)
fi

# The ThumbHash test (tests/processors/test_processors_thumbhash.py) runs the reference
# thumbhash.js with node on the same pixels as processors/thumbhash.py.
thumbhash_js=tests/processors/thumbhash_js
if [ ! -f "$thumbhash_js/node_modules/.package-lock.json" ] || [ "$thumbhash_js/package-lock.json" -nt "$thumbhash_js/node_modules/.package-lock.json" ]; then
  echo "bootstrap: installing the reference thumbhash.js (npm ci in $thumbhash_js)"
  (cd "$thumbhash_js" && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error)
fi

# sharp, the side-by-side reference of the processing benchmark and of its test
# (tests/processors/test_processors_bench_tools.py): its libvips comes in an npm package.
bench_sharp=benchmarks/bench_sharp
if [ ! -f "$bench_sharp/node_modules/.package-lock.json" ] || [ "$bench_sharp/package-lock.json" -nt "$bench_sharp/node_modules/.package-lock.json" ]; then
  echo "bootstrap: installing sharp for the processing benchmark (npm ci in $bench_sharp)"
  (cd "$bench_sharp" && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error)
fi
