"""``fnf-emulator`` / ``python -m fnf_emulator``: run the emulators until stopped.

Default credentials: AccessKey ID ``emulator-access-key-id``, secret ``emulator-access-key-secret``.
Default ports: 9911 (MNS), 9912 (Serverless Workflow) and 9913 (STS, served when ``--ram-role``
or ``--sts-port`` is given); 0 picks a free port. With
``--ready-file PATH`` the endpoints are written there as JSON once the servers listen
(``{"mns_endpoint": ..., "fnf_endpoint": ..., "sts_endpoint": ..., "ca_file": ...}``;
``sts_endpoint`` is null when STS is not served, ``ca_file`` without ``--tls``); the file is
removed on a clean stop. SIGINT and SIGTERM stop the
emulator cleanly.

RAM roles for STS AssumeRole: ``--ram-role ARN`` (repeatable), with options after commas:
``external_id=ID`` (AssumeRole must give it), ``trust=KEY_ID[+KEY_ID]`` (only these AccessKey IDs
may assume it), ``max_session_duration=S`` (default 3,600) and ``session_seconds=S`` (issued
credentials live S seconds, whatever DurationSeconds asks). ``--sts-session-seconds S`` does the
latter for every role. alibabacloud-credentials reaches STS over HTTPS only: add ``--tls``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType

from fnf_emulator.core import (
    DEFAULT_ACCESS_KEY_ID,
    DEFAULT_ACCESS_KEY_SECRET,
    DEFAULT_FNF_PORT,
    DEFAULT_HOST,
    DEFAULT_MNS_PORT,
    DEFAULT_STS_PORT,
)
from fnf_emulator.identities import RamRole
from fnf_emulator.server import Emulator

log = logging.getLogger(__name__)


def _port(text: str) -> int:
    port = int(text)
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"port must be between 0 and 65535, got {port}")
    return port


def _ram_role(text: str) -> RamRole:
    try:
        return RamRole.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _seconds(text: str) -> int:
    seconds = int(text)
    if seconds < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1 second, got {seconds}")
    return seconds


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fnf-emulator",
        description="Local emulator of Simple Message Queue (MNS), Serverless Workflow (FnF) and STS "
        "AssumeRole that the unmodified Alibaba Cloud SDKs talk to over HTTP or HTTPS.",
        epilog=f"Default credentials: AccessKey ID {DEFAULT_ACCESS_KEY_ID!r}, secret {DEFAULT_ACCESS_KEY_SECRET!r}.",
    )
    parser.add_argument("--host", default=DEFAULT_HOST, help="address to bind (default %(default)s)")
    parser.add_argument(
        "--mns-port",
        type=_port,
        default=DEFAULT_MNS_PORT,
        help="MNS port, 0 = free port (default %(default)s)",
    )
    parser.add_argument(
        "--fnf-port",
        type=_port,
        default=DEFAULT_FNF_PORT,
        help="Serverless Workflow port, 0 = free port (default %(default)s)",
    )
    parser.add_argument(
        "--sts-port",
        type=_port,
        help=f"STS port, 0 = free port (default {DEFAULT_STS_PORT} when --ram-role is given; "
        "without either, STS is not served)",
    )
    parser.add_argument(
        "--tls",
        action="store_true",
        help="serve every endpoint over HTTPS with a local CA (its file: ca_file in the ready file; "
        "point SSL_CERT_FILE and REQUESTS_CA_BUNDLE at it); needs the tls extra",
    )
    parser.add_argument(
        "--ram-role",
        action="append",
        default=[],
        type=_ram_role,
        metavar="ARN[,OPTION=VALUE...]",
        help="a RAM role STS AssumeRole accepts (repeatable); options: external_id=ID, "
        "trust=KEY_ID[+KEY_ID], max_session_duration=S, session_seconds=S",
    )
    parser.add_argument(
        "--sts-session-seconds",
        type=_seconds,
        metavar="S",
        help="issued STS credentials live S seconds, whatever DurationSeconds asks (test expiry in seconds)",
    )
    parser.add_argument(
        "--access-key-id", default=DEFAULT_ACCESS_KEY_ID, help="accepted AccessKey ID (default %(default)s)"
    )
    parser.add_argument(
        "--access-key-secret",
        default=os.environ.get("FNF_EMULATOR_ACCESS_KEY_SECRET", DEFAULT_ACCESS_KEY_SECRET),
        help="its secret (default: $FNF_EMULATOR_ACCESS_KEY_SECRET or the documented default)",
    )
    parser.add_argument(
        "--security-token",
        action="append",
        default=[],
        metavar="TOKEN",
        help="an STS security token accepted together with the AccessKey ID (repeatable)",
    )
    parser.add_argument("--data-dir", help="keep state in SQLite under this directory (default: in memory)")
    parser.add_argument(
        "--ready-file", help="write the endpoints as JSON to this file once both servers listen"
    )
    parser.add_argument(
        "--fnf-throttle", action="store_true", help="apply Serverless Workflow's API rate limits"
    )
    parser.add_argument(
        "--log-level",
        default="INFO",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="DEBUG logs one line per request (default %(default)s)",
    )
    return parser


def _write_ready_file(path: str, payload: dict[str, str | None]) -> None:
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    temporary = f"{path}.tmp.{os.getpid()}"
    with open(temporary, "w", encoding="utf-8") as handle:
        json.dump(payload, handle)
    os.replace(temporary, path)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        log.info("Received %s, stopping", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)

    emulator = Emulator(
        host=args.host,
        mns_port=args.mns_port,
        fnf_port=args.fnf_port,
        sts_port=args.sts_port if args.sts_port is not None else (DEFAULT_STS_PORT if args.ram_role else None),
        access_keys={args.access_key_id: args.access_key_secret},
        sts_tokens={token: args.access_key_id for token in args.security_token},
        data_dir=args.data_dir,
        fnf_throttle=args.fnf_throttle,
        ram_roles=args.ram_role,
        sts_session_seconds=args.sts_session_seconds,
        tls=args.tls,
    )
    try:
        emulator.start()
    except OSError as exc:
        print(f"fnf-emulator: cannot listen on {args.host}: {exc}", file=sys.stderr)
        return 1
    except RuntimeError as exc:
        print(f"fnf-emulator: {exc}", file=sys.stderr)
        return 1
    if args.ram_role and not args.tls:
        log.warning("alibabacloud-credentials reaches STS over HTTPS only: add --tls to assume these roles with it")
    try:
        endpoints: dict[str, str | None] = {
            "mns_endpoint": emulator.mns_endpoint,
            "fnf_endpoint": emulator.fnf_endpoint if emulator.fnf is not None else None,
            "sts_endpoint": emulator.sts_endpoint if emulator.sts is not None else None,
            "ca_file": emulator.ca_file,
        }
        secret = (
            args.access_key_secret if args.access_key_secret == DEFAULT_ACCESS_KEY_SECRET else "(as given)"
        )
        print(f"MNS endpoint:                 {endpoints['mns_endpoint']}", flush=True)
        print(f"Serverless Workflow endpoint: {endpoints['fnf_endpoint'] or '(not available)'}", flush=True)
        if endpoints["sts_endpoint"]:
            print(f"STS endpoint:                 {endpoints['sts_endpoint']}", flush=True)
        for role in args.ram_role:
            print(f"RAM role:                     {role.arn}", flush=True)
        if emulator.ca_file:
            print(f"TLS CA certificate:           {emulator.ca_file}", flush=True)
        print(f"AccessKey ID:                 {args.access_key_id}", flush=True)
        print(f"AccessKey secret:             {secret}", flush=True)
        if args.data_dir:
            print(f"Data directory:               {os.path.abspath(args.data_dir)}", flush=True)
        if args.ready_file:
            _write_ready_file(args.ready_file, endpoints)
        while not stop.wait(1):
            pass
    finally:
        emulator.stop()
        if args.ready_file:
            try:
                os.remove(args.ready_file)
            except FileNotFoundError:
                pass
        log.info("Emulator stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
