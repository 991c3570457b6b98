"""A strict guard in front of the Docker socket: the daemon and the webserver reach the Docker API
only through it, and it forwards only the calls their profile allows (`docker_api_policy`).

    python -m mlplatform.deployment.docker_api_guard --profile launcher --listen 0.0.0.0:2375

Why it is written here: the Docker API is host root (a privileged container with / mounted is
one POST /containers/create away), and what has to be refused is in the request body.
- Socket proxies that filter by URL path (linuxserver/socket-proxy, tecnativa/docker-socket-proxy:
  HAProxy rules on method and path) cannot see a create body: "containers, POST" lets any
  container be created, and "containers, GET" serves every container's inspect (its Env: the
  passwords), archive, export and logs.
- Docker's authorization plugins (e.g. Open Policy Agent's) see bodies, but are installed from an
  image registry (`docker plugin install`), which these machines cannot reach, and would bind the
  policy to the host's engine configuration rather than to the deployment.
- No well-kept proxy validates request bodies against an allowlist.
So this one is small, stdlib-only, and runs from the platform's own image.

It listens on TCP (an internal network shared with its one client), reads the request, asks the
policy, and either answers 403 with Docker's error shape ({"message": ...}) or forwards the
policy's canonical request (its path, its query, its re-serialised body: never the bytes
received) to the engine over the Unix socket, streaming the answer back (Content-Length,
chunked, or to the end). Inspect is answered by the guard from its own lookup, filtered. No
attach, exec or other connection upgrade is ever forwarded. Each refusal is logged with its
method, path and reason; bodies and queries are never logged.

Settings come from the environment: DOCKER_GUARD_IMAGES, DOCKER_GUARD_NETWORKS and
DOCKER_GUARD_VOLUMES (names separated by commas; the launcher needs images and networks),
DOCKER_GUARD_RUN_LABEL (default com.mlplatform.role=run) and DOCKER_GUARD_SOCKET (default
/var/run/docker.sock; --socket overrides it).
"""

from __future__ import annotations

import argparse
import http.client
import json
import logging
import os
import signal
import socket
import sys
import threading
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from mlplatform.deployment.docker_api_policy import PROFILES, Decision, Looked, Rules, decide
from mlplatform.deployment.docker_create_body import MAX_BODY_BYTES

LOG = logging.getLogger("mlplatform.docker_api_guard")
DEFAULT_SOCKET = "/var/run/docker.sock"
# Headers that describe one connection, not the answer: never relayed.
_HOP_BY_HOP = {
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
    "transfer-encoding", "upgrade", "content-length",
}  # fmt: skip
_CHUNK = 65536


class UnixHTTPConnection(http.client.HTTPConnection):
    """HTTP over the engine's Unix socket."""

    def __init__(self, socket_path: str, timeout: float):
        super().__init__("docker", timeout=timeout)
        self.socket_path = socket_path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self.socket_path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


class Engine:
    """The Docker engine behind the guard."""

    def __init__(self, socket_path: str):
        self.socket_path = socket_path

    def open(
        self, method: str, target: str, body: bytes | None, timeout: float
    ) -> tuple[UnixHTTPConnection, http.client.HTTPResponse]:
        connection = UnixHTTPConnection(self.socket_path, timeout)
        headers = {"User-Agent": "mlplatform-docker-api-guard"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        try:
            connection.request(method, target, body=body, headers=headers)
            return connection, connection.getresponse()
        except BaseException:
            connection.close()
            raise

    def lookup(self, container: str) -> Looked:
        """GET /containers/{container}/json, as the policy needs it."""
        try:
            connection, response = self.open("GET", f"/containers/{container}/json", None, 30)
            try:
                data = response.read()
            finally:
                connection.close()
            parsed = json.loads(data) if data else {}
        except (OSError, http.client.HTTPException, ValueError) as error:
            return Looked(502, None, f"the Docker engine did not answer ({type(error).__name__})")
        if response.status == 200 and isinstance(parsed, dict):
            return Looked(200, parsed)
        message = parsed.get("message", "") if isinstance(parsed, dict) else ""
        return Looked(response.status, None, str(message)[:300])


class GuardHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "mlplatform-docker-api-guard"
    # An idle keep-alive connection is closed after this long (docker-py reconnects).
    timeout = 300
    rules: Rules
    engine: Engine

    def do_GET(self) -> None:
        self.handle_call()

    do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_GET

    def handle_call(self) -> None:
        body = self.read_body()
        if body is None:
            return
        url = urlsplit(self.path)
        if self.headers.get("Upgrade"):
            decision = Decision(False, "connection upgrades (attach, exec) are not allowed", 403)
        else:
            decision = decide(
                self.rules, self.command, url.path, url.query, body, self.engine.lookup
            )
        if not decision.allowed:
            self.refuse(decision.status, decision.reason, url.path)
        elif decision.answer is not None:
            self.answer(200, decision.answer)
        else:
            self.forward(decision)

    def read_body(self) -> bytes | None:
        """The request's body, or None once it has been refused (and the connection closed)."""
        path = urlsplit(self.path).path
        if self.headers.get("Transfer-Encoding"):
            self.close_connection = True
            self.refuse(403, "chunked request bodies are not allowed", path)
            return None
        length = self.headers.get("Content-Length", "0").strip() or "0"
        if not length.isdigit() or int(length) > MAX_BODY_BYTES:
            self.close_connection = True
            self.refuse(403, f"a body must have a Content-Length up to {MAX_BODY_BYTES}", path)
            return None
        return self.rfile.read(int(length)) if int(length) else b""

    def refuse(self, status: int, reason: str, path: str) -> None:
        if status == 403:
            LOG.warning(
                "refused %s %r (%s): %s", self.command, path[:200], self.rules.profile, reason
            )
        self.answer(status, {"message": f"docker-api-guard: {reason}" if status == 403 else reason})

    def answer(self, status: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        self.send_response_only(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def forward(self, decision: Decision) -> None:
        try:
            connection, response = self.engine.open(
                decision.method, decision.target, decision.body, decision.timeout
            )
        except (OSError, http.client.HTTPException) as error:
            LOG.error("the Docker engine did not answer %s: %s", decision.reason, error)
            self.answer(502, {"message": "docker-api-guard: the Docker engine did not answer"})
            return
        try:
            self.relay(response)
        finally:
            connection.close()

    def relay(self, response: http.client.HTTPResponse) -> None:
        """The engine's answer, streamed: its status, its headers but those of the connection,
        and its body framed as the engine framed it."""
        self.send_response_only(response.status, response.reason or None)
        for name, value in response.getheaders():
            if name.lower() not in _HOP_BY_HOP:
                self.send_header(name, value)
        length = response.getheader("Content-Length")
        no_body = self.command == "HEAD" or response.status in (204, 304) or response.status < 200
        if no_body:
            if length is not None and self.command == "HEAD":
                self.send_header("Content-Length", length)
            self.end_headers()
        elif response.length is not None:
            self.send_header("Content-Length", str(response.length))
            self.end_headers()
            while chunk := response.read(_CHUNK):
                self.wfile.write(chunk)
        elif response.chunked:
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            self.wfile.flush()
            while chunk := response.read1(_CHUNK):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
        else:
            self.close_connection = True
            self.send_header("Connection", "close")
            self.end_headers()
            while chunk := response.read1(_CHUNK):
                self.wfile.write(chunk)
                self.wfile.flush()
        self.wfile.flush()

    def log_message(self, format: str, *args: Any) -> None:
        # The base class logs every request line (with its query): requests are not logged,
        # refusals are (`refuse`).
        LOG.debug(format, *args)


def make_server(rules: Rules, host: str, port: int, socket_path: str) -> ThreadingHTTPServer:
    handler = type("Handler", (GuardHandler,), {"rules": rules, "engine": Engine(socket_path)})
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    return server


def parse_listen(listen: str) -> tuple[str, int]:
    host, _, port = listen.rpartition(":")
    if not host or not port.isdigit():
        raise argparse.ArgumentTypeError(f"--listen takes HOST:PORT, not {listen!r}")
    return host.strip("[]"), int(port)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m mlplatform.deployment.docker_api_guard",
        description="Forward only the Docker API calls a profile allows.",
    )
    parser.add_argument("--profile", choices=PROFILES, required=True)
    parser.add_argument("--listen", type=parse_listen, default=("127.0.0.1", 2375))
    parser.add_argument("--socket", default=os.environ.get("DOCKER_GUARD_SOCKET", DEFAULT_SOCKET))
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="docker-api-guard %(levelname)s %(message)s"
    )
    try:
        rules = Rules.from_environ(args.profile, os.environ)
    except ValueError as error:
        parser.error(str(error))
    host, port = args.listen
    server = make_server(rules, host, port, args.socket)

    # As PID 1 in a container, a signal without a handler is ignored: stop on SIGTERM.
    def stop(_signum: int, _frame: object) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    LOG.info(
        "profile %s on %s:%d -> %s (images %s, networks %s, volumes %s)",
        rules.profile, host, server.server_address[1], args.socket,
        ",".join(sorted(rules.images)) or "-", ",".join(sorted(rules.networks)) or "-",
        ",".join(sorted(rules.volumes)) or "-",
    )  # fmt: skip
    try:
        server.serve_forever()
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
