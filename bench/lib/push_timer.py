"""Client-side timing for bench/push-to-live: send a signed GitHub push (or a rollback), then poll nginx
until it serves the expected version. Prints one line of key=value pairs.

  push_timer.py push     PUSHDEPLOY_URL SECRET_FILE COMMIT REPO_URL NGINX_URL OLD_VERSION
  push_timer.py rollback PUSHDEPLOY_URL TOKEN_FILE NGINX_URL WANTED_VERSION

push: POST /hooks/github with X-Hub-Signature-256 (HMAC-SHA256 of the body with the secret), X-GitHub-Event: push and
a fresh X-GitHub-Delivery; then GET nginx (a new connection each time, every 5 ms) until it answers 200 with a version
other than OLD_VERSION. rollback: POST /rollback with the bearer token (no body: the previous good release), then poll
until nginx answers WANTED_VERSION. The clock starts just before the request is sent.
"""
import hashlib
import hmac
import http.client
import json
import sys
import time
import urllib.parse
import uuid

POLL = 0.005
LIMIT = 300.0


def post(base, path, body, headers):
    url = urllib.parse.urlsplit(base)
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
    connection.request("POST", path, body=body, headers=headers)
    answer = connection.getresponse()
    data = answer.read()
    connection.close()
    return answer.status, data


def served(nginx):
    """(status, version) of one GET / through nginx over a new connection; (0, '') when it fails."""
    url = urllib.parse.urlsplit(nginx)
    try:
        connection = http.client.HTTPConnection(url.hostname, url.port, timeout=5)
        connection.request("GET", url.path or "/", headers={"Connection": "close"})
        answer = connection.getresponse()
        words = answer.read().decode(errors="replace").split()
        connection.close()
        return answer.status, (words[1] if len(words) > 1 else "")
    except OSError:
        return 0, ""


def poll(nginx, started, done):
    """Polls until done(version) for a 200; returns (seconds, version, bad answers seen on the way)."""
    bad = []
    while time.monotonic() - started < LIMIT:
        status, version = served(nginx)
        if status == 200 and done(version):
            return time.monotonic() - started, version, bad
        if status != 200:
            bad.append(str(status))
        time.sleep(POLL)
    raise SystemExit(f"nginx did not serve the expected version within {LIMIT:.0f} s")


def push(base, secret_file, commit, repo_url, nginx, old):
    secret = open(secret_file, "rb").read().strip()
    body = json.dumps({
        "ref": "refs/heads/main",
        "before": "0" * 40,
        "after": commit,
        "created": False, "deleted": False, "forced": False,
        "repository": {"name": "demo-app", "full_name": "bench/demo-app", "clone_url": repo_url},
        "pusher": {"name": "bench", "email": "bench@example.invalid"},
        "head_commit": {"id": commit, "message": "bench push"},
    }).encode()
    signature = "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()
    headers = {"Content-Type": "application/json", "X-GitHub-Event": "push", "X-Hub-Signature-256": signature,
               "X-GitHub-Delivery": str(uuid.uuid4()), "User-Agent": "GitHub-Hookshot/bench"}
    started = time.monotonic()
    status, answer = post(base, "/hooks/github", body, headers)
    accepted = time.monotonic() - started
    if status != 202:
        raise SystemExit(f"POST /hooks/github answered {status}: {answer[:300]!r}")
    deployment = json.loads(answer)["deployment"]
    seconds, version, bad = poll(nginx, started, lambda v: v != old)
    print(f"deployment={deployment} accepted={accepted:.4f} seconds={seconds:.4f} version={version} bad={','.join(bad) or '-'}")


def rollback(base, token_file, nginx, wanted):
    token = open(token_file).read().strip()
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    started = time.monotonic()
    status, answer = post(base, "/rollback", b"{}", headers)
    accepted = time.monotonic() - started
    if status != 202:
        raise SystemExit(f"POST /rollback answered {status}: {answer[:300]!r}")
    deployment = json.loads(answer)["deployment"]
    seconds, version, bad = poll(nginx, started, lambda v: v == wanted)
    print(f"deployment={deployment} accepted={accepted:.4f} seconds={seconds:.4f} version={version} bad={','.join(bad) or '-'}")


if __name__ == "__main__":
    if len(sys.argv) == 8 and sys.argv[1] == "push":
        push(*sys.argv[2:])
    elif len(sys.argv) == 6 and sys.argv[1] == "rollback":
        rollback(*sys.argv[2:])
    else:
        raise SystemExit(__doc__)
