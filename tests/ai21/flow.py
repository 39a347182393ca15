"""AI21's official SDK (`ai21` on PyPI), unchanged, against a running filegate: every
call of `client.library.files` (and its async twin), through filegate's `/studio/v1`.

The SDK is pointed at filegate by one setting, `api_host=<filegate>/studio/v1`, as the
README says. The flow: create with path, labels and publicUrl (get shows them, sizes and
a date); the same file through `/v2` (ready, its download is the bytes sent); update
(get shows the change; an update of nothing passes); list pages through three files with
offset/limit, and REST users' filters (name, path, label, status); a file created through
`/v2` is listed and deleted through the SDK; delete (get raises); a duplicate name and
path, an unsupported type and a spoofed one raise UnprocessableEntity; a wrong key raises
Unauthorized; a file over the max size raises and leaves nothing (usage equals what the
library lists); a batch's status counts its files (SDKs that have batches).

Needs FILEGATE_URL, FILEGATE_API_KEY (a key whose default workspace is a fresh library
with filegate's default limits: 5 MiB files, PDF/DocX/HTML/TXT/Markdown, unique names).
Exits non-zero on any failure.
"""

import asyncio
import os
import tempfile
from datetime import date, datetime, timezone
from importlib.metadata import version
from pathlib import Path

import httpx
from ai21 import AI21Client, AsyncAI21Client
from ai21.errors import AI21APIError, Unauthorized, UnprocessableEntity

URL = os.environ["FILEGATE_URL"]
KEY = os.environ["FILEGATE_API_KEY"]
HOST = f"{URL}/studio/v1"


def write(directory, name, data):
    path = Path(directory) / name
    path.write_bytes(data)
    return path


def raises(kind, call, *args, **kwargs):
    try:
        call(*args, **kwargs)
    except kind as e:
        return e
    raise AssertionError(f"{call.__name__}{args} did not raise {kind.__name__}")


def main():
    client = AI21Client(api_key=KEY, api_host=HOST)
    files = client.library.files
    rest = httpx.Client(base_url=URL, headers={"Authorization": f"Bearer {KEY}"}, timeout=30)
    today = datetime.now(timezone.utc).date()
    with tempfile.TemporaryDirectory() as tmp:
        # Create, with everything the SDK can send.
        body = b"The koala is an arboreal herbivorous marsupial native to Australia.\n"
        koala = write(tmp, "koala.txt", body)
        file_id = files.create(
            koala, path="animals/marsupials", labels=["cuties", "furry"], public_url="https://en.wikipedia.org/wiki/Koala"
        )
        got = files.get(file_id)
        assert got.file_id == file_id and got.name == "koala.txt", got
        assert got.path == "animals/marsupials" and got.labels == ["cuties", "furry"], got
        assert got.public_url == "https://en.wikipedia.org/wiki/Koala", got
        assert got.file_type == "text/plain" and got.size_bytes == len(body), got
        assert got.status == "PROCESSED" and got.error_code is None, got
        assert isinstance(got.creation_date, date) and abs((got.creation_date - today).days) <= 1, got
        assert got.created_by, got

        # The same file through /v2: ready, and its download is the bytes sent.
        v2 = rest.get(f"/v2/files/{file_id}").json()
        assert v2["status"] == "ready" and v2["size_bytes"] == len(body), v2
        assert httpx.get(v2["download_url"], timeout=30).content == body, "the download is the bytes sent"

        # Update: labels and publicUrl; an update of nothing changes nothing.
        files.update(file_id, labels=["sleepy"], public_url="https://example.com/koala")
        got = files.get(file_id)
        assert got.labels == ["sleepy"] and got.public_url == "https://example.com/koala", got
        files.update(file_id)
        assert files.get(file_id).labels == ["sleepy"]

        # Three more files; list pages through all four, newest first, by offset/limit.
        ids = [file_id]
        for n in range(3):
            ids.append(files.create(write(tmp, f"page-{n}.md", f"# Page {n}\n".encode()), path="pages", labels=[f"p{n}"]))
        first = files.list(offset=0, limit=3)
        second = files.list(offset=3, limit=3)
        assert [f.file_id for f in first] == ids[::-1][:3], (first, ids)
        assert [f.file_id for f in second] == ids[:1], second
        assert all(f.status == "PROCESSED" for f in first + second)

        # REST users' filters (the SDK drops them): name, path prefix, label, status.
        def listed(**params):
            r = rest.get("/studio/v1/library/files", params=params)
            assert r.status_code == 200, r.text
            return sorted(f["fileId"] for f in r.json())

        assert listed(path="pages") == sorted(ids[1:])
        assert listed(name="koala.txt") == [file_id]
        assert listed(label=["p0", "p2"]) == sorted([ids[1], ids[3]])
        assert listed(status="PROCESSED", path="animals") == [file_id]
        assert listed(status="UPLOAD_FAILED") == []
        assert rest.get("/studio/v1/library/files", params={"status": "done"}).status_code == 400

        # A file created through /v2 is listed and deleted through the SDK.
        r = rest.post(
            "/v2/files/-/uploads", files={"file": ("from-v2.html", b"<html><body>v2</body></html>", "text/html")}
        )
        assert r.status_code == 200, r.text
        other = r.json()["file_uuid"]
        assert other in [f.file_id for f in files.list()], "a /v2 file is in the library"
        assert files.get(other).file_type == "text/html"
        files.delete(other)
        assert rest.get(f"/v2/files/{other}").status_code == 404

        # Delete leaves the list at once.
        files.delete(ids.pop())
        assert [f.file_id for f in files.list()] == ids[::-1]

        # Refusals, each in the SDK's named error.
        e = raises(UnprocessableEntity, files.create, koala, path="animals/marsupials")
        assert "duplicate" in e.details, e.details
        e = raises(UnprocessableEntity, files.create, write(tmp, "chart.png", b"\x89PNG\r\n\x1a\n" + b"\0" * 64))
        assert "Unsupported document type" in e.details, e.details
        e = raises(UnprocessableEntity, files.create, write(tmp, "report.pdf", b"\x7fELF\x02\x01\x01" + b"\0" * 64))
        assert "upload_mismatch" in e.details, e.details
        raises(Unauthorized, AI21Client(api_key="fg_nope", api_host=HOST).library.files.list)
        before = rest.get("/studio/v1/library/files").json()
        big = write(tmp, "big.txt", b"a" * ((5 << 20) + 1))
        e = raises(AI21APIError, files.create, big)
        assert e.status_code == 413, (e.status_code, e.details)
        assert rest.get("/studio/v1/library/files").json() == before, "an oversized file leaves nothing"

        # Deleted: get raises.
        deleted = ids[1]
        files.delete(deleted)
        e = raises(AI21APIError, files.get, deleted)
        assert e.status_code == 404, e

        # Usage equals what the library lists.
        ws = rest.get("/v2/files").json()["workspace_uuid"]
        usage = rest.get(f"/v2/workspaces/{ws}/usage").json()
        live = [f for f in files.list() if f.status != "UPLOAD_FAILED"]  # the spoofed file, rejected
        assert any(f.status == "UPLOAD_FAILED" and f.error_code == 422 for f in files.list())
        assert usage["file_count"] == len(live) and usage["pending_file_count"] == 0, (usage, live)
        assert usage["used_bytes"] == sum(f.size_bytes for f in live) and usage["reserved_bytes"] == 0, usage

        # Batches (SDKs from 4.x): the status counts the batch's files.
        if hasattr(files, "get_batch_status"):
            for n in range(2):
                files.create(write(tmp, f"batch-{n}.txt", b"batched\n"), path="batch", batch_id="nightly-1")
            status = files.get_batch_status("nightly-1")
            assert status.batch_id == "nightly-1" and status.total_documents == 2, status
            assert [(s.status, s.count) for s in status.statuses] == [("PROCESSED", 2)], status
            raises(AI21APIError, files.get_batch_status, "no-such-batch")

        # The async client: the same calls.
        asyncio.run(async_flow(write(tmp, "async.txt", b"async bytes\n")))
    print(f"ai21 {version('ai21')}: every library call passed")


async def async_flow(path):
    files = AsyncAI21Client(api_key=KEY, api_host=HOST).library.files
    file_id = await files.create(path, labels=["async"])
    got = await files.get(file_id)
    assert got.status == "PROCESSED" and got.labels == ["async"], got
    await files.update(file_id, labels=["async", "updated"])
    assert (await files.get(file_id)).labels == ["async", "updated"]
    assert file_id in [f.file_id for f in await files.list(offset=0, limit=1000)]
    await files.delete(file_id)
    try:
        await files.get(file_id)
    except AI21APIError as e:
        assert e.status_code == 404, e
    else:
        raise AssertionError("get after delete did not raise")


if __name__ == "__main__":
    main()
