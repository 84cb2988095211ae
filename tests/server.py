"""Start the real API server (uvicorn in a subprocess) on a free 127.0.0.1 port."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Callable
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
    wait_until_up(f"http://127.0.0.1:{port}/healthz", server,
                  lambda: server.stdout.read() if server.stdout else "")
    return client, server


def wait_until_up(url: str, process: subprocess.Popen[str], output: Callable[[], str],
                  seconds: float = 60) -> None:
    """Poll `url` until it answers 200; fail with the process's output if it never does."""
    deadline = time.time() + seconds
    while True:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.time() > deadline or process.poll() is not None:
            process.kill()
            pytest.fail(f"{url} never answered: {output()[-2000:]}")
        time.sleep(0.2)


def stop_server(server: subprocess.Popen[str]) -> str:
    """Stop it and return everything it logged."""
    server.terminate()
    output, _ = server.communicate(timeout=10)
    return output
