"""One `optimist serve --ephemeral` process and the calls of its test API (`/_optimist/`)."""

import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

READY_WITHIN_S = 10.0
STOP_WITHIN_S = 5.0


def binary():
    """`$OPTIMIST_BIN`, else `optimist` on `PATH`."""
    path = os.environ.get("OPTIMIST_BIN") or shutil.which("optimist")
    if not path:
        raise RuntimeError("optimist not found: set OPTIMIST_BIN or put optimist on PATH")
    return path


def start_node(extra_args=()):
    """Spawns an ephemeral server on a free port and waits for its ready file."""
    work = tempfile.mkdtemp(prefix="pytest-optimist-")
    ready = os.path.join(work, "ready.json")
    log = open(os.path.join(work, "server.log"), "wb")
    args = [binary(), "serve", "--ephemeral", "--listen", "127.0.0.1:0", "--ready-file", ready]
    process = subprocess.Popen(args + list(extra_args), stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + READY_WITHIN_S
    while not os.path.exists(ready):
        if process.poll() is not None:
            raise RuntimeError(f"optimist exited with {process.returncode}; see {log.name}")
        if time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"optimist was not ready within {READY_WITHIN_S} s")
        time.sleep(0.002)
    with open(ready) as f:
        url = json.load(f)["url"]
    return OptimistNode(url, process, work, log)


class OptimistNode:
    """A running server: its URL, an Elasticsearch client, and its test API."""

    def __init__(self, url, process, work, log):
        self.url = url
        self.process = process
        self._work = work
        self._log = log
        self._client = None

    @property
    def client(self):
        """An `elasticsearch.Elasticsearch` for it (made on first use)."""
        if self._client is None:
            from elasticsearch import Elasticsearch

            self._client = Elasticsearch(self.url)
        return self._client

    def call(self, method, path, body=None):
        """One request to the test API; its JSON answer (an error unless 2xx)."""
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, method=method)
        request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=60) as answer:
                return json.loads(answer.read() or b"null")
        except urllib.error.HTTPError as e:
            raise RuntimeError(f"{method} {path}: {e.code} {e.read().decode()}") from None

    def reset(self, snapshot=None):
        """Back to empty (or to `snapshot`): indices, fault rules and seeded ids."""
        path = "/_optimist/reset" + (f"?snapshot={snapshot}" if snapshot else "")
        return self.call("POST", path)

    def snapshot(self, name, indices=None):
        body = None if indices is None else {"indices": list(indices)}
        return self.call("PUT", f"/_optimist/snapshots/{name}", body)

    def restore(self, name, bump_primary_term=False):
        query = "?bump_primary_term=true" if bump_primary_term else ""
        return self.call("POST", f"/_optimist/snapshots/{name}/_restore{query}")

    def add_fault(self, action, match=None, **rule):
        """A fault rule (docs/testing.md): `times`, `after`, `probability`, `seed`, `id`."""
        body = {"action": action, "match": match or {}, **rule}
        return self.call("POST", "/_optimist/faults", body)["id"]

    @contextlib.contextmanager
    def fault(self, action, match=None, **rule):
        """A fault rule for the `with` block; yields its id, deleted after."""
        fault_id = self.add_fault(action, match, **rule)
        try:
            yield fault_id
        finally:
            with contextlib.suppress(RuntimeError):
                self.call("DELETE", f"/_optimist/faults/{fault_id}")

    def faults(self):
        """Each rule, with how often it matched and fired."""
        return self.call("GET", "/_optimist/faults")["faults"]

    def clear_faults(self):
        return self.call("DELETE", "/_optimist/faults")

    def restart(self, indices=None):
        """Indices closed and opened as after a crash: primary terms + 1."""
        body = {} if indices is None else {"indices": list(indices)}
        return self.call("POST", "/_optimist/restart", body)

    def stop(self):
        """SIGTERM, then SIGKILL after 5 s."""
        if self._client is not None:
            self._client.close()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(STOP_WITHIN_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()
        shutil.rmtree(self._work, ignore_errors=True)
