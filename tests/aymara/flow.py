"""Aymara's official SDK (aymara-ai-sdk on PyPI), unchanged, against a running filegate:
every file call it makes.

The seed's own flow: files.create with only local_file_path (its two-CSV example), a PUT
of each file to its upload URL with the Content-Type Python's mimetypes guesses, the
SDK's upload_file() helper twice with unnamed PNG bytes (it names both `file.png`), its
async helper once with a Path (a chunked PUT), then files.get and files.delete. The SDK
never calls a completion route: filegate finds the uploads by itself. Then the rest:
files.list (items, count, offset paging, file_type), files.get_status through pending
to completed and to failed, files.upload (bytes in the request), and files.create with
remote_uri from a loopback server this script runs (ready; a 404 and an oversized
body end failed).

Needs FILEGATE_URL and FILEGATE_API_KEY (a key whose default workspace allows CSV and
PNG, holds 5 MiB files and takes repeated names) and FILEGATE_SOURCE_PORT (a port
filegate's FILEGATE_IMPORT_ALLOWED_HOSTS allows on 127.0.0.1). Exits non-zero on any
failure.
"""

import asyncio
import http.server
import mimetypes
import threading
import os
import sys
import tempfile
import time
from pathlib import Path

import httpx
from aymara_ai import AsyncAymaraAI, AymaraAI
from aymara_ai.lib.uploads import upload_file, upload_file_async

sys.path.insert(0, os.path.dirname(__file__))
from samples import CSV, PNG  # noqa: E402


def serve_sources(port):
    """A loopback server for the imports: /sample.csv, /big.csv (over 5 MiB), else 404."""
    big = b"a," * (3 << 20)

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (the stdlib's name)
            body = {"/sample.csv": CSV, "/big.csv": big}.get(self.path)
            if body is None:
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Type", "text/csv")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            try:
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                pass  # filegate stops reading a body past the file's limit

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def wait_status(client, file_uuid, within=30.0):
    """Polls files.get_status until the file is neither pending nor processing."""
    deadline = time.monotonic() + within
    while True:
        status = client.files.get_status(file_uuid)
        if status.processing_status not in ("pending", "processing") or time.monotonic() > deadline:
            return status
        time.sleep(0.3)


def wait_ready(client, file_uuid, within=30.0):
    """Polls files.get until the file leaves pending; returns its status."""
    deadline = time.monotonic() + within
    while True:
        detail = client.files.get(file_uuid)
        status = getattr(detail, "status", None)
        if status != "pending" or time.monotonic() > deadline:
            return status, detail
        time.sleep(0.5)


def main():
    client = AymaraAI(api_key=os.environ["FILEGATE_API_KEY"], base_url=os.environ["FILEGATE_URL"])

    # The seed's example body, unchanged.
    created = client.files.create(
        files=[{"local_file_path": "path/to/file1.csv"}, {"local_file_path": "path/to/file2.csv"}]
    )
    assert len(created.files) == 2, created
    with httpx.Client() as http:
        for f in created.files:
            assert f.local_file_path and f.local_file_path.endswith(".csv"), f
            guessed = mimetypes.guess_type(f.local_file_path)[0]
            put = http.put(f.file_url, content=CSV, headers={"Content-Type": guessed})
            put.raise_for_status()

    # The SDK's helper, twice: both unnamed uploads are called file.png.
    refs = [upload_file(client=client, file_content=PNG) for _ in range(2)]
    # Its async helper with a Path PUTs a chunked body with no Content-Length (the
    # upload URL of an undeclared size is filegate's own, which takes it).
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "frame.png"
        path.write_bytes(PNG)
        async_client = AsyncAymaraAI(
            api_key=os.environ["FILEGATE_API_KEY"], base_url=os.environ["FILEGATE_URL"]
        )
        refs.append(asyncio.run(upload_file_async(client=async_client, file_content=path)))
    png_uuids = [ref["remote_file_path"].rsplit("/", 1)[1] for ref in refs]
    assert len(set(png_uuids)) == 3, refs

    for file_uuid in [f.file_uuid for f in created.files] + png_uuids:
        status, detail = wait_ready(client, file_uuid)
        assert status == "ready", (file_uuid, status, detail)
        assert detail.file_uuid == file_uuid
        assert detail.content_type in ("text/csv", "image/png"), detail
        assert detail.remote_file_path.endswith(file_uuid), detail
        print(f"ready: {detail.remote_file_path} ({detail.content_type})")

    gone = png_uuids[0]
    client.files.delete(gone)
    try:
        client.files.get(gone)
    except Exception as e:  # the SDK raises NotFoundError for 404
        assert getattr(e, "status_code", None) == 404, e
    else:
        raise AssertionError("a deleted file is still there")
    # get: the fields Aymara's FileDetail has.
    detail = client.files.get(png_uuids[1])
    assert detail.file_type == "image", detail
    assert detail.organization_uuid and detail.uploaded_by_uuid, detail
    assert detail.file_size_bytes == len(PNG), detail
    with httpx.Client() as http:
        assert http.get(detail.file_url).content == PNG, "file_url downloads the bytes"

    # get_status: pending, then completed once the bytes arrived; failed for bytes
    # that are not what the file says.
    pending = client.files.create(files=[{"local_file_path": "later.csv"}]).files[0]
    assert client.files.get_status(pending.file_uuid).processing_status == "pending"
    with httpx.Client() as http:
        http.put(pending.file_url, content=CSV, headers={"Content-Type": "text/csv"}).raise_for_status()
    done = wait_status(client, pending.file_uuid)
    assert done.processing_status == "completed", done
    assert done.remote_file_path.endswith(pending.file_uuid), done
    spoofed = client.files.create(files=[{"local_file_path": "not-really.csv"}]).files[0]
    with httpx.Client() as http:
        http.put(spoofed.file_url, content=PNG, headers={"Content-Type": "text/csv"}).raise_for_status()
    failed = wait_status(client, spoofed.file_uuid)
    assert failed.processing_status == "failed" and failed.error_message, failed

    # upload: the bytes in the request; the answer is the file, ready.
    uploaded = client.files.upload(file=("direct.csv", CSV, "text/csv"))
    assert uploaded.processing_status == "completed", uploaded
    assert uploaded.content_type == "text/csv", uploaded
    with httpx.Client() as http:
        assert http.get(uploaded.file_url).content == CSV, "the upload downloads as sent"

    # create with remote_uri: filegate fetches it.
    source = serve_sources(int(os.environ["FILEGATE_SOURCE_PORT"]))
    base = f"http://127.0.0.1:{source.server_address[1]}"
    imported = client.files.create(
        files=[
            {"remote_uri": f"{base}/sample.csv", "content_type": "text/csv"},
            {"remote_uri": f"{base}/missing.csv", "content_type": "text/csv"},
            {"remote_uri": f"{base}/big.csv", "content_type": "text/csv"},
        ]
    ).files
    assert [f.processing_status for f in imported] == ["processing"] * 3, imported
    ok, missing, big = (wait_status(client, f.file_uuid) for f in imported)
    assert ok.processing_status == "completed", ok
    assert missing.processing_status == "failed" and "404" in missing.error_message, missing
    assert big.processing_status == "failed" and "larger" in big.error_message, big
    with httpx.Client() as http:
        assert http.get(client.files.get(imported[0].file_uuid).file_url).content == CSV
    source.shutdown()

    # list: items and count, offset pages, file_type.
    first = client.files.list(limit=2)
    assert len(first.items) == 2 and first.count >= 8, first
    second = client.files.list(limit=2, offset=2)
    assert {f.file_uuid for f in first.items}.isdisjoint({f.file_uuid for f in second.items})
    images = client.files.list(file_type="image", limit=100)
    assert images.items and all(f.file_type == "image" for f in images.items), images
    assert images.count == len(images.items)

    print("aymara-ai-sdk flow: every file call (create, upload helpers, get, delete, get_status, upload, remote_uri, list)")


if __name__ == "__main__":
    main()
