"""The gateway's database side: the terminal registry, auth codes (jt808_terminal) and the quarantine.

One async connection, used by one task at a time; a lost connection is opened again and the statement
retried (a database restart delays registrations, it does not fail them). Quarantine rows and
"authenticated at" stamps are written in batches by a background task.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from datetime import UTC, datetime
from typing import Any, LiteralString

import psycopg

from gateway.jt808.frame import RefusalReason
from gateway.jt808.messages import Authenticate, Register
from ingest.reasons import Reason
from store.queries import query

log = logging.getLogger(__name__)

_KEEP_BYTES = 64 * 1024


class Registry:
    def __init__(self, database_url: str) -> None:
        self.database_url = database_url
        self.codes: dict[str, str] = {}
        self._conn: psycopg.AsyncConnection[Any] | None = None
        self._lock = asyncio.Lock()
        self._quarantine: list[dict[str, Any]] = []
        self._authenticated: list[dict[str, Any]] = []
        self._writer: asyncio.Task[None] | None = None
        self.quarantined = 0

    async def open(self) -> None:
        rows = await self._execute(query("jt808_auth_codes"), {}, fetch=True)
        self.codes = dict(rows)
        self._writer = asyncio.get_running_loop().create_task(self._write_forever())

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer
        with contextlib.suppress(psycopg.Error):
            async with asyncio.timeout(10):
                await self._flush()
        if self._conn is not None:
            await self._conn.close()

    async def _execute(
        self, sql: LiteralString, params: dict[str, Any] | list[dict[str, Any]], *, fetch: bool = False
    ) -> list[tuple[Any, ...]]:
        delay_s = 0.1
        while True:
            async with self._lock:
                try:
                    if self._conn is None or self._conn.closed:
                        self._conn = await psycopg.AsyncConnection.connect(self.database_url, autocommit=True)
                    async with self._conn.cursor() as cur:
                        if isinstance(params, list):
                            await cur.executemany(sql, params)
                            return []
                        await cur.execute(sql, params)
                        return await cur.fetchall() if fetch else []
                except psycopg.OperationalError as error:
                    log.warning("database unavailable (%s); retrying", error)
                    if self._conn is not None:
                        await self._conn.close()
                    self._conn = None
            await asyncio.sleep(delay_s)
            delay_s = min(delay_s * 2, 5.0)

    async def known(self, terminal_id: str) -> bool:
        rows = await self._execute(query("jt808_terminal_known"), {"terminal_id": terminal_id}, fetch=True)
        return bool(rows and rows[0][0])

    async def register(self, terminal_id: str, message: Register) -> str:
        """A fresh auth code for the terminal (a terminal that lost its code registers again)."""
        code = secrets.token_hex(8)
        params = {
            "terminal_id": terminal_id,
            "auth_code": code,
            "province": message.province,
            "city": message.city,
            "maker": message.maker,
            "model": message.model,
            "device_id": message.device_id,
            "plate": message.plate,
        }
        await self._execute(query("jt808_register"), params)
        self.codes[terminal_id] = code
        return code

    async def authenticate(self, terminal_id: str, message: Authenticate) -> bool:
        code = self.codes.get(terminal_id)
        if code is None:
            rows = await self._execute(query("jt808_auth_code"), {"terminal_id": terminal_id}, fetch=True)
            if not rows:
                return False
            code = self.codes[terminal_id] = rows[0][0]
        if not secrets.compare_digest(code.encode(), message.code.encode()):
            return False
        self._authenticated.append(
            {"terminal_id": terminal_id, "imei": message.imei, "firmware": message.firmware}
        )
        return True

    async def unregister(self, terminal_id: str) -> None:
        self.codes.pop(terminal_id, None)
        await self._execute(query("jt808_unregister"), {"terminal_id": terminal_id})

    def quarantine(
        self, reason: RefusalReason, detail: str, raw: bytes, *, terminal_id: str | None, source: str
    ) -> None:
        """Queue a refused frame for the quarantine table (topic ``jt808/<terminal or peer address>``)."""
        kept = raw[:_KEEP_BYTES]
        self._quarantine.append(
            {
                "received_at": datetime.now(UTC),
                "topic": f"jt808/{terminal_id or source}",
                "terminal_id": terminal_id,
                "reason": Reason(reason.value).value,
                "detail": detail,
                "fix_index": None,
                "payload": kept,
                "payload_bytes": len(raw),
            }
        )

    async def _flush(self) -> None:
        rows, self._quarantine = self._quarantine, []
        stamps, self._authenticated = self._authenticated, []
        if rows:
            await self._execute(query("insert_quarantine"), rows)
            self.quarantined += len(rows)
        if stamps:
            await self._execute(query("jt808_authenticated"), stamps)

    async def _write_forever(self) -> None:
        while True:
            await asyncio.sleep(0.2)
            try:
                await self._flush()
            except psycopg.Error:
                log.exception("could not write quarantine rows / authentication stamps")
