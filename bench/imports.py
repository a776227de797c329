"""Benchmark: what importing the Functions app costs a cold worker, against importing only
the libraries it cannot do without, and a check that the HTTP path never loads Graph.

Each import runs in a fresh interpreter, timed inside it (interpreter start-up is left out).
The two alternate so that a burst of load on the machine hits both. Bytecode is compiled once
beforehand into a temporary cache, so both sides are timed warm and nothing is written to
the source tree.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
APP = "function_app"
DEPENDENCIES = "azure.functions, fastapi, azure.storage.blob.aio, azure.data.tables.aio"
GRAPH_PREFIXES = ("msgraph", "kiota")
_TIMEOUT_SECONDS = 120
_PROBE = """
import json, sys, time
start = time.perf_counter()
import {modules}
seconds = time.perf_counter() - start
graph = sorted(m for m in sys.modules if m.startswith({prefixes!r}))
print(json.dumps({{"seconds": seconds, "graph": graph}}))
"""


@dataclasses.dataclass(frozen=True)
class ImportResult:
    """Per-run seconds for both sides and the Graph check."""

    app_seconds: list[float]
    dependencies_seconds: list[float]
    graph_modules: list[str]  # Graph modules found in sys.modules after importing the app
    graph_installed: bool

    @property
    def app_median(self) -> float:
        return statistics.median(self.app_seconds)

    @property
    def dependencies_median(self) -> float:
        return statistics.median(self.dependencies_seconds)

    @property
    def ratio(self) -> float:
        """App import time as a multiple of the bare dependencies' import time."""
        return self.app_median / self.dependencies_median

    @property
    def graph_imported(self) -> bool:
        return bool(self.graph_modules)


def _probe(modules: str, env: dict[str, str]) -> tuple[float, list[str]]:
    code = _PROBE.format(modules=modules, prefixes=GRAPH_PREFIXES)
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=_TIMEOUT_SECONDS,
        check=True,
    )
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    return float(answer["seconds"]), [str(m) for m in answer["graph"]]


def measure(repeat: int = 7) -> ImportResult:
    """Time both imports `repeat` times each, alternating, in fresh interpreters."""
    app: list[float] = []
    dependencies: list[float] = []
    graph: set[str] = set()
    with tempfile.TemporaryDirectory(prefix="bench-pycache-") as cache:
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env["PYTHONPYCACHEPREFIX"] = cache
        _probe(APP, env)  # compile both sides' bytecode into the temporary cache
        _probe(DEPENDENCIES, env)
        for _ in range(repeat):
            seconds, found = _probe(APP, env)
            app.append(seconds)
            graph.update(found)
            dependencies.append(_probe(DEPENDENCIES, env)[0])
    installed = importlib.util.find_spec("msgraph") is not None
    return ImportResult(app, dependencies, sorted(graph), installed)


def report(result: ImportResult) -> str:
    """Plain-text lines for the terminal."""
    return "\n".join(
        [
            f"imports: {len(result.app_seconds)} fresh interpreters each, alternating",
            f"  import {APP}: median {result.app_median * 1000:.0f} ms "
            f"(runs: {', '.join(f'{s * 1000:.0f}' for s in result.app_seconds)})",
            f"  import {DEPENDENCIES}: median {result.dependencies_median * 1000:.0f} ms "
            f"(runs: {', '.join(f'{s * 1000:.0f}' for s in result.dependencies_seconds)})",
            f"  ratio app/dependencies {result.ratio:.2f}",
            f"  graph imported on HTTP path: {'yes' if result.graph_imported else 'no'}"
            + (f" ({', '.join(result.graph_modules)})" if result.graph_imported else "")
            + f"; msgraph installed: {'yes' if result.graph_installed else 'no'}",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.imports")
    parser.add_argument("--repeat", type=int, default=7)
    result = measure(parser.parse_args().repeat)
    print(report(result))
    if result.graph_imported:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
