#!/usr/bin/env python3
"""Steady GETs of one URL, each on a new connection, for a fixed time; one line per request on stdout.

    steady_get.py URL SECONDS [PAUSE_MS]

Each line: `<unix time the request started> <status or error> <first word after the app name, the version>`.
A request that gets no answer within 2 s is `timeout`; a refused or reset connection is `error:<reason>`.
"""
import http.client
import sys
import time
from urllib.parse import urlsplit

url, seconds = sys.argv[1], float(sys.argv[2])
pause = float(sys.argv[3]) / 1000 if len(sys.argv) > 3 else 0.005
parts = urlsplit(url)
deadline = time.time() + seconds
out = sys.stdout
while time.time() < deadline:
    started = time.time()
    try:
        connection = http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=2)
        connection.request("GET", parts.path or "/", headers={"Connection": "close"})
        answer = connection.getresponse()
        body = answer.read(200).decode("utf-8", "replace").split()
        connection.close()
        version = body[1] if len(body) > 1 and body[0] == "demo-app" else "-"
        out.write(f"{started:.4f} {answer.status} {version}\n")
    except TimeoutError:
        out.write(f"{started:.4f} timeout -\n")
    except Exception as error:  # a refused or reset connection, counted as a failure
        out.write(f"{started:.4f} error:{type(error).__name__} -\n")
    out.flush()
    time.sleep(pause)
