"""A real Neo4j Community 5.26 server on loopback, without Docker: resolved from Maven Central, run on Java 17+.

`scripts/neo4j/pom.xml` names the artifacts (the server, the import tool, Neo4j Browser, Graph Data
Science Community); Maven resolves them into ~/.m2 and writes a classpath, and the server starts as the
distribution's `neo4j console` does: `java ... org.neo4j.server.CommunityEntryPoint --home-dir HOME
--config-dir HOME/conf`, with the JVM flags of Neo4j's own `neo4j.conf`. Everything lives under one
directory `home` that the caller names (conf/, data/, logs/, run/, import/, plugins/, neo4j.pid).
Authentication is on; the password of user `neo4j` is set before the first start (`neo4j-admin dbms
set-initial-password`).

Graph Data Science (GDS_VERSION, `ServerConfig.gds`, on by default): as the distribution does with a
plugin jar, its jars are both on the server's classpath (its extensions are found there) and in the
home's plugins/ (as symbolic links into ~/.m2: Neo4j compiles procedures from the jars it finds there),
and `gds.*` is unrestricted. With `gds=False` they are left off both.

    server = start(ServerConfig(home=Path("work/neo4j"), password=os.environ["NEO4J_PASSWORD"]))
    ...  # bolt://127.0.0.1:7687, http://127.0.0.1:7474/browser/
    stop(server.config.home)

`scripts/neo4j_server.py` is the command line (`make neo4j`, `make neo4j-stop`, `make test`).
"""
from __future__ import annotations

import hashlib
import os
import re
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["NEO4J_VERSION", "GDS_VERSION", "DEFAULT_POM", "ServerConfig", "RunningServer", "Neo4jServerError",
           "Neo4jServerUnavailable", "check_tools", "resolve_classpath", "start", "stop", "kill", "pid_of",
           "is_running", "memory_kib", "admin", "log_tail", "server_classpath"]

NEO4J_VERSION = "5.26.30"
GDS_VERSION = "2.13.9"  # Graph Data Science Community; its 2.13 line supports Neo4j 5.26
DEFAULT_POM = Path(__file__).resolve().parents[1] / "scripts" / "neo4j" / "pom.xml"
_ENTRY_POINT = "org.neo4j.server.CommunityEntryPoint"
_ADMIN_TOOL = "org.neo4j.cli.AdminTool"
# The JVM flags of Neo4j 5's neo4j.conf (server.jvm.additional); without the java.nio opening, vector
# index population is reported to stall.
JVM_FLAGS = (
    "-XX:+UseG1GC", "-XX:-OmitStackTraceInFastThrow", "-XX:+UnlockExperimentalVMOptions",
    "-XX:+TrustFinalNonStaticFields", "-XX:+DisableExplicitGC", "-Djdk.nio.maxCachedBufferSize=1024",
    "-Dio.netty.tryReflectionSetAccessible=true", "-Djdk.tls.ephemeralDHKeySize=2048",
    "-Djdk.tls.rejectClientInitiatedRenegotiation=true", "-Dlog4j2.disable.jmx=true", "-Dfile.encoding=UTF-8",
    "--add-opens=java.base/java.nio=ALL-UNNAMED", "--add-opens=java.base/java.io=ALL-UNNAMED",
    "--add-opens=java.base/sun.nio.ch=ALL-UNNAMED", "--add-opens=java.base/java.lang=ALL-UNNAMED",
    "--enable-native-access=ALL-UNNAMED",
)
_SIZE = re.compile(r"^[1-9][0-9]*[kmgKMG]?$")


class Neo4jServerError(RuntimeError):
    """The server did not start or stop as asked (the message carries the log's tail)."""


class Neo4jServerUnavailable(Neo4jServerError):
    """This machine cannot run the server (no Java 17+, no Maven, or the artifacts cannot be resolved)."""


@dataclass
class ServerConfig:
    """One server: where it keeps everything, how it is reached, and how much memory it may take.

    Args:
        home: directory for conf/, data/, logs/, run/, import/ (created if new; the graph survives restarts).
        password: password of user `neo4j` (8+ characters; set on the first start, left out of `repr`).
        bolt_port / http_port: loopback ports (7687 / 7474).
        heap: JVM heap, e.g. "1g" (initial = max, as Neo4j recommends).
        pagecache: page cache for the store files, e.g. "512m".
        startup_timeout_s: how long `start` waits for Bolt to answer before it gives up.
        gds: with the Graph Data Science procedures (`gds.*`; default True).
    """

    home: Path
    password: str = field(repr=False)
    bolt_port: int = 7687
    http_port: int = 7474
    heap: str = "1g"
    pagecache: str = "512m"
    startup_timeout_s: float = 300.0
    java: str = "java"
    mvn: str = "mvn"
    pom: Path = DEFAULT_POM
    gds: bool = True

    def __post_init__(self) -> None:
        self.home = Path(self.home).resolve()
        if not self.password or len(self.password) < 8:
            raise ValueError("Neo4j needs a password of 8 or more characters: set NEO4J_PASSWORD")
        for name in ("bolt_port", "http_port"):
            port = getattr(self, name)
            if not 1 <= int(port) <= 65535:
                raise ValueError(f"{name} must be in 1..65535, got {port}")
        for name in ("heap", "pagecache"):
            if not _SIZE.match(str(getattr(self, name))):
                raise ValueError(f"{name} must look like 512m or 2g, got {getattr(self, name)!r}")

    @property
    def bolt_uri(self) -> str:
        return f"bolt://127.0.0.1:{self.bolt_port}"

    @property
    def http_uri(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"


@dataclass
class RunningServer:
    """A started server: its pid, and how long it took until Bolt answered."""

    config: ServerConfig
    pid: int
    startup_s: float

    @property
    def bolt_uri(self) -> str:
        return self.config.bolt_uri

    @property
    def http_uri(self) -> str:
        return self.config.http_uri


# --- tools ---------------------------------------------------------------------------------------------
def check_tools(java: str = "java", mvn: str = "mvn") -> None:
    """Raise Neo4jServerUnavailable unless Java 17+ and Maven are on this machine."""
    if shutil.which(java) is None:
        raise Neo4jServerUnavailable(f"no `{java}` on PATH: Neo4j 5.26 needs Java 17 or 21 (apt-get install openjdk-17-jre-headless)")
    if shutil.which(mvn) is None:
        raise Neo4jServerUnavailable(f"no `{mvn}` on PATH: the server's jars come from Maven Central (apt-get install maven)")
    out = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=60)
    m = re.search(r'version "(\d+)', out.stderr + out.stdout)
    if not m or int(m.group(1)) < 17:
        raise Neo4jServerUnavailable(f"Neo4j 5.26 needs Java 17 or newer; `{java} -version` says: "
                                     f"{(out.stderr or out.stdout).strip().splitlines()[:1]}")


def _cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "kgrec" / "neo4j"


def resolve_classpath(pom: Path = DEFAULT_POM, mvn: str = "mvn", timeout_s: float = 900) -> str:
    """The server's classpath: Maven resolves the pom's artifacts (downloaded once into ~/.m2) and the
    result is cached beside them, keyed by the pom's content; a cached path whose jars vanished is redone."""
    pom = Path(pom).resolve()
    key = hashlib.sha256(pom.read_bytes()).hexdigest()[:16]
    cached = _cache_dir() / f"classpath-{key}.txt"
    if cached.exists():
        cp = cached.read_text().strip()
        if cp and all(Path(p).exists() for p in cp.split(os.pathsep)):
            return cp
    cached.parent.mkdir(parents=True, exist_ok=True)
    tmp = cached.with_suffix(".tmp")
    cmd = [mvn, "-q", "-B", "-f", str(pom), "dependency:build-classpath", f"-Dmdep.outputFile={tmp}"]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        raise Neo4jServerUnavailable(f"Maven did not resolve {pom} within {timeout_s:.0f}s") from None
    if out.returncode != 0 or not tmp.exists():
        tail = "\n".join((out.stdout + out.stderr).strip().splitlines()[-15:])
        raise Neo4jServerUnavailable(f"Maven could not resolve Neo4j {NEO4J_VERSION} from {pom}:\n{tail}")
    tmp.replace(cached)
    return cached.read_text().strip()


# --- the server ----------------------------------------------------------------------------------------
def _conf(config: ServerConfig) -> str:
    h = config.home
    return "\n".join([
        "# written by kg/neo4j_server.py on every start; edit ServerConfig, not this file",
        f"server.directories.data={h / 'data'}",
        f"server.directories.logs={h / 'logs'}",
        f"server.directories.run={h / 'run'}",
        f"server.directories.import={h / 'import'}",
        f"server.directories.plugins={h / 'plugins'}",
        f"server.directories.lib={h / 'lib'}",
        "server.default_listen_address=127.0.0.1",
        f"server.bolt.listen_address=127.0.0.1:{config.bolt_port}",
        f"server.bolt.advertised_address=127.0.0.1:{config.bolt_port}",
        f"server.http.listen_address=127.0.0.1:{config.http_port}",
        f"server.http.advertised_address=127.0.0.1:{config.http_port}",
        "server.https.enabled=false",
        "dbms.security.auth_enabled=true",
        f"server.memory.heap.initial_size={config.heap}",
        f"server.memory.heap.max_size={config.heap}",
        f"server.memory.pagecache.size={config.pagecache}",
        "dbms.usage_report.enabled=false",
        # bounded transaction log: the store is rebuilt from the input files, not from old logs
        "db.tx_log.rotation.retention_policy=2 files",
        # GDS reaches into the kernel (in-memory graphs, its own threads): its procedures run unrestricted
        *(["dbms.security.procedures.unrestricted=gds.*"] if config.gds else []),
        "",
    ])


def _prepare(config: ServerConfig) -> dict[str, str]:
    """Create the home layout and conf/neo4j.conf; the environment the Neo4j tools read it from."""
    for sub in ("conf", "data", "logs", "run", "import", "plugins", "lib"):
        (config.home / sub).mkdir(parents=True, exist_ok=True)
    (config.home / "conf" / "neo4j.conf").write_text(_conf(config), encoding="utf-8")
    return {**os.environ, "NEO4J_HOME": str(config.home), "NEO4J_CONF": str(config.home / "conf")}


_GDS_PATH = "/org/neo4j/gds/"  # where Maven keeps the GDS jars (group org.neo4j.gds)


def server_classpath(classpath: str, gds: bool) -> str:
    """`classpath` as the server runs with it: all of it with GDS, else without the org.neo4j.gds jars
    (their few third-party libraries stay: unused, they change nothing)."""
    if gds:
        return classpath
    return os.pathsep.join(p for p in classpath.split(os.pathsep) if _GDS_PATH not in Path(p).as_posix())


def _link_plugins(home: Path, classpath: str, gds: bool) -> int:
    """Make home/plugins/ hold a symbolic link to each org.neo4j.gds jar of `classpath` (with `gds`) or
    none: earlier links into a GDS path are removed first, anything else there is left alone.
    Returns the number of links."""
    plugins = home / "plugins"
    for entry in plugins.iterdir():
        if entry.is_symlink() and _GDS_PATH in os.readlink(entry).replace(os.sep, "/"):
            entry.unlink()
    if not gds:
        return 0
    jars = [Path(p) for p in classpath.split(os.pathsep) if _GDS_PATH in Path(p).as_posix() and p.endswith(".jar")]
    if not jars:
        raise Neo4jServerUnavailable(f"the classpath from {DEFAULT_POM.name} has no org.neo4j.gds jars: is Graph "
                                     f"Data Science {GDS_VERSION} still in the pom? (or start with gds=False)")
    for jar in jars:
        (plugins / jar.name).symlink_to(jar)
    return len(jars)


def _pid_file(home: Path) -> Path:
    return Path(home).resolve() / "neo4j.pid"


def pid_of(home: Path) -> int | None:
    """The pid of the server running from `home`, or None (a stale pid file is removed)."""
    path = _pid_file(home)
    if not path.exists():
        return None
    try:
        pid = int(path.read_text().strip())
    except ValueError:
        path.unlink(missing_ok=True)
        return None
    if not _alive(pid):
        path.unlink(missing_ok=True)
        return None
    return pid


def is_running(home: Path) -> bool:
    return pid_of(home) is not None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie (exited, not yet reaped) is not a running server
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        return state != "Z"
    except (OSError, IndexError):
        return True


def log_tail(home: Path, lines: int = 30) -> str:
    """The last lines of the server's console output and neo4j.log (for error messages)."""
    out = []
    for name in ("console.log", "neo4j.log"):
        path = Path(home).resolve() / "logs" / name
        if path.exists():
            text = path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:]
            if text:
                out.append(f"--- {path} ---\n" + "\n".join(text))
    return "\n".join(out) or f"(no logs under {Path(home).resolve() / 'logs'})"


def admin(config: ServerConfig, *args: str, classpath: str | None = None, timeout_s: float = 3600,
          heap: str | None = None) -> subprocess.CompletedProcess:
    """Run `neo4j-admin ARGS` (org.neo4j.cli.AdminTool) against `config.home`; raises on a non-zero exit."""
    # the admin tool needs none of GDS
    cp = server_classpath(classpath or resolve_classpath(config.pom, config.mvn), gds=False)
    env = _prepare(config)
    cmd = [config.java, f"-Xmx{heap or config.heap}", *JVM_FLAGS, "-cp", cp, _ADMIN_TOOL, *args]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout_s)
    if out.returncode != 0:
        tail = "\n".join((out.stdout + out.stderr).strip().splitlines()[-20:])
        raise Neo4jServerError(f"neo4j-admin {' '.join(args[:3])} failed (exit {out.returncode}):\n{tail}")
    return out


def _wait_for_bolt(config: ServerConfig, proc: subprocess.Popen, t0: float) -> None:
    import neo4j
    from neo4j.exceptions import AuthError, ServiceUnavailable

    deadline = t0 + config.startup_timeout_s
    while True:
        if proc.poll() is not None:
            raise Neo4jServerError(f"Neo4j exited with code {proc.returncode} while starting:\n{log_tail(config.home)}")
        try:
            with neo4j.GraphDatabase.driver(config.bolt_uri, auth=("neo4j", config.password),
                                            connection_timeout=5) as driver:
                driver.verify_connectivity()
            return
        except AuthError as e:
            raise Neo4jServerError(
                f"Neo4j at {config.bolt_uri} is up but refused the password ({e}). The password is set only "
                f"on a home's first start: use the one {config.home} was created with, or a new home") from e
        except (ServiceUnavailable, OSError):
            pass
        if time.monotonic() > deadline:
            raise Neo4jServerError(f"Bolt at {config.bolt_uri} did not answer within {config.startup_timeout_s:.0f}s:\n"
                                   f"{log_tail(config.home)}")
        time.sleep(0.5)


def start(config: ServerConfig, classpath: str | None = None) -> RunningServer:
    """Start the server in the background (its own process group) and wait until Bolt answers.

    A home that already runs a server is an error; so is a server that exits or does not answer within
    `startup_timeout_s` (it is then killed), each with the tail of its log."""
    check_tools(config.java, config.mvn)
    if (pid := pid_of(config.home)) is not None:
        raise Neo4jServerError(f"a Neo4j server from {config.home} is already running (pid {pid}); "
                               f"stop it first (scripts/neo4j_server.py stop --home {config.home})")
    full_cp = classpath or resolve_classpath(config.pom, config.mvn)
    cp = server_classpath(full_cp, config.gds)
    env = _prepare(config)
    _link_plugins(config.home, full_cp, config.gds)
    if not (config.home / "data" / "dbms").exists():  # first start: the password must be set before it
        # "--": the password is a positional value even when it starts with "-" (a random one may)
        admin(config, "dbms", "set-initial-password", "--", config.password, classpath=full_cp, timeout_s=300,
              heap="256m")
    cmd = [config.java, f"-Xms{config.heap}", f"-Xmx{config.heap}", *JVM_FLAGS, "-cp", cp, _ENTRY_POINT,
           f"--home-dir={config.home}", f"--config-dir={config.home / 'conf'}"]
    console = open(config.home / "logs" / "console.log", "ab")
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, env=env, stdout=console, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            start_new_session=True, cwd=config.home)
    console.close()
    _pid_file(config.home).write_text(str(proc.pid))
    try:
        _wait_for_bolt(config, proc, t0)
    except BaseException:
        _terminate(proc.pid, 10)
        _pid_file(config.home).unlink(missing_ok=True)
        raise
    return RunningServer(config, proc.pid, time.monotonic() - t0)


def _terminate(pid: int, timeout_s: float) -> bool:
    """SIGTERM the server's process group, SIGKILL it after `timeout_s`; True if it had to be killed."""
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        _reap(pid)
        if not _alive(pid):
            return False
        time.sleep(0.2)
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        return False
    for _ in range(50):
        _reap(pid)
        if not _alive(pid):
            break
        time.sleep(0.1)
    return True


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def stop(home: Path, timeout_s: float = 60) -> bool:
    """Stop the server of `home` (a clean shutdown; killed after `timeout_s`). False if none was running."""
    pid = pid_of(home)
    if pid is None:
        return False
    _terminate(pid, timeout_s)
    _pid_file(home).unlink(missing_ok=True)
    return True


def kill(home: Path) -> bool:
    """Kill the server of `home` at once (SIGKILL, as a crash would); False if none was running."""
    pid = pid_of(home)
    if pid is None:
        return False
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    for _ in range(100):
        _reap(pid)
        if not _alive(pid):
            break
        time.sleep(0.1)
    _pid_file(home).unlink(missing_ok=True)
    return True


def memory_kib(pid: int) -> dict[str, int]:
    """Resident memory of a process from /proc: `rss` now and `peak` (VmHWM), in KiB ({} off Linux)."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return {}
    found = dict(re.findall(r"^(VmRSS|VmHWM):\s+(\d+) kB", text, re.M))
    return {"rss": int(found.get("VmRSS", 0)), "peak": int(found.get("VmHWM", 0))}
