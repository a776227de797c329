"""Start a real Azurite for the test session: free ports, a temporary folder, torn down."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ACCOUNT = "devstoreaccount1"
KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, process: subprocess.Popen[bytes], deadline: float) -> None:
    """Return once something listens on the port; fail if the process dies or time runs out."""
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"process {process.args!r} exited during start-up")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listened on port {port} in time")


def stop(process: subprocess.Popen[bytes]) -> None:
    """Terminate a child process, killing it if it will not go."""
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(10)


@contextlib.contextmanager
def azurite(*, in_memory: bool = False) -> Iterator[str]:
    """Run Azurite's blob and table services; yields their connection string. `in_memory`
    keeps the data in memory only (no database file rewritten as it grows: what a set-up of
    a million rows needs)."""
    binary = ROOT / "node_modules" / ".bin" / "azurite"
    if not binary.exists():
        raise RuntimeError("Azurite is not installed: run `make test` (it runs npm ci)")
    blob, table, queue = free_port(), free_port(), free_port()
    with tempfile.TemporaryDirectory(prefix="azurite-") as folder:
        log = open(os.path.join(folder, "azurite.log"), "wb")  # noqa: SIM115
        process = subprocess.Popen(
            [
                str(binary),
                "--silent",
                *(["--inMemoryPersistence"] if in_memory else ["--location", folder]),
                "--blobHost",
                "127.0.0.1",
                "--blobPort",
                str(blob),
                "--tableHost",
                "127.0.0.1",
                "--tablePort",
                str(table),
                "--queueHost",
                "127.0.0.1",
                "--queuePort",
                str(queue),
                "--disableTelemetry",
                "--skipApiVersionCheck",
                "--loose",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 30
            wait_for_port(blob, process, deadline)
            wait_for_port(table, process, deadline)
            wait_for_port(queue, process, deadline)
            yield (
                f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={KEY};"
                f"BlobEndpoint=http://127.0.0.1:{blob}/{ACCOUNT};"
                f"TableEndpoint=http://127.0.0.1:{table}/{ACCOUNT};"
                f"QueueEndpoint=http://127.0.0.1:{queue}/{ACCOUNT};"
            )
        finally:
            stop(process)
            log.close()
