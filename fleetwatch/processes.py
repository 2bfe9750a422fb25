"""Starting and stopping fleetwatch worker processes (the demo, benchmarks and tests use these)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path


def start_fleetwatch(
    command: Sequence[str], env: Mapping[str, str], log_path: Path, *, ready: str, timeout_s: float = 30.0
) -> subprocess.Popen[bytes]:
    """``fleetwatch COMMAND…`` with ``env`` added, logged to ``log_path``, once its log shows ``ready``."""
    with log_path.open("ab") as handle:
        process = subprocess.Popen(
            [sys.executable, "-m", "fleetwatch.cli", *command],
            env={**os.environ, **env},
            stdout=handle,
            stderr=handle,
        )
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if ready in log_path.read_text(errors="replace"):
            return process
        if process.poll() is not None:
            raise RuntimeError(f"fleetwatch {command[0]} exited with {process.returncode}: see {log_path}")
        time.sleep(0.05)
    process.kill()
    raise RuntimeError(f"fleetwatch {command[0]} was not ready within {timeout_s} s; see {log_path}")


def start_ingest(
    env: Mapping[str, str],
    args: Sequence[str],
    log_path: Path,
    *,
    timeout_s: float = 30.0,
    verbose: bool = False,
) -> subprocess.Popen[bytes]:
    """``fleetwatch ingest ARGS`` with ``env`` added to this environment, logging to ``log_path``;
    returns once the broker has granted its subscription."""
    with log_path.open("ab") as handle:
        process = subprocess.Popen(
            [sys.executable, "-m", "fleetwatch.cli", *(["-v"] if verbose else []), "ingest", *args],
            env={**os.environ, **env},
            stdout=handle,
            stderr=handle,
        )
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        text = log_path.read_text(errors="replace")
        if text.count("subscription granted") > text.count("stopped;"):
            return process
        if process.poll() is not None:
            raise RuntimeError(f"ingest worker exited with {process.returncode}: {text[-2000:]}")
        time.sleep(0.05)
    process.kill()
    raise RuntimeError(f"ingest worker did not subscribe within {timeout_s} s; see {log_path}")


def stop(process: subprocess.Popen[bytes], timeout_s: float = 60.0) -> int:
    """SIGTERM (the worker commits what it holds, acknowledges it and exits), SIGKILL if it hangs."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return process.returncode
