"""Benchmark of the MNS emulator through the real aliyun-mns-sdk (not a test: it prints numbers).

Starts the emulator as its own process (as users run it; ``--in-process`` to share this one),
then measures, with one SDK client per thread:

- single sends (one message per request),
- batch sends (16 per request),
- batch receives of 16 with a batch delete of what was received,

for in-memory state and for SQLite state (``--data-dir``). Run::

    python -m bench.mns_emulator [--threads 4] [--messages 4000] [--storage memory|sqlite|both]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from fnf_emulator.core import DEFAULT_ACCESS_KEY_ID, DEFAULT_ACCESS_KEY_SECRET
from fnf_emulator.limits import MNS_MAX_BATCH_SIZE
from fnf_emulator.server import Emulator
from mns.account import Account
from mns.mns_exception import MNSServerException
from mns.queue import Message, QueueMeta

BODY = json.dumps({"task_token": "x" * 120, "input": {"order": 12345, "items": ["a", "b", "c"]}})


@contextlib.contextmanager
def running_emulator(data_dir: str | None, in_process: bool) -> Iterator[str]:
    if in_process:
        with Emulator(data_dir=data_dir) as emulator:
            yield emulator.mns_endpoint
        return
    with tempfile.TemporaryDirectory() as scratch:
        ready = Path(scratch) / "ready.json"
        command = [
            sys.executable,
            "-m",
            "fnf_emulator",
            "--mns-port",
            "0",
            "--fnf-port",
            "0",
        ]
        command += ["--ready-file", str(ready), "--log-level", "WARNING"]
        if data_dir:
            command += ["--data-dir", data_dir]
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 30
            while not ready.exists():
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the emulator did not start")
                time.sleep(0.05)
            yield json.loads(ready.read_text())["mns_endpoint"]
        finally:
            process.terminate()
            process.wait(timeout=15)


def queue_for(endpoint: str, name: str):
    queue = Account(endpoint, DEFAULT_ACCESS_KEY_ID, DEFAULT_ACCESS_KEY_SECRET).get_queue(name)
    queue.set_encoding(False)
    return queue


def in_threads(threads: int, work: Callable[[int], int]) -> tuple[int, float]:
    """Run ``work(thread_index)`` in threads; return (messages handled, seconds)."""
    counts = [0] * threads
    errors: list[BaseException] = []

    def run(index: int) -> None:
        try:
            counts[index] = work(index)
        except BaseException as exc:  # reported below, after every thread ended
            errors.append(exc)

    workers = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
    started = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    elapsed = time.perf_counter() - started
    if errors:
        raise errors[0]
    return sum(counts), elapsed


def measure(endpoint: str, threads: int, messages: int) -> dict[str, float]:
    queue = queue_for(endpoint, "bench")
    meta = QueueMeta()
    meta.set_visibilitytimeout(300)
    queue.create(meta)
    per_thread = messages // threads
    results: dict[str, float] = {}

    def single_sends(index: int) -> int:
        own = queue_for(endpoint, "bench")
        for _ in range(per_thread // 4):
            own.send_message(Message(BODY))
        return per_thread // 4

    count, seconds = in_threads(threads, single_sends)
    results["send (1 per request)"] = count / seconds

    def batch_sends(index: int) -> int:
        own = queue_for(endpoint, "bench")
        batches = per_thread // MNS_MAX_BATCH_SIZE
        for _ in range(batches):
            own.batch_send_message([Message(BODY) for _ in range(MNS_MAX_BATCH_SIZE)])
        return batches * MNS_MAX_BATCH_SIZE

    count, seconds = in_threads(threads, batch_sends)
    results["batch send (16 per request)"] = count / seconds

    def batch_receive_and_delete(index: int) -> int:
        own = queue_for(endpoint, "bench")
        handled = 0
        while True:
            try:
                received = own.batch_receive_message(MNS_MAX_BATCH_SIZE, 0)
            except MNSServerException as exc:
                if exc.type == "MessageNotExist":
                    return handled
                raise
            own.batch_delete_message([m.receipt_handle for m in received])
            handled += len(received)

    count, seconds = in_threads(threads, batch_receive_and_delete)
    results["batch receive + batch delete (16 per request)"] = count / seconds
    queue.delete()
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=4, help="client threads, one SDK client each")
    parser.add_argument("--messages", type=int, default=4000, help="messages per batch phase")
    parser.add_argument("--storage", choices=["memory", "sqlite", "both"], default="both")
    parser.add_argument("--in-process", action="store_true", help="run the emulator in this process")
    args = parser.parse_args(argv)

    storages = ["memory", "sqlite"] if args.storage == "both" else [args.storage]
    print(
        f"MNS emulator through aliyun-mns-sdk: {args.threads} client threads, {args.messages} messages per batch phase"
    )
    for storage in storages:
        with contextlib.ExitStack() as stack:
            data_dir = stack.enter_context(tempfile.TemporaryDirectory()) if storage == "sqlite" else None
            endpoint = stack.enter_context(running_emulator(data_dir, args.in_process))
            for name, rate in measure(endpoint, args.threads, args.messages).items():
                print(f"  {storage:<7} {name:<46} {rate:>9,.0f} msgs/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
