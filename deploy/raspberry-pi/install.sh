#!/usr/bin/env bash
# edgecnn's device runtime on a Raspberry Pi: Raspberry Pi OS bookworm or trixie, 64-bit.
#
#   bash install.sh [PACKAGE]        PACKAGE: what pip installs (default: edgecnn; a checkout's
#                                    path or a wheel also work)
#   EDGECNN_VENV=~/edgecnn           where the virtual environment goes (default ~/edgecnn)
#   EDGECNN_NO_APT=1                 do not touch apt (no Picamera2 then, unless already there)
#
# The venv is made with --system-site-packages so that it sees the system's Picamera2 (a
# Raspberry Pi OS package with native parts that pip cannot build), and gets the base install:
# NumPy, OpenCV (headless) and ai-edge-litert's aarch64 wheel. No TensorFlow.
set -euo pipefail

package="${1:-edgecnn}"
venv="${EDGECNN_VENV:-$HOME/edgecnn}"
say() { echo "edgecnn install: $*" >&2; }
fail() { say "$1"; say "fix: $2"; exit 1; }

# 64-bit userland only: ai-edge-litert publishes aarch64 wheels, none for 32-bit ARM (armhf),
# and a 32-bit Raspberry Pi OS may still run a 64-bit kernel, so ask dpkg, not uname
arch="$(dpkg --print-architecture 2>/dev/null || uname -m)"
case "$arch" in
  arm64|aarch64) ;;
  armhf|armel|armv7l|armv6l)
    fail "this is a 32-bit system ($arch); LiteRT has no wheel for it." \
         "flash the 64-bit Raspberry Pi OS (bookworm or trixie), or use tflite_runtime 2.14 on a 64-bit image (README.md)." ;;
  *) say "this is not a Raspberry Pi ($arch): installing anyway (the same runtime runs on any 64-bit Linux)" ;;
esac

codename="unknown"
[ -r /etc/os-release ] && codename="$(. /etc/os-release && echo "${VERSION_CODENAME:-unknown}")"
case "$codename" in
  bookworm|trixie) ;;
  *) say "OS release '$codename' is not bookworm or trixie: not tested there, going on" ;;
esac

python="$(command -v python3 || true)"
[ -n "$python" ] || fail "python3 is missing." "sudo apt install python3 python3-venv"
version="$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
case "$version" in
  3.10|3.11|3.12|3.13|3.14) ;;  # ai-edge-litert 2.3 has aarch64 wheels for CPython 3.10-3.14
  *) fail "Python $version has no ai-edge-litert wheel." "use the OS's python3 (bookworm: 3.11, trixie: 3.13)." ;;
esac

if [ -z "${EDGECNN_NO_APT:-}" ] && command -v apt-get >/dev/null; then
  sudo_cmd=""; [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get install -y python3-venv >/dev/null || fail "apt could not install python3-venv." "sudo apt update, then run this again."
  if $sudo_cmd apt-get install -y python3-picamera2 >/dev/null 2>&1; then
    say "Picamera2 installed (SOURCE picamera)"
  else
    say "python3-picamera2 is not available from apt here (not Raspberry Pi OS?): Pi camera skipped, USB cameras work"
  fi
else
  say "apt skipped: Picamera2 only if the system already has it"
fi

# The system's NumPy is what Picamera2 and its compiled helpers were built against. Where it is
# NumPy 1 (bookworm: 1.24), keep the venv on NumPy 1 too: the newest opencv-python-headless
# wants NumPy 2, which would shadow the system's and break modules compiled for NumPy 1.
constraint=()
system_numpy="$("$python" -c 'import numpy; print(numpy.__version__)' 2>/dev/null || true)"
if [ "${system_numpy%%.*}" = "1" ]; then
  say "the system has NumPy $system_numpy: keeping the venv on NumPy 1 (numpy<2) for Picamera2"
  constraint=("numpy<2")
fi

say "making $venv (Python $version, sees system packages)"
"$python" -m venv --system-site-packages "$venv"
"$venv/bin/python" -m pip install --quiet --upgrade pip
"$venv/bin/python" -m pip install --quiet "$package" "${constraint[@]}"
"$venv/bin/python" - <<'PY'
import importlib.util
import ai_edge_litert, cv2, numpy
print(f"edgecnn install: ok: NumPy {numpy.__version__}, OpenCV {cv2.__version__}, LiteRT at "
      f"{ai_edge_litert.__path__[0]}; Picamera2 {'present' if importlib.util.find_spec('picamera2') else 'absent'}")
PY
say "next: $venv/bin/edgecnn benchmark MODEL.tflite; $venv/bin/edgecnn predict MODEL.tflite picamera --out runs/cam"
