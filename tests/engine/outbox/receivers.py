"""Real local receivers for outbox tests: a tiny SMTP server and an HTTP webhook endpoint.

Both listen on 127.0.0.1 on a free port in a background thread and record what they receive.
"""

from __future__ import annotations

import email
import socketserver
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class SmtpInbox:
    messages: list[Message] = field(default_factory=list)
    envelopes: list[tuple[str, list[str]]] = field(default_factory=list)
    refuse_data: bool = False  # answer DATA with a temporary failure


class _SmtpSession(socketserver.StreamRequestHandler):
    inbox: SmtpInbox

    def _reply(self, line: str) -> None:
        self.wfile.write(line.encode() + b"\r\n")

    def handle(self) -> None:
        self._reply("220 localhost test SMTP")
        sender, recipients = "", []
        while raw := self.rfile.readline():
            command = raw.decode().strip()
            verb = command.split(" ", 1)[0].upper()
            if verb in ("EHLO", "HELO"):
                self._reply("250 localhost")
            elif verb == "MAIL":
                sender, recipients = command[10:].strip("<> "), []
                self._reply("250 OK")
            elif verb == "RCPT":
                recipients.append(command[8:].strip("<> "))
                self._reply("250 OK")
            elif verb == "DATA" and self.inbox.refuse_data:
                self._reply("451 try again later")
            elif verb == "DATA":
                self._reply("354 end with <CRLF>.<CRLF>")
                self._read_message(sender, recipients)
                self._reply("250 queued")
            elif verb == "QUIT":
                self._reply("221 bye")
                return
            else:  # RSET, NOOP
                self._reply("250 OK")

    def _read_message(self, sender: str, recipients: list[str]) -> None:
        lines = []
        while (line := self.rfile.readline()) not in (b".\r\n", b""):
            lines.append(line[1:] if line.startswith(b"..") else line)
        self.inbox.messages.append(email.message_from_bytes(b"".join(lines)))
        self.inbox.envelopes.append((sender, recipients))


@contextmanager
def smtp_receiver() -> Iterator[tuple[int, SmtpInbox]]:
    """(port, inbox) of an SMTP server running for the block."""
    inbox = SmtpInbox()
    handler = type("Session", (_SmtpSession,), {"inbox": inbox})
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], inbox
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class HookLog:
    """Requests received, and the answers to give: the next status codes, then `default`."""

    requests: list[tuple[str, str, dict[str, str], bytes]] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    default: int = 200
    delay_seconds: float = 0.0
    by_path: dict[str, int] = field(default_factory=dict)  # fixed answers per path


class _HookHandler(BaseHTTPRequestHandler):
    log_: HookLog

    def _handle(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.log_.requests.append((self.command, self.path, dict(self.headers), body))
        if self.log_.delay_seconds:
            time.sleep(self.log_.delay_seconds)
        if self.path in self.log_.by_path:
            status = self.log_.by_path[self.path]
        else:
            status = self.log_.statuses.pop(0) if self.log_.statuses else self.log_.default
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_POST = do_PUT = do_PATCH = do_DELETE = _handle

    def log_message(self, format: str, *args: object) -> None:  # quiet test output
        pass


@contextmanager
def webhook_receiver() -> Iterator[tuple[str, HookLog]]:
    """(base URL, log) of an HTTP server running for the block."""
    log = HookLog()
    handler = type("Hook", (_HookHandler,), {"log_": log})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", log
    finally:
        server.shutdown()
        server.server_close()
