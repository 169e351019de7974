#!/usr/bin/env bash
# Installs the Debian packages a target needs, only those that are missing.
#   run:  what the daemon needs (a Python 3.11 with venv)
#   test: run + the real peers the tests start (nginx-rtmp, kamailio, baresip, ffmpeg) and chromium
#   bench: test + espeak-ng (speech for bench.coder) and a C compiler (the pesq package builds from source)
set -euo pipefail
target="${1:-run}"

packages=()
if ! python3 -c 'import sys, venv, ensurepip; assert sys.version_info >= (3, 11)' 2>/dev/null; then
  packages+=(python3 python3-venv python3-dev)
fi
# The media's compiled fast path (rtp/_fast.c) is built by pip: a C compiler and Python's headers.
command -v gcc >/dev/null || packages+=(gcc)
python3 -c 'import sysconfig, os, sys; sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))' 2>/dev/null \
  || packages+=(python3-dev)
if [ "$target" = "test" ] || [ "$target" = "bench" ]; then
  packages+=(nginx libnginx-mod-rtmp kamailio kamailio-tls-modules baresip baresip-ffmpeg ffmpeg openssl libnginx-mod-stream systemd)
  packages+=(iproute2)  # network namespaces, ss: the fault tests
  packages+=(postgresql redis-server prometheus)  # history.url and [cluster] against the real servers; promtool
  packages+=(chromium)  # the web console's browser tests (driven by playwright-core from npm)
  command -v npm >/dev/null || packages+=(nodejs npm)
fi
if [ "$target" = "bench" ]; then
  packages+=(espeak-ng)
fi

missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
[ "${#missing[@]}" -eq 0 ] && exit 0

if ! command -v apt-get >/dev/null; then
  echo "missing packages: ${missing[*]} (install them with your package manager)" >&2
  exit 1
fi
sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
echo "installing Debian packages: ${missing[*]}"
$sudo apt-get update -q
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
