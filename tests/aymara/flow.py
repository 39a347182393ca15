"""Aymara's official SDK (aymara-ai-sdk on PyPI), unchanged, against a running filegate.

The seed's own flow: files.create with only local_file_path (its two-CSV example), a PUT
of each file to its upload URL with the Content-Type Python's mimetypes guesses, the
SDK's upload_file() helper twice with unnamed PNG bytes (it names both `file.png`), its
async helper once with a Path (a chunked PUT), then files.get and files.delete. The SDK never calls a completion route: filegate finds the
uploads by itself. Needs FILEGATE_URL and FILEGATE_API_KEY (a key whose default
workspace allows CSV and PNG and takes repeated names). Exits non-zero on any failure.
"""

import asyncio
import mimetypes
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
    print("aymara-ai-sdk flow: 5 files ready, 1 deleted")


if __name__ == "__main__":
    main()
