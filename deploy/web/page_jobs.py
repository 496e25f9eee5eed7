"""The page's jobs from Python: a site folder (the page's files linked, the models and images
beside them under files/), served on 127.0.0.1 by serve.py and driven in headless Chromium by
test/drive.mjs. tests/test_browser.py and benchmarks/browser_detectors.py run the page this way."""

from __future__ import annotations

import json
import subprocess
import threading
from pathlib import Path

from serve import make_server  # beside this file

WEB = Path(__file__).resolve().parent
PAGE_FILES = ("index.html", "app.js", "edgecnn", "node_modules")


def make_site(folder: Path) -> Path:
    """``folder`` with the page's files linked in; returns its (new) files/ folder."""
    for name in PAGE_FILES:
        (folder / name).symlink_to(WEB / name)
    (folder / "files").mkdir()
    return folder / "files"


def run_jobs(site: Path, jobs: list[dict], chromium: str, screenshots: Path, timeout: int = 1800) -> dict:
    """drive.mjs's output for ``jobs`` (see drive.mjs) on the page served from ``site``."""
    server = make_server(port=0, folder=site, quiet=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        (site / "jobs.json").write_text(json.dumps({
            "url": f"http://127.0.0.1:{server.server_address[1]}/index.html", "chromium": chromium,
            "screenshots": str(screenshots), "jobs": jobs}))
        result = subprocess.run(["node", str(WEB / "test" / "drive.mjs"), str(site / "jobs.json"), str(site / "out.json")],
                                capture_output=True, text=True, timeout=timeout, check=False)
    finally:
        server.shutdown()
    if result.returncode != 0:
        raise RuntimeError(f"drive.mjs failed: {result.stderr[-3000:]}")
    return json.loads((site / "out.json").read_text())
