"""Start the real API server (uvicorn in a subprocess) on a free 127.0.0.1 port."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(env: dict[str, str]) -> tuple[httpx.Client, subprocess.Popen[str]]:
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "medcode", "serve", "--port", str(port)], env=env, cwd=REPO,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60)
    deadline = time.time() + 60
    while True:
        try:
            if client.get("/healthz").status_code == 200:
                return client, server
        except httpx.TransportError:
            pass
        if time.time() > deadline or server.poll() is not None:
            server.kill()
            pytest.fail(f"server did not start: {server.stdout.read() if server.stdout else ''}")
        time.sleep(0.2)


def stop_server(server: subprocess.Popen[str]) -> str:
    """Stop it and return everything it logged."""
    server.terminate()
    output, _ = server.communicate(timeout=10)
    return output
