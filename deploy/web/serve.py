"""Serve the edgecnn browser page from this folder: python3 deploy/web/serve.py [--port 8000].

Standard library only. Adds what the engines need from a server: the WebAssembly MIME type (for
streaming compilation) and cross-origin isolation (COOP/COEP), which lets LiteRT.js use threads.
Binds to 127.0.0.1 unless --host says otherwise."""

from __future__ import annotations

import argparse
import functools
import http.server
from pathlib import Path

FOLDER = Path(__file__).resolve().parent
TYPES = {".wasm": "application/wasm", ".mjs": "text/javascript", ".js": "text/javascript",
         ".tflite": "application/octet-stream"}


class Handler(http.server.SimpleHTTPRequestHandler):
    extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map, **TYPES}

    def end_headers(self) -> None:
        self.send_header("Cross-Origin-Opener-Policy", "same-origin")
        self.send_header("Cross-Origin-Embedder-Policy", "require-corp")
        self.send_header("Cache-Control", "no-store")
        super().end_headers()

    def log_message(self, format: str, *args) -> None:  # noqa: A002  (the base class's name)
        if not self.server.quiet:
            super().log_message(format, *args)


def make_server(host: str = "127.0.0.1", port: int = 8000, folder: Path = FOLDER,
                quiet: bool = False) -> http.server.ThreadingHTTPServer:
    """A server for ``folder`` (port 0: any free port, then ``server.server_address[1]``)."""
    server = http.server.ThreadingHTTPServer((host, port), functools.partial(Handler, directory=str(folder)))
    server.quiet = quiet
    return server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    parser.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    args = parser.parse_args()
    if not (FOLDER / "node_modules" / "@mediapipe" / "tasks-vision").is_dir():
        raise SystemExit("The page's engines are not installed: run `bash deploy/web/setup.sh` first.")
    server = make_server(args.host, args.port)
    print(f"edgecnn page: http://{args.host}:{server.server_address[1]}/  (Ctrl-C stops)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
