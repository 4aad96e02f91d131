#!/usr/bin/env python3
"""A stand-in for GitHub's, Gitea's and GitLab's status APIs and for chat webhooks: records every request.

    recording-receiver.py RECORD_FILE PORT_FILE [FAILURES]

Listens on a free loopback port (written to PORT_FILE once listening), answers the first FAILURES requests with 500
and the rest with 201, and appends each request as one JSON line to RECORD_FILE:
{"method", "path", "headers" (lower-case names), "body" (text), "answered"}.
"""
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

record_file, port_file = sys.argv[1], sys.argv[2]
failures = int(sys.argv[3]) if len(sys.argv) > 3 else 0
lock = threading.Lock()
seen = 0


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        global seen
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length).decode("utf-8", "replace")
        with lock:
            seen += 1
            status = 500 if seen <= failures else 201
            with open(record_file, "a") as out:
                out.write(json.dumps({"method": "POST", "path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()},
                                      "body": body, "answered": status}) + "\n")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args):
        pass


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
with open(port_file, "w") as out:
    out.write(str(server.server_address[1]))
server.serve_forever()
