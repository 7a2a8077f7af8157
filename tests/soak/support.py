"""What the soak and the failover run share: the emulator's admin API, REST pages, the log scan."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

from tools.local_stack.stack import LocalStack


def admin(endpoint: str, method: str, path: str, body: Any = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        f"{endpoint}/_emulator/{path}", data=data, method=method, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read() or b"null")


def all_pages(stack: LocalStack, path: str, key: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    while True:
        page = stack.api.get(path, limit=100, offset=len(items))[key]
        items.extend(page)
        if len(page) < 100:
            return items


def scan_logs(stack: LocalStack, needles: set[str]) -> dict[str, Any]:
    """Files under AIRFLOW_HOME/logs and the components' own logs that contain a needle."""
    files = [*stack.airflow_home.joinpath("logs").rglob("*"), *stack.work_dir.glob("airflow-*.log")]
    found: dict[str, Any] = {}
    scanned = 0
    for path in files:
        if not path.is_file():
            continue
        scanned += 1
        text = path.read_text(encoding="utf-8", errors="replace")
        hits = [n[:12] + "..." for n in needles if n in text]
        if hits:
            found[str(path)] = hits[:3]
    found["__files__"] = scanned
    return found
