"""The archive on S3-compatible object storage: ingest, previews, downloads and get-missing-files.

A real S3 server (moto's, :class:`moto.server.ThreadedMotoServer`) on 127.0.0.1 and a free port; s3fs
(fsspec) finds it through fsspec's configuration (``FSSPEC_S3_ENDPOINT_URL`` in a deployment), as it
would find a site's MinIO or Ceph gateway.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def s3_server() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
def s3(s3_server: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """An S3 filesystem on the local server (credentials are moto's placeholders)."""
    import fsspec
    import s3fs

    for k, v in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                 "AWS_DEFAULT_REGION": "us-east-1"}.items():  # fmt: skip
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    # every s3:// URL the code opens goes to the local server, never to AWS
    monkeypatch.setitem(fsspec.config.conf, "s3", {"endpoint_url": s3_server})
    s3fs.S3FileSystem.clear_instance_cache()
    fs = fsspec.filesystem("s3")
    yield fs
    s3fs.S3FileSystem.clear_instance_cache()


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from ingest.archivegen.generate import generate

    out = tmp_path_factory.mktemp("archive")
    generate(out, datasets=8, seed=7, pixels="sparse")
    return out


def _upload(fs: Any, local: Path, files: list[Path], url: str) -> None:
    for p in files:
        fs.put_file(str(p), f"{url}/{p.relative_to(local).as_posix()}")


def _small_subset(archive: Path) -> list[Path]:
    """The small files (support files, the smallest calibrated image): moto keeps objects in memory, and
    a generated archive's sparse image files are hundreds of MB apart from their holes."""
    files = sorted(archive.rglob("*.fits"))
    flts = sorted((p for p in files if p.name.endswith("_flt.fits")), key=lambda p: p.stat().st_size)
    flt = next(p for p in flts if _has_pixels(p))
    return sorted({flt, *(p for p in files if p.stat().st_size < 1_000_000)})


def _has_pixels(p: Path) -> bool:
    import fitsio

    with fitsio.FITS(str(p)) as f:
        return bool(f[1].read().any())


def test_ingest_previews_and_downloads_from_s3(s3: Any, archive: Path, tmp_path: Path) -> None:
    import shutil

    from app.data import browse, preview
    from app.data.scope import Scope
    from app.data.viewer import Viewer
    from ingest.run import ingest
    from lake import settings
    from lake.access import connect
    from lake.archive import scan_archive

    subset = _small_subset(archive)
    local_copy = tmp_path / "archive"
    for p in subset:
        dst = local_copy / p.relative_to(archive)
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(p, dst)
    s3.mkdir("archive")
    _upload(s3, archive, subset, "archive/wfc3")
    url = "s3://archive/wfc3"
    listing = scan_archive(url)
    assert len(listing) == len(subset) > 10

    on_s3 = ingest(tmp_path / "s3lake", url, scheduler="synchronous")
    local = ingest(tmp_path / "locallake", str(local_copy), scheduler="synchronous")
    assert on_s3.ingested == local.ingested == len(subset) and on_s3.errors == 0
    # the same rows, path for path (paths are relative to the archive root)
    q = "SELECT path, hdu, keyword, value_str FROM cards ORDER BY ALL"
    a = connect(tmp_path / "s3lake").sql(q).fetchall()
    assert a == connect(tmp_path / "locallake").sql(q).fetchall() and len(a) > 1000
    # a second ingest finds nothing changed (the stamps of S3 objects compare equal)
    again = ingest(tmp_path / "s3lake", url, scheduler="synchronous")
    assert (again.ingested, again.unchanged) == (0, len(subset))

    cfg = {**settings.load({"lake": str(tmp_path / "s3lake")}), "archive": url}
    team = Scope(tmp_path / "s3lake", Viewer(name="Zed", email="zed@stsci.edu", team=True), cfg)
    flt = team.sql("SELECT path FROM files WHERE path LIKE '%_flt.fits' ORDER BY path LIMIT 1")
    path = str(flt.column(0)[0])
    assert browse.archive_path(team, path) == f"{url}/{path}"
    assert browse.file_bytes(team, path) == (archive / path).read_bytes()  # the site's download
    hdus = preview.image_hdus(team, path)
    png = preview.preview(team, path, hdus[0][0], size=64)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert png == preview.render(str(archive / path), hdus[0][0], size=64)  # as from the local copy


def test_get_missing_files_from_an_s3_mirror(s3: Any, archive: Path, tmp_path: Path) -> None:
    import shutil

    from ingest.run import ingest
    from lake import settings
    from lake.access import read_sql
    from lake.jobs import run_job

    mine = tmp_path / "archive"
    subset = _small_subset(archive)
    raws = sorted(archive.rglob("*_raw.fits"), key=lambda p: p.stat().st_size)[:2]
    for p in [*subset, *raws]:
        dst = mine / p.relative_to(archive)
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(p, dst)
    lake = tmp_path / "lake"
    ingest(lake, str(mine), scheduler="synchronous")
    gone = [p.relative_to(archive).as_posix() for p in raws]
    for rel in gone:
        (mine / rel).unlink()
    ingest(lake, str(mine), scheduler="synchronous")  # the lake now knows them as missing
    s3.mkdir("mirror")
    _upload(s3, archive, raws, "mirror/wfc3")  # the mirror has these two (of all the files mine lacks)
    cfg = {**settings.load({"lake": str(lake)}), "archive": str(mine), "mirror": "s3://mirror/wfc3",
           "scheduler": "synchronous"}  # fmt: skip
    run = run_job(lake, "get-missing-files", cfg=cfg)
    assert run.status == "success", run.error
    assert run.counts["fetched"] == len(gone) == 2, run.counts
    for rel in gone:
        assert (mine / rel).read_bytes() == (archive / rel).read_bytes()
    ok = read_sql("SELECT path FROM files WHERE status = 'ok'", lake).column(0).to_pylist()
    assert set(gone) <= set(ok)
