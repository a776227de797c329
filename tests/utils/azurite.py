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


def _wait(port: int, process: subprocess.Popen[bytes], deadline: float) -> None:
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("Azurite exited during start-up")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.1)
    raise RuntimeError("Azurite did not start in time")


@contextlib.contextmanager
def azurite() -> Iterator[str]:
    """Run Azurite's blob and table services; yields their connection string."""
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
                "--location",
                folder,
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
            _wait(blob, process, deadline)
            _wait(table, process, deadline)
            yield (
                f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={KEY};"
                f"BlobEndpoint=http://127.0.0.1:{blob}/{ACCOUNT};"
                f"TableEndpoint=http://127.0.0.1:{table}/{ACCOUNT};"
            )
        finally:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
            log.close()
