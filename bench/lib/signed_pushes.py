"""Signed GitHub pushes for bench/webhook-throughput: sends them, times the answers, and checks after each 202
that the deployment's record is already on disk. Prints one line of key=value pairs.

  signed_pushes.py schedule URL PAYLOAD SECRET_FILE RECORDS_DIR RATE SECONDS
  signed_pushes.py flood    URL PAYLOAD SECRET_FILE RECORDS_DIR COUNT CONCURRENCY

Every push is POST /hooks/github with X-GitHub-Event: push, a new X-GitHub-Delivery and X-Hub-Signature-256 (HMAC-SHA256
of the body with the secret). After a 202 `{"deployment": ID, "status_url": ...}` the record RECORDS_DIR/ID.json (ID
padded to 6 digits) must exist, parse as JSON and carry that id; each failure counts as a miss.

schedule: open loop. Push i is due at start + i / RATE and goes out on its own thread and its own connection (as
GitHub delivers), whether or not the earlier ones were answered; its latency runs from the time it was due, so a
stall in the server (or in this client) shows in the figures instead of delaying the pushes after it.
flood: COUNT pushes as fast as CONCURRENCY keep-alive connections allow; then waits until the newest deployment's
record says it finished, so that nothing runs or waits in the server any more.
"""
import hashlib
import hmac
import http.client
import json
import math
import sys
import threading
import time
import urllib.parse
import uuid

FINISHED = {"succeeded", "failed", "cancelled", "superseded", "interrupted", "rolled_back"}


class Push:
    """The request every push sends, apart from its delivery id."""

    def __init__(self, base, payload_file, secret_file):
        url = urllib.parse.urlsplit(base)
        self.host, self.port = url.hostname, url.port
        self.body = open(payload_file, "rb").read()
        secret = open(secret_file, "rb").read().strip()
        self.signature = "sha256=" + hmac.new(secret, self.body, hashlib.sha256).hexdigest()

    def headers(self, keep_alive):
        return {"Content-Type": "application/json", "X-GitHub-Event": "push", "X-Hub-Signature-256": self.signature,
                "X-GitHub-Delivery": str(uuid.uuid4()), "User-Agent": "GitHub-Hookshot/bench",
                "Connection": "keep-alive" if keep_alive else "close"}

    def connect(self):
        return http.client.HTTPConnection(self.host, self.port, timeout=30)


class Tally:
    """Answers and record checks, shared by the sending threads."""

    def __init__(self, records):
        self.records = records
        self.lock = threading.Lock()
        self.latencies = []
        self.accepted = 0
        self.statuses = {}
        self.errors = 0
        self.misses = {"missing": 0, "unparsable": 0, "wrong_id": 0, "bad_answer": 0}
        self.newest = 0

    def answered(self, status, body, latency):
        miss, deployment = (self.check(body) if status == 202 else (None, 0))
        with self.lock:
            self.latencies.append(latency)
            if status == 202:
                self.accepted += 1
                self.newest = max(self.newest, deployment)
                if miss:
                    self.misses[miss] += 1
            else:
                self.statuses[status] = self.statuses.get(status, 0) + 1

    def failed(self):
        with self.lock:
            self.errors += 1

    def check(self, body):
        """(None or the kind of miss, deployment id) for a 202 answer, checked against the disk at once."""
        try:
            answer = json.loads(body)
            deployment = answer["deployment"]
            if not isinstance(deployment, int) or not isinstance(answer.get("status_url"), str):
                return "bad_answer", 0
        except (ValueError, KeyError, TypeError):
            return "bad_answer", 0
        try:
            with open(f"{self.records}/{deployment:06d}.json", "rb") as record:
                found = json.load(record)
        except FileNotFoundError:
            return "missing", deployment
        except ValueError:
            return "unparsable", deployment
        return (None if isinstance(found, dict) and found.get("id") == deployment else "wrong_id"), deployment

    def fields(self):
        ordered = sorted(self.latencies)

        def percentile(p):
            return ordered[max(0, math.ceil(p * len(ordered)) - 1)] * 1000 if ordered else float("nan")

        other = ",".join(f"{status}:{count}" for status, count in sorted(self.statuses.items())) or "-"
        misses = sum(self.misses.values())
        kinds = " ".join(f"{kind}={count}" for kind, count in self.misses.items())
        return (f"accepted={self.accepted} other={other} errors={self.errors} p50_ms={percentile(0.50):.2f} "
                f"p99_ms={percentile(0.99):.2f} max_ms={percentile(1.0):.2f} misses={misses} {kinds}")


def schedule(base, payload_file, secret_file, records, rate, seconds):
    push = Push(base, payload_file, secret_file)
    tally = Tally(records)
    count = round(float(rate) * float(seconds))
    interval = 1 / float(rate)
    late = [0.0]

    def send(due):
        late[0] = max(late[0], time.monotonic() - due)  # how far this client fell behind its own schedule
        connection = push.connect()
        try:
            connection.request("POST", "/hooks/github", body=push.body, headers=push.headers(keep_alive=False))
            answer = connection.getresponse()
            body = answer.read()
            latency = time.monotonic() - due
        except (OSError, http.client.HTTPException):
            tally.failed()
            return
        finally:
            connection.close()
        tally.answered(answer.status, body, latency)

    threads = []
    start = time.monotonic() + 0.1
    for i in range(count):
        due = start + i * interval
        pause = due - time.monotonic()
        if pause > 0:
            time.sleep(pause)
        thread = threading.Thread(target=send, args=(due,))
        thread.start()
        threads.append(thread)
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - start
    print(f"pushes={count} {tally.fields()} client_late_ms={late[0] * 1000:.2f} seconds={elapsed:.3f}")


def flood(base, payload_file, secret_file, records, count, concurrency):
    push = Push(base, payload_file, secret_file)
    tally = Tally(records)
    count = int(count)
    left = [count]
    lock = threading.Lock()

    def worker():
        connection = push.connect()
        while True:
            with lock:
                if left[0] == 0:
                    break
                left[0] -= 1
            started = time.monotonic()
            try:
                connection.request("POST", "/hooks/github", body=push.body, headers=push.headers(keep_alive=True))
                answer = connection.getresponse()
                body = answer.read()
            except (OSError, http.client.HTTPException):
                tally.failed()
                connection.close()
                connection = push.connect()
                continue
            tally.answered(answer.status, body, time.monotonic() - started)
            if answer.will_close:
                connection.close()
                connection = push.connect()
        connection.close()

    start = time.monotonic()
    threads = [threading.Thread(target=worker) for _ in range(int(concurrency))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - start
    settled = settle(records, tally.newest)
    print(f"pushes={count} {tally.fields()} seconds={elapsed:.3f} settle_seconds={settled}")


def settle(records, newest, limit=60.0):
    """Seconds until the newest deployment's record says it finished (then nothing runs or waits); -1 past the limit."""
    if newest == 0:
        return "-1"
    start = time.monotonic()
    while time.monotonic() - start < limit:
        try:
            with open(f"{records}/{newest:06d}.json", "rb") as record:
                if json.load(record).get("status") in FINISHED:
                    return f"{time.monotonic() - start:.3f}"
        except (OSError, ValueError):
            pass
        time.sleep(0.02)
    return "-1"


if __name__ == "__main__":
    if len(sys.argv) == 8 and sys.argv[1] == "schedule":
        schedule(*sys.argv[2:])
    elif len(sys.argv) == 8 and sys.argv[1] == "flood":
        flood(*sys.argv[2:])
    else:
        raise SystemExit(__doc__)
