"""SQLite persistence of flows, executions (with their engine state) and history events.

With ``data_dir`` the database is ``DATA_DIR/fnf.sqlite3``; without it, an in-memory database
(one code path either way). All calls happen under the engine's lock.
"""

from __future__ import annotations

import json
import os
import secrets
import sqlite3
from typing import Any

DB_NAME = "fnf.sqlite3"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS flows (name TEXT PRIMARY KEY, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS executions (
    flow TEXT NOT NULL, name TEXT NOT NULL, data TEXT NOT NULL, PRIMARY KEY (flow, name));
CREATE TABLE IF NOT EXISTS events (
    flow TEXT NOT NULL, name TEXT NOT NULL, event_id INTEGER NOT NULL, data TEXT NOT NULL,
    PRIMARY KEY (flow, name, event_id));
"""


class Store:
    def __init__(self, data_dir: str | None) -> None:
        if data_dir:
            os.makedirs(data_dir, exist_ok=True)
            self.path = os.path.join(data_dir, DB_NAME)
        else:
            self.path = ":memory:"
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        if data_dir:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        self._db.close()

    def token_secret(self) -> bytes:
        row = self._db.execute("SELECT value FROM meta WHERE key='token_secret'").fetchone()
        if row:
            return bytes.fromhex(row[0])
        secret = secrets.token_bytes(32)
        self._db.execute("INSERT INTO meta (key, value) VALUES ('token_secret', ?)", (secret.hex(),))
        return secret

    def clear(self) -> None:
        self._db.executescript("DELETE FROM flows; DELETE FROM executions; DELETE FROM events;")

    # flows
    def save_flow(self, flow: dict[str, Any]) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO flows (name, data) VALUES (?, ?)", (flow["Name"], json.dumps(flow))
        )

    def delete_flow(self, name: str) -> None:
        self._db.execute("BEGIN")
        self._db.execute("DELETE FROM flows WHERE name=?", (name,))
        self._db.execute("DELETE FROM executions WHERE flow=?", (name,))
        self._db.execute("DELETE FROM events WHERE flow=?", (name,))
        self._db.execute("COMMIT")

    def load_flows(self) -> list[dict[str, Any]]:
        return [json.loads(r[0]) for r in self._db.execute("SELECT data FROM flows")]

    # executions and events
    def save_execution(self, record: dict[str, Any], new_events: list[dict[str, Any]]) -> None:
        self._db.execute("BEGIN")
        self._db.execute(
            "INSERT OR REPLACE INTO executions (flow, name, data) VALUES (?, ?, ?)",
            (record["flow"], record["name"], json.dumps(record)),
        )
        self._db.executemany(
            "INSERT OR REPLACE INTO events (flow, name, event_id, data) VALUES (?, ?, ?, ?)",
            [(record["flow"], record["name"], e["EventId"], json.dumps(e)) for e in new_events],
        )
        self._db.execute("COMMIT")

    def load_executions(self) -> list[dict[str, Any]]:
        return [json.loads(r[0]) for r in self._db.execute("SELECT data FROM executions")]

    def load_events(self, flow: str, name: str) -> list[dict[str, Any]]:
        rows = self._db.execute(
            "SELECT data FROM events WHERE flow=? AND name=? ORDER BY event_id", (flow, name)
        )
        return [json.loads(r[0]) for r in rows]
