"""The benchmarks' target: a local nginx answering "ok", so the generator is what is measured.

One worker process (optionally pinned to a core with taskset), keep-alive without limits, no
access log. Used by generator.py and memory.py; never part of the test run.
"""

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

NGINX_CONF = """\
worker_processes 1;
worker_rlimit_nofile {nofile};
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 30000; }}
http {{
    access_log off;
    keepalive_timeout 300s;
    keepalive_requests 1000000;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        location / {{ return 200 "ok"; }}
    }}
}}
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_nginx(tmp: Path, nofile: int = 65536, core: str | None = None,
                nginx: str | None = None) -> tuple[subprocess.Popen, int]:
    """Start nginx in ``tmp`` on a free port; ``core`` pins it with taskset. Returns (process, port)."""
    nginx = nginx or shutil.which("nginx") or "/usr/sbin/nginx"
    port = free_port()
    for sub in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (tmp / sub).mkdir()
    os.chmod(tmp, 0o755)
    conf = tmp / "nginx.conf"
    conf.write_text(NGINX_CONF.format(tmp=tmp, port=port, nofile=nofile))
    # nginx inherits this process's RLIMIT_NOFILE, raised in main().
    pin = ["taskset", "-c", core] if core is not None else []
    proc = subprocess.Popen([*pin, nginx, "-c", str(conf), "-p", str(tmp), "-g", "daemon off;"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"nginx exited: {proc.stderr.read().decode(errors='replace')}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc, port
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise SystemExit("nginx did not start listening within 10 s")


def stop_nginx(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
