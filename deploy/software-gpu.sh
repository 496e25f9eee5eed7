#!/usr/bin/env bash
# Software Vulkan for LiteRT's GPU accelerator on a machine without a GPU (CI, laptops).
#
# LiteRT's CompiledModel runs its WebGPU accelerator on any Vulkan driver. SwiftShader, the
# CPU Vulkan driver that Chromium ships, gives the same GPU-delegate code path, so tests can
# check which ops run on the GPU by running them there. Timings on it mean nothing.
#
# Installs the Vulkan loader (libvulkan1) and copies libvk_swiftshader.so and its ICD json out
# of Debian's chromium-common package (downloaded and unpacked, not installed) into
# ${EDGECNN_SWIFTSHADER_DIR:-~/.cache/edgecnn/swiftshader}. edgecnn finds it there.
# Needs apt (Debian/Ubuntu) and root or sudo for the loader. Safe to run again.
#
# It is optional: where it cannot run (macOS, Linux without apt, no root) it says what is skipped
# and exits 0, so `... && bash deploy/software-gpu.sh && edgecnn quickstart` goes on. Without it
# edgecnn runs on the CPU and the GPU checks are skipped (reported as skipped, not passed).
set -euo pipefail
dest="${EDGECNN_SWIFTSHADER_DIR:-$HOME/.cache/edgecnn/swiftshader}"

skip() {
  echo "software GPU skipped: $1. edgecnn runs on the CPU; GPU checks (convert's 'gpu' report, gpu tests) are skipped." >&2
  exit 0
}
[ "$(uname -s)" = Linux ] || skip "SwiftShader from Debian's packages is for Linux ($(uname -s) here)"
command -v apt-get >/dev/null 2>&1 && command -v dpkg >/dev/null 2>&1 || skip "apt-get and dpkg are not available"
sudo=""
if [ "$(id -u)" != 0 ]; then
  command -v sudo >/dev/null 2>&1 || skip "installing libvulkan1 needs root or sudo"
  sudo="sudo"
fi
trap 'skip "a step failed (line $LINENO); run deploy/software-gpu.sh again to see it"' ERR

if ! ldconfig -p 2>/dev/null | grep -q 'libvulkan.so.1'; then
  $sudo apt-get install -y -q --no-install-recommends libvulkan1 >/dev/null \
    || { $sudo apt-get update -q >/dev/null && $sudo apt-get install -y -q --no-install-recommends libvulkan1 >/dev/null; }
fi

if [ -f "$dest/vk_swiftshader_icd.json" ] && [ -f "$dest/libvk_swiftshader.so" ]; then
  echo "software GPU ready: $dest/vk_swiftshader_icd.json"
  exit 0
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
(cd "$work" && apt-get download -q chromium-common >/dev/null 2>&1) \
  || { $sudo apt-get update -q >/dev/null && (cd "$work" && apt-get download -q chromium-common >/dev/null); }
dpkg -x "$work"/chromium-common_*.deb "$work/unpacked"
mkdir -p "$dest"
cp "$work/unpacked/usr/lib/chromium/libvk_swiftshader.so" "$work/unpacked/usr/lib/chromium/vk_swiftshader_icd.json" "$dest/"
echo "software GPU ready: $dest/vk_swiftshader_icd.json"
