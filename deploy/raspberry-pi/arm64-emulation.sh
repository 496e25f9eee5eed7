#!/usr/bin/env bash
# arm64 emulation for testing the Raspberry Pi install on an x86-64 Linux machine (CI, a laptop).
#
# Installs qemu-user-static, binfmt-support and debootstrap from Debian's packages and makes the
# kernel run arm64 binaries through qemu (binfmt_misc), so the test suite can build a Debian
# bookworm arm64 root with debootstrap, install edgecnn there as a Pi owner would
# (deploy/raspberry-pi/install.sh) and run `edgecnn predict` and `benchmark` in it.
# tests/test_raspberry_pi.py does that; it caches the root under ~/.cache/edgecnn/pi.
#
# Optional: where it cannot run (not Linux x86-64, no apt, no root) it says what is skipped and
# exits 0; the emulation test is then skipped (reported, not passed) unless
# EDGECNN_REQUIRE_PI_EMULATION=1, as CI sets. Safe to run again.
set -euo pipefail

skip() {
  echo "arm64 emulation skipped: $1. The Raspberry Pi emulation test will be skipped." >&2
  exit 0
}
[ "$(uname -s)" = Linux ] || skip "it needs Linux ($(uname -s) here)"
[ "$(uname -m)" = x86_64 ] || [ "$(uname -m)" = aarch64 ] || skip "host $(uname -m) is not x86-64"
command -v apt-get >/dev/null 2>&1 || skip "apt-get is not available"
[ "$(id -u)" = 0 ] || skip "binfmt registration and chroot need root"
trap 'skip "a step failed (line $LINENO); run deploy/raspberry-pi/arm64-emulation.sh again to see it"' ERR

if [ "$(uname -m)" = aarch64 ]; then
  echo "arm64 emulation: not needed on an arm64 host"
else
  if ! command -v debootstrap >/dev/null || [ ! -e /usr/libexec/qemu-binfmt/aarch64-binfmt-P ]; then
    apt-get install -y -q qemu-user-static binfmt-support debootstrap >/dev/null \
      || { apt-get update -q >/dev/null && apt-get install -y -q qemu-user-static binfmt-support debootstrap >/dev/null; }
  fi
  mountpoint -q /proc/sys/fs/binfmt_misc || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
  update-binfmts --enable qemu-aarch64 >/dev/null 2>&1 || true
  grep -q enabled /proc/sys/fs/binfmt_misc/qemu-aarch64 2>/dev/null || skip "qemu-aarch64 is not registered with binfmt_misc"
fi
echo "arm64 emulation ready: $(command -v debootstrap), qemu-aarch64 $(cat /proc/sys/fs/binfmt_misc/qemu-aarch64 2>/dev/null | head -1)"
