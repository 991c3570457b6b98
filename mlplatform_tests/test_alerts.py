"""The alert webhook's URL is a secret (an incoming webhook's token is in its path): a post that
fails must say where it went wrong without it, in the error and in everything chained to it, as
Dagster stores a sensor tick's error in the instance's database and shows it in the UI."""

import http.server
import socket
import sys
import threading
import traceback
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from dagster._utils.error import serializable_error_info_from_exc_info

from mlplatform.resources.alerts import AlertDeliveryError, AlertWebhook, webhook_host
from mlplatform_tests.servers import free_port

SECRET_PATH = "/services/T0SECRET/B0SECRET/xoxb-webhook-token"


class Log:
    def warning(self, message: str) -> None:
        raise AssertionError(f"unexpected warning: {message}")


@contextmanager
def answering(status: int, delay: float = 0.0) -> Iterator[int]:
    """A local endpoint that answers every POST with `status` (after `delay` seconds)."""
    stop = threading.Event()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            stop.wait(delay)
            self.send_response(status)
            self.end_headers()
            self.wfile.write(f"error for {self.path}".encode())

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        stop.set()
        server.shutdown()
        server.server_close()


def failure_text(webhook: AlertWebhook) -> str:
    """Everything an operator (or the database) gets from the failed post: the formatted
    exception with its chain, and Dagster's serialized error info."""
    with pytest.raises(AlertDeliveryError) as raised:
        webhook.post({"text": "a run failed"}, Log())
    error = raised.value
    formatted = "".join(traceback.format_exception(error))
    try:
        raise error
    except AlertDeliveryError:
        stored = serializable_error_info_from_exc_info(sys.exc_info()).to_string()
    return formatted + stored


def assert_no_secret(text: str) -> None:
    for part in ("T0SECRET", "B0SECRET", "xoxb-webhook-token", "p4ssw0rd"):
        assert part not in text, f"{part!r} leaked into:\n{text}"


def test_a_server_error_names_status_and_host_not_the_url():
    with answering(500) as port:
        text = failure_text(AlertWebhook(url=f"http://127.0.0.1:{port}{SECRET_PATH}"))
    assert f"the webhook at http://127.0.0.1:{port}: HTTP 500" in text
    assert_no_secret(text)


def test_an_unreachable_webhook_names_the_host_not_the_url():
    port = free_port()  # nothing listens there
    text = failure_text(AlertWebhook(url=f"http://127.0.0.1:{port}{SECRET_PATH}"))
    assert f"the webhook at http://127.0.0.1:{port}: ConnectionError" in text
    assert_no_secret(text)


def test_a_slow_webhook_times_out_without_the_url():
    with answering(200, delay=5) as port:
        webhook = AlertWebhook(url=f"http://127.0.0.1:{port}{SECRET_PATH}", timeout_seconds=0.3)
        text = failure_text(webhook)
    assert "ReadTimeout" in text
    assert_no_secret(text)


def test_credentials_in_the_url_are_not_shown_either():
    port = free_port()
    url = f"http://alerts:p4ssw0rd@127.0.0.1:{port}{SECRET_PATH}?token=xoxb-webhook-token"
    text = failure_text(AlertWebhook(url=url))
    assert "http://127.0.0.1:" in text
    assert_no_secret(text)
    # A URL requests cannot even parse is refused without repeating it.
    assert_no_secret(failure_text(AlertWebhook(url=f"http://[127.0.0.1{SECRET_PATH}")))


def test_the_unredacted_error_would_have_leaked():
    """The guard above is not vacuous: requests' own error carries the secret path."""
    import requests

    with answering(500) as port:
        response = requests.post(f"http://127.0.0.1:{port}{SECRET_PATH}", json={}, timeout=5)
    with pytest.raises(requests.HTTPError) as raised:
        response.raise_for_status()
    assert "xoxb-webhook-token" in str(raised.value)


def test_webhook_host_keeps_scheme_host_and_port_only():
    assert webhook_host("https://hooks.slack.com/services/T/B/X") == "https://hooks.slack.com"
    assert webhook_host("http://u:p@10.0.0.5:8080/x?y=z") == "http://10.0.0.5:8080"
    assert webhook_host("http://[::1/x") == "(an unparsable URL)"


def test_a_delivered_alert_still_returns_true():
    with answering(200) as port:
        webhook = AlertWebhook(url=f"http://127.0.0.1:{port}{SECRET_PATH}")
        assert webhook.post({"text": "ok"}, Log()) is True


def test_free_port_is_closed():
    # The unreachable case depends on nothing listening on a port free_port returned.
    port = free_port()
    with socket.socket() as probe, pytest.raises(ConnectionRefusedError):
        probe.connect(("127.0.0.1", port))
