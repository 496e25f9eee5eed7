#!/usr/bin/env bash
# The page's engines (MediaPipe Tasks for Web, LiteRT.js) and its test driver (playwright-core),
# from npm at the versions and checksums package-lock.json pins, into deploy/web/node_modules,
# which the page serves itself (no CDN). Needs Node.js 18+ with npm.
set -euo pipefail
cd "$(dirname "$0")"
if ! command -v npm >/dev/null; then
  echo "npm is missing: install Node.js 18 or newer (Debian: apt-get install nodejs npm)" >&2
  exit 1
fi
npm ci --no-audit --no-fund --loglevel=error
echo "deploy/web is ready: python3 deploy/web/serve.py, then open http://127.0.0.1:8000/"
