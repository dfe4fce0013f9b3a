"""Run Neo4j Community 5.26 on loopback without Docker (jars from Maven Central, Java 17+).

  python scripts/neo4j_server.py start --home work/neo4j      # `make neo4j`: starts, waits for Bolt
  python scripts/neo4j_server.py stop --home work/neo4j       # `make neo4j-stop`
  python scripts/neo4j_server.py status --home work/neo4j
  python scripts/neo4j_server.py run [--home DIR] -- CMD ...  # `make test`: a server around one command

`start` needs NEO4J_PASSWORD (8+ characters, no default); it is set as user neo4j's password when the
home is new. `run` starts a throwaway server in a fresh temporary home (unless --home is given) with a
random password, runs CMD with NEO4J_URI, NEO4J_PASSWORD, NEO4J_HTTP_URI and NEO4J_SERVER_HOME set,
stops the server and exits with CMD's status. Where Java or Maven is missing, `run` still runs CMD, with
KGREC_NEO4J_UNAVAILABLE giving the reason, which the live tests print as their skip reason.
Memory: --heap (NEO4J_HEAP_SIZE, default 1g) and --pagecache (NEO4J_PAGECACHE_SIZE, default 512m).
Graph Data Science (the gds.* procedures) is on; --no-gds starts the server without it.
"""
from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kg import neo4j_server as ns  # noqa: E402


def _config(args: argparse.Namespace, home: Path, password: str) -> ns.ServerConfig:
    return ns.ServerConfig(home=home, password=password, bolt_port=args.bolt_port, http_port=args.http_port,
                           heap=args.heap, pagecache=args.pagecache, startup_timeout_s=args.wait_s, gds=args.gds)


def _announce(server: ns.RunningServer) -> None:
    mem = ns.memory_kib(server.pid)
    gds = f" with GDS {ns.GDS_VERSION}" if server.config.gds else ""
    print(f"Neo4j {ns.NEO4J_VERSION}{gds} up in {server.startup_s:.1f}s (pid {server.pid}, "
          f"RSS {mem.get('rss', 0) / 1024:.0f} MiB): Bolt {server.bolt_uri}, Browser {server.http_uri}/browser/ "
          f"(user neo4j); home {server.config.home}", flush=True)


def cmd_start(args: argparse.Namespace) -> int:
    password = os.environ.get("NEO4J_PASSWORD")
    if not password:
        print("error: set NEO4J_PASSWORD (8 or more characters; there is no default password)", file=sys.stderr)
        return 2
    try:
        server = ns.start(_config(args, args.home, password))
    except ns.Neo4jServerError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    _announce(server)
    print(f"export NEO4J_URI={server.bolt_uri}   # and NEO4J_PASSWORD as above")
    return 0


def cmd_stop(args: argparse.Namespace) -> int:
    print("stopped" if ns.stop(args.home) else f"no Neo4j server running from {args.home.resolve()}")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    pid = ns.pid_of(args.home)
    print(json.dumps({"home": str(args.home.resolve()), "running": pid is not None, "pid": pid,
                      "memory_kib": ns.memory_kib(pid) if pid else {}}))
    return 0 if pid is not None else 3


def cmd_run(args: argparse.Namespace) -> int:
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        print("error: give the command to run after --", file=sys.stderr)
        return 2
    env = dict(os.environ)
    home = args.home or Path(tempfile.mkdtemp(prefix="kgrec-neo4j-"))
    password = env.get("NEO4J_PASSWORD") if args.home else None
    password = password or secrets.token_urlsafe(18)
    server = None
    try:
        server = ns.start(_config(args, home, password))
        _announce(server)
        env.update(NEO4J_URI=server.bolt_uri, NEO4J_PASSWORD=password, NEO4J_USERNAME="neo4j",
                   NEO4J_HTTP_URI=server.http_uri, NEO4J_SERVER_HOME=str(server.config.home),
                   NEO4J_STARTUP_S=f"{server.startup_s:.2f}", KGREC_NEO4J_REQUIRED="1")
        env.pop("NEO4J_DATABASE", None)
    except ns.Neo4jServerUnavailable as e:
        print(f"Neo4j cannot run here, the live tests will skip: {e}", file=sys.stderr, flush=True)
        env["KGREC_NEO4J_UNAVAILABLE"] = str(e)
    try:
        return subprocess.run(command, env=env).returncode
    finally:
        if server is not None:
            ns.stop(server.config.home)
        if args.home is None:
            shutil.rmtree(home, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="verb", required=True)
    for verb in ("start", "stop", "status", "run"):
        p = sub.add_parser(verb)
        p.add_argument("--home", type=Path, default=None if verb == "run" else Path("work/neo4j"),
                       help="server directory (conf, data, logs); `run` defaults to a fresh temporary one")
        if verb in ("start", "run"):
            p.add_argument("--bolt-port", type=int, default=int(os.environ.get("NEO4J_BOLT_PORT", "7687")))
            p.add_argument("--http-port", type=int, default=int(os.environ.get("NEO4J_HTTP_PORT", "7474")))
            p.add_argument("--heap", default=os.environ.get("NEO4J_HEAP_SIZE", "1g"))
            p.add_argument("--pagecache", default=os.environ.get("NEO4J_PAGECACHE_SIZE", "512m"))
            p.add_argument("--wait-s", type=float, default=300.0, help="how long to wait for Bolt (default 300)")
            p.add_argument("--gds", action=argparse.BooleanOptionalAction, default=True,
                           help="with Graph Data Science (default; --no-gds: without)")
        if verb == "run":
            p.add_argument("command", nargs=argparse.REMAINDER)
    args = ap.parse_args(argv)
    return {"start": cmd_start, "stop": cmd_stop, "status": cmd_status, "run": cmd_run}[args.verb](args)


if __name__ == "__main__":
    raise SystemExit(main())
