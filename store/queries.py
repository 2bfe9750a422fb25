"""Named queries from store/queries/*.sql, in procrastinate's ``-- query_name --`` format."""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import cache
from importlib import resources
from typing import Any, LiteralString

_HEADER = re.compile(r"^-- ([a-z0-9_]+) --$", re.MULTILINE)


def parse_queries(text: str) -> dict[str, LiteralString]:
    parts = _HEADER.split(text)
    queries: dict[str, LiteralString] = {}
    for name, body in zip(parts[1::2], parts[2::2], strict=True):
        lines = [line for line in body.strip().splitlines() if not line.startswith("-- ")]
        if name in queries:
            raise RuntimeError(f"query {name!r} is defined twice")
        queries[name] = "\n".join(lines).strip().rstrip(";")
    return queries


@cache
def load_queries() -> dict[str, LiteralString]:
    queries: dict[str, LiteralString] = {}
    for entry in sorted((resources.files("store") / "queries").iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".sql"):
            for name, sql in parse_queries(entry.read_text(encoding="utf-8")).items():
                if name in queries:
                    raise RuntimeError(f"query {name!r} is defined in two files")
                queries[name] = sql
    return queries


def query(name: str) -> LiteralString:
    return load_queries()[name]


def columns(rows: Sequence[Sequence[Any]], width: int) -> list[tuple[Any, ...]]:
    """Fetched rows turned into ``width`` columns (empty columns when there are no rows)."""
    return list(zip(*rows, strict=True)) if rows else [()] * width
