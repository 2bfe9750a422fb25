"""A Mosquitto broker process of our own, on a free loopback port (tests, benchmarks, the demo).

It is stopped by its pid, never by name, so the machine's own broker is never touched.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_port(port: int, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.02)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout_s} s")


@dataclass
class MosquittoProcess:
    """Persistence on, and no limit on what an offline session may queue: the default of 1000
    messages would make Mosquitto drop silently what a stopped worker misses."""

    folder: Path
    port: int = field(default_factory=free_port)
    persistence: bool = True
    process: subprocess.Popen[bytes] | None = None

    def config(self) -> str:
        lines = [
            f"listener {self.port} 127.0.0.1",
            "allow_anonymous true",
            f"persistence {'true' if self.persistence else 'false'}",
            f"persistence_location {self.folder}/",
            "max_queued_messages 0",
            f"log_dest file {self.folder}/mosquitto.log",
        ]
        if os.geteuid() == 0:
            lines.append("user root")  # else it switches to a user that may not write this folder
        return "\n".join(lines) + "\n"

    def start(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        conf = self.folder / "mosquitto.conf"
        conf.write_text(self.config())
        binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        self.process = subprocess.Popen(
            [binary, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        wait_port(self.port)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(sig)
            self.process.wait(timeout=10)
        self.process = None

    def restart(self) -> None:
        """SIGTERM (Mosquitto writes its persistence file) and start again on the same port."""
        self.stop()
        self.start()
