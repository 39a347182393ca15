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
body end failed), and a real MP4 (made by ffmpeg) through get_status to completed and
files.get_frames: JPEG frames at 1 per second, and video_metadata in files.get.

Needs FILEGATE_URL and FILEGATE_API_KEY (a key whose default workspace allows CSV, PNG
and MP4, holds 5 MiB files and takes repeated names), ffmpeg on PATH and FILEGATE_SOURCE_PORT (a port
filegate's FILEGATE_IMPORT_ALLOWED_HOSTS allows on 127.0.0.1). Exits non-zero on any
failure.
"""

import asyncio
import http.server
import mimetypes
import threading
import os
import struct
import subprocess
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


def jpeg_size(data):
    """(width, height) from a JPEG's start-of-frame marker, or None."""
    if data[:3] != b"\xff\xd8\xff":
        return None
    i = 2
    while i + 9 < len(data):
        marker, length = data[i + 1], struct.unpack(">H", data[i + 2 : i + 4])[0]
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            height, width = struct.unpack(">HH", data[i + 5 : i + 9])
            return width, height
        i += 2 + length
    return None


def video_flow(client):
    """A real 3-second 320x240 MP4 at 10 fps: uploaded as the seed uploads (create, then
    a PUT; no completion call), polled with get_status to completed, then get_frames."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "clip.mp4"
        subprocess.run(
            ["ffmpeg", "-nostdin", "-v", "error", "-f", "lavfi", "-i",
             "testsrc=duration=3:size=320x240:rate=10", "-pix_fmt", "yuv420p", str(path)],
            check=True,
        )
        clip = path.read_bytes()
    created = client.files.create(files=[{"local_file_path": "clips/clip.mp4"}]).files[0]
    with httpx.Client() as http:
        guessed = mimetypes.guess_type("clip.mp4")[0]
        http.put(created.file_url, content=clip, headers={"Content-Type": guessed}).raise_for_status()
    status = wait_status(client, created.file_uuid, within=60.0)
    assert status.processing_status == "completed", status
    frames = client.files.get_frames(created.file_uuid)
    assert frames.file_uuid == created.file_uuid, frames
    assert frames.frame_count == 3 == len(frames.frame_urls), frames
    with httpx.Client() as http:
        for url in frames.frame_urls:
            got = http.get(url)
            got.raise_for_status()
            assert jpeg_size(got.content) == (320, 240), url
    detail = client.files.get(created.file_uuid)
    assert detail.file_type == "video", detail
    meta = detail.video_metadata
    assert meta["width"] == 320 and meta["height"] == 240 and meta["frame_count"] == 3, meta
    assert 2.9 <= meta["duration_seconds"] <= 3.1 and meta["fps"] == 10, meta
    videos = client.files.list(file_type="video", limit=10)
    assert [f.file_uuid for f in videos.items] == [created.file_uuid], videos
    # A file that is not a video has no frames: the SDK raises for the 422.
    try:
        client.files.get_frames(client.files.list(file_type="image", limit=1).items[0].file_uuid)
    except Exception as e:
        assert getattr(e, "status_code", None) == 422, e
    else:
        raise AssertionError("an image has frames")
    print(f"video: {frames.frame_count} frames of {meta['width']}x{meta['height']}, {meta['codec']}")


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

    video_flow(client)

    print("aymara-ai-sdk flow: every file call (create, upload helpers, get, delete, get_status, upload, remote_uri, list, get_frames)")


if __name__ == "__main__":
    main()
