"""filegate's webhooks, verified by the `standardwebhooks` package from PyPI, as a
receiver written in Python would: a loopback HTTP server subscribes to a workspace, a
file is uploaded and completed through `/v2`, and every delivery (file.ready,
file.deleted after the file is deleted, file.rejected for an executable named .pdf)
must pass `Webhook(secret).verify(body,
headers)`; after a secret rotation a delivery verifies with the old secret and with the
new one (the grace period); a tampered body and another secret do not verify.

Needs FILEGATE_URL, FILEGATE_API_KEY, FILEGATE_WORKSPACE (the key's default workspace)
and FILEGATE_WEBHOOK_PORT (a port filegate's SSRF guard allows on 127.0.0.1).
Exits non-zero on any failure.
"""

import base64
import hashlib
import json
import os
import queue
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, HTTPServer

from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

URL = os.environ["FILEGATE_URL"]
KEY = os.environ["FILEGATE_API_KEY"]
WORKSPACE = os.environ["FILEGATE_WORKSPACE"]
PORT = int(os.environ["FILEGATE_WEBHOOK_PORT"])

received = queue.Queue()
# The start of a 64-bit Linux executable.
ELF = (b"\x7fELF\x02\x01\x01" + bytes(9) + b"\x02\x00\x3e\x00\x01\x00\x00\x00").ljust(256, b"\0")


class Receiver(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        received.put((dict(self.headers.items()), body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


def api(method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(f"{URL}{path}", data=data, method=method)
    req.add_header("Authorization", f"Bearer {KEY}")
    if data is not None:
        req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req) as res:
        raw = res.read()
        return res.status, (json.loads(raw) if raw else None)


def upload(name, data, expect="ready"):
    digest = base64.b64encode(hashlib.sha256(data).digest()).decode()
    _, created = api("POST", "/v2/files", {
        "files": [{"name": name, "size_bytes": len(data), "checksum_sha256": digest}],
    })
    f = created["files"][0]
    put = urllib.request.Request(f["file_url"], data=data, method="PUT")
    for k, v in f["upload_headers"].items():
        put.add_header(k, v)
    with urllib.request.urlopen(put) as res:
        assert res.status == 200, res.status
    try:
        status, done = api("POST", f"/v2/files/{f['file_uuid']}/complete")
    except urllib.error.HTTPError as e:  # a rejection is 422 with the file in details
        done = {"status": "rejected" if e.code == 422 else e.code}
    assert done["status"] == expect, done
    return f["file_uuid"]


def next_delivery():
    try:
        return received.get(timeout=20)
    except queue.Empty:
        raise SystemExit("no webhook delivery within 20 s")


def main():
    server = HTTPServer(("127.0.0.1", PORT), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    status, hook = api("POST", f"/v2/workspaces/{WORKSPACE}/webhooks", {
        "url": f"http://127.0.0.1:{PORT}/filegate",
        "event_types": ["file.ready", "file.rejected", "file.deleted"],
    })
    assert status == 201, status
    secret = hook["secret"]
    hook_path = f"/v2/workspaces/{WORKSPACE}/webhooks/{hook['webhook_uuid']}"

    file_id = upload("webhook-check.txt", b"verified by the receiver\n")
    headers, body = next_delivery()
    event = Webhook(secret).verify(body, headers)
    assert event["type"] == "file.ready", event
    assert event["data"]["file"]["file_uuid"] == file_id, event
    assert event["data"]["file"]["status"] == "ready", event
    ready_seq = event["data"]["sequence"]
    for bad_body, bad_secret in [(body + b" ", secret), (body, "whsec_" + base64.b64encode(b"x" * 32).decode())]:
        try:
            Webhook(bad_secret).verify(bad_body, headers)
        except WebhookVerificationError:
            pass
        else:
            raise SystemExit("a tampered delivery verified")

    status, _ = api("DELETE", f"/v2/files/{file_id}")
    assert status == 204, status
    headers, body = next_delivery()
    event = Webhook(secret).verify(body, headers)
    assert event["type"] == "file.deleted", event
    assert event["data"]["sequence"] > ready_seq, event

    # An executable named .pdf is rejected at completion: its event verifies too.
    rejected_id = upload("not-a.pdf", ELF, expect="rejected")
    headers, body = next_delivery()
    event = Webhook(secret).verify(body, headers)
    assert event["type"] == "file.rejected", event
    assert event["data"]["file"]["file_uuid"] == rejected_id, event
    assert event["data"]["file"]["rejection_reason"], event

    # Rotation: both secrets verify while the old one's grace lasts.
    status, rotated = api("POST", f"{hook_path}/rotate-secret")
    assert status == 200 and rotated["secret"] != secret
    file_id = upload("after-rotation.txt", b"signed twice\n")
    headers, body = next_delivery()
    for s in (secret, rotated["secret"]):
        event = Webhook(s).verify(body, headers)
        assert event["data"]["file"]["file_uuid"] == file_id, event

    for _ in range(100):
        _, listed = api("GET", f"{hook_path}/deliveries?status=delivered")
        if len(listed["items"]) == 4:
            break
        time.sleep(0.05)
    assert len(listed["items"]) == 4, listed
    api("DELETE", hook_path)
    server.shutdown()
    print("webhooks: 4 deliveries (ready, deleted, rejected, ready after a rotation) verified by standardwebhooks")


if __name__ == "__main__":
    main()
