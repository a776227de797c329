"""The real local runner (`make run`'s `python -m functions.local`), driven through a short
session as a seller and their customer would: it says where it is and how to get a token,
logs one line per timer cycle that did something, and its whole output (at LOG_LEVEL=DEBUG,
every request included) holds no address, token or client IP."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx
import pytest

from shared.core.auth import make_dev_token
from shared.core.settings import Settings
from tests.utils.azurite import ROOT, azurite, free_port

SELLER = "runner.seller@contoso.example"
CUSTOMER = "runner.customer@fabrikam.example"
CLIENT_IP = "198.51.100.77"
OUTLOOK = "Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.17328; Pro)"
BROWSER = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko)"
    " Chrome/142.0.0.0 Safari/537.36"
)


@dataclass
class Runner:
    base: str
    process: subprocess.Popen[str]
    lines: list[str] = field(default_factory=list)

    def wait_for(self, pattern: str, seconds: float) -> str:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            found = next((line for line in self.lines if re.search(pattern, line)), None)
            if found is not None:
                return found
            if self.process.poll() is not None:
                break
            time.sleep(0.1)
        raise AssertionError(f"no line matched {pattern!r}:\n" + "".join(self.lines))


@pytest.fixture(scope="module")
def runner() -> Iterator[Runner]:
    with azurite() as connection_string:
        port = free_port()
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("APPLICATIONINSIGHTS")},
            "STORAGE_CONNECTION_STRING": connection_string,
            "TRACKING_BASE_URL": f"http://127.0.0.1:{port}",
            "LOG_LEVEL": "DEBUG",  # every request too: the strictest case for what is logged
            "FOLD_SCHEDULE": "*/2 * * * * *",
            "FOLD_GRACE_SECONDS": "0",
            "PYTHONUNBUFFERED": "1",
        }
        process = subprocess.Popen(
            [sys.executable, "-m", "functions.local", "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        found = Runner(f"http://127.0.0.1:{port}", process)
        assert process.stdout is not None
        stdout = process.stdout
        reader = threading.Thread(target=lambda: found.lines.extend(stdout), daemon=True)
        reader.start()
        try:
            found.wait_for("Email engagement is running", 60)
            yield found
        finally:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)
            reader.join(5)


def test_the_runner_says_where_it_is_and_how_to_get_a_token(runner: Runner) -> None:
    output = "".join(runner.lines)
    assert "storage: creating the containers and tables" in output
    assert f"app       {runner.base}\n" in output
    assert f"API docs  {runner.base}/docs\n" in output
    assert "make -s dev-token EMAIL=" in output
    assert "fold_events" in output and "*/2 * * * * *" in output
    assert re.search(r"alert_first_opens\s+\*/5 \* \* \* \* \*", output)


def test_a_session_logs_no_address_token_or_client_ip(runner: Runner) -> None:
    token = make_dev_token(Settings(), SELLER)
    seller = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=runner.base, timeout=30) as http:
        contact = {"name": "Runner Customer", "emails": [CUSTOMER]}
        assert http.post("/api/records/contact", json=contact, headers=seller).status_code == 201
        looked_up = http.get("/api/preferences", params={"to": CUSTOMER}, headers=seller)
        assert looked_up.json()["follow_state"] == "followed"
        assert http.get("/api/records", params={"email": CUSTOMER}, headers=seller).is_success
        html = '<p>Hi, see <a href="https://contoso.example/pricing?plan=pro">pricing</a>.</p>'
        body = {"to": [CUSTOMER], "subject": "Your quote", "html": html}
        sent = http.post("/api/messages", json=body, headers=seller).json()
        pixel = re.findall(r'src="([^"]*/t/o/[^"]+)"', sent["html"])[0]
        link = re.findall(r'href="([^"]*/t/c/[^"]+)"', sent["html"])[0]
        forwarded = {"X-Forwarded-For": f"{CLIENT_IP}, 10.0.0.4"}
        assert http.get(pixel, headers={"User-Agent": OUTLOOK, **forwarded}).status_code == 200
        clicked = http.get(link, headers={"User-Agent": BROWSER, **forwarded})
        assert clicked.status_code == 302
        assert http.get(f"/api/messages/{sent['id']}", headers=seller).status_code == 200
    runner.wait_for(r"INFO functions\.timers\.fold: fold: folded [1-9]\d* events", 30)

    output = "".join(runner.lines)
    secrets = [
        SELLER,
        CUSTOMER,
        token,
        pixel.rsplit("/", 1)[1].removesuffix(".gif"),
        link.rsplit("/", 1)[1],
        sent["id"],
        CLIENT_IP,
        "198.51.100.",
        "10.0.0.4",
        "contoso.example/pricing",
    ]
    leaked = [s for s in secrets if s in output]
    assert leaked == [], output
    assert "@" not in output
    # Every request is there at DEBUG, by its route template, status and time.
    assert re.search(r"DEBUG functions\.access: GET /t/o/\{token\} 200 [\d.]+ ms", output)
    assert re.search(r"DEBUG functions\.access: GET /t/c/\{token\} 302 [\d.]+ ms", output)
    assert re.search(r"DEBUG functions\.access: GET /api/preferences 200 [\d.]+ ms", output)
    # The storage SDK's request log (URLs, headers) stays at WARNING.
    assert "azure.core.pipeline" not in output and "Request URL" not in output
