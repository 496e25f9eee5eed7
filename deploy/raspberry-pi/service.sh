#!/usr/bin/env bash
# The camera service for the user who runs this: a systemd unit that runs `edgecnn predict` at
# boot and restarts it on failure, and its environment file, written with this user's name, home
# and the venv install.sh made. (`install.sh --service MODEL.tflite` runs this after installing.)
#
#   bash service.sh MODEL.tflite [SOURCE]   SOURCE: picamera (default), picamera:1, 0 for
#                                            /dev/video0, a stream URL
#   EDGECNN_VENV=~/edgecnn-venv              the venv install.sh made (default ~/edgecnn-venv)
#   EDGECNN_OUT=~/edgecnn-runs/camera        where predictions.jsonl goes
#   EDGECNN_UNIT_DIR=/etc/systemd/system     where the unit goes (sudo is used where needed)
#   EDGECNN_CONFIG_DIR=/etc/edgecnn          where camera.env goes
#
# The service writes predictions.jsonl only (no annotated video), rotated at 10 MB with 5 old
# files kept: at most 60 MB on the SD card however long it runs. Edit camera.env to change that.
set -euo pipefail

say() { echo "edgecnn service: $*" >&2; }
fail() { say "$1"; say "fix: $2"; exit 1; }

[ "$#" -ge 1 ] || fail "no model given." "bash service.sh MODEL.tflite [SOURCE]"
case "$1" in *.tflite) ;; *) fail "'$1' is not a .tflite file." "pass the model file the service should run." ;; esac
[ -f "$1" ] || fail "model '$1' does not exist." "copy the .tflite file to this device first, then pass its path."
model="$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"
source_name="${2:-picamera}"

# run with sudo, the service is still for the user who called sudo
user="$(id -un)"
if [ "$(id -u)" -eq 0 ] && [ -n "${SUDO_USER:-}" ]; then user="$SUDO_USER"; fi
home="$(getent passwd "$user" | cut -d: -f6)"
[ -n "$home" ] || home="$HOME"
venv="${EDGECNN_VENV:-$home/edgecnn-venv}"
edgecnn="$venv/bin/edgecnn"
[ -x "$edgecnn" ] || fail "$edgecnn is missing." "run install.sh first (EDGECNN_VENV if it went elsewhere)."
out="${EDGECNN_OUT:-$home/edgecnn-runs/camera}"
unit_dir="${EDGECNN_UNIT_DIR:-/etc/systemd/system}"
config_dir="${EDGECNN_CONFIG_DIR:-/etc/edgecnn}"
case "$edgecnn$model$source_name$out$config_dir" in
  *\'*|*\"*|*\ *|*\$*|*\\*) fail "a path holds a space, quote, \$ or backslash." "use plain paths for the venv, model and output." ;;
esac

sudo_cmd=""
for dir in "$unit_dir" "$config_dir"; do
  mkdir -p "$dir" 2>/dev/null || true
  if [ ! -w "$dir" ]; then
    [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  fi
done
[ -z "$sudo_cmd" ] || command -v sudo >/dev/null || fail "$unit_dir or $config_dir is not writable and sudo is missing." \
  "run as root, or set EDGECNN_UNIT_DIR and EDGECNN_CONFIG_DIR to folders you can write."
$sudo_cmd mkdir -p "$unit_dir" "$config_dir"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cat > "$work/camera.env" <<EOF
# Read by edgecnn-camera.service (written by deploy/raspberry-pi/service.sh for $user).
MODEL=$model
SOURCE=$source_name
OUT=$out
OPTIONS=--no-annotated --accelerator cpu --score-threshold 0.4 --rotate-mb 10 --rotate-keep 5
EOF
cat > "$work/edgecnn-camera.service" <<EOF
# edgecnn predict on the camera at boot, for $user (written by deploy/raspberry-pi/service.sh).
# Start: sudo systemctl daemon-reload && sudo systemctl enable --now edgecnn-camera
# Log:   journalctl -u edgecnn-camera -f
# systemctl stop sends SIGTERM, which predict ends like Ctrl-C: exit status 130 with every output
# complete, counted as success here.
[Unit]
Description=edgecnn predict on the camera
Wants=network-online.target
After=network-online.target

[Service]
Type=simple
User=$user
WorkingDirectory=$home
EnvironmentFile=$config_dir/camera.env
# systemd substitutes \${NAME} as one word and \$OPTIONS split at spaces, from camera.env
ExecStart=$edgecnn predict \${MODEL} \${SOURCE} --out \${OUT} \$OPTIONS
Restart=on-failure
RestartSec=5
SuccessExitStatus=130
KillSignal=SIGTERM
TimeoutStopSec=20
# the camera and the video devices
SupplementaryGroups=video

[Install]
WantedBy=multi-user.target
EOF
$sudo_cmd install -m 644 "$work/camera.env" "$config_dir/camera.env"
$sudo_cmd install -m 644 "$work/edgecnn-camera.service" "$unit_dir/edgecnn-camera.service"
say "wrote $unit_dir/edgecnn-camera.service (user $user) and $config_dir/camera.env (model $model, source $source_name, out $out)"
say "next: sudo systemctl daemon-reload && sudo systemctl enable --now edgecnn-camera; journalctl -u edgecnn-camera -f"
