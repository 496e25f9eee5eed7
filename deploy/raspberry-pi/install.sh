#!/usr/bin/env bash
# edgecnn's device runtime on a Raspberry Pi: Raspberry Pi OS bookworm or trixie, 64-bit.
#
#   bash install.sh                  installs the edgecnn checkout this script sits in
#   bash install.sh edgecnn-X-py3-none-any.whl    or a wheel (made on a workstation with
#                                    `pip wheel --no-deps -w dist .` in a checkout), or a checkout's path
#   bash install.sh [...] --service MODEL.tflite [SOURCE]
#                                    then writes the camera service for you (service.sh)
#   EDGECNN_VENV=~/edgecnn-venv      where the virtual environment goes (default ~/edgecnn-venv)
#   EDGECNN_NO_APT=1                 do not touch apt (no Picamera2 then, unless already there)
#
# It never installs edgecnn by name from a package index: that name there is not edgecnn's, and
# whoever registers it would run code on your Pi. Only the runtime's own dependencies (NumPy,
# OpenCV headless, ai-edge-litert) come from the index.
#
# The venv is made with --system-site-packages so that it sees the system's Picamera2 (a
# Raspberry Pi OS package with native parts that pip cannot build), and gets the base install:
# NumPy, OpenCV (headless) and ai-edge-litert's aarch64 wheel. No TensorFlow.
set -euo pipefail

venv="${EDGECNN_VENV:-$HOME/edgecnn-venv}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
say() { echo "edgecnn install: $*" >&2; }
fail() { say "$1"; say "fix: $2"; exit 1; }

package="" service=()
while [ "$#" -gt 0 ]; do
  case "$1" in
    --service) shift; [ "$#" -ge 1 ] || fail "--service needs a model." "bash install.sh --service MODEL.tflite [SOURCE]"
               service=("$@"); break ;;
    -h|--help) sed -n '2,14p' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) [ -z "$package" ] || fail "more than one thing to install: '$package' and '$1'." "pass one wheel or checkout."
       package="$1"; shift ;;
  esac
done
if [ -z "$package" ]; then
  package="$(cd "$here/../.." && pwd)"
  grep -qs '^name = "edgecnn"' "$package/pyproject.toml" || fail "no argument, and $package is not an edgecnn checkout." \
    "run the install.sh of a checkout, or pass a wheel: bash install.sh edgecnn-X-py3-none-any.whl"
  say "installing the checkout at $package"
elif [ -f "$package" ] && [[ "$package" == *.whl ]]; then
  package="$(cd "$(dirname "$package")" && pwd)/$(basename "$package")"  # a path, never a name, to pip
  say "installing the wheel $package"
elif [ -d "$package" ] && grep -qs '^name = "edgecnn"' "$package/pyproject.toml"; then
  package="$(cd "$package" && pwd)"
  say "installing the checkout at $package"
else
  fail "'$package' is neither an edgecnn wheel (.whl) nor an edgecnn checkout; install.sh does not fetch edgecnn by name from a package index (that name there is not ours)." \
       "pass the wheel you built (pip wheel --no-deps -w dist . in a checkout) and copied over, or a checkout's folder."
fi

# 64-bit userland only: ai-edge-litert publishes aarch64 wheels, none for 32-bit ARM (armhf),
# and a 32-bit Raspberry Pi OS may still run a 64-bit kernel, so ask dpkg, not uname
arch="$(dpkg --print-architecture 2>/dev/null || uname -m)"
case "$arch" in
  arm64|aarch64) ;;
  armhf|armel|armv7l|armv6l)
    fail "this is a 32-bit system ($arch); LiteRT has no wheel for it." \
         "flash the 64-bit Raspberry Pi OS (bookworm or trixie); see 'Which runtime each OS gets' in deploy/raspberry-pi/README.md." ;;
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
  # no recommends: on a Lite image they would bring the desktop stack
  if $sudo_cmd apt-get install -y --no-install-recommends python3-picamera2 >/dev/null 2>&1; then
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
if [ "${#service[@]}" -gt 0 ]; then
  EDGECNN_VENV="$venv" bash "$here/service.sh" "${service[@]}"
else
  say "next: $venv/bin/edgecnn benchmark MODEL.tflite; $venv/bin/edgecnn predict MODEL.tflite picamera --out runs/cam"
  say "at boot: bash $here/service.sh MODEL.tflite (writes the camera service for $(id -un))"
fi
