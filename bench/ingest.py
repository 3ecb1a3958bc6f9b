"""End-to-end ingest: Quicklake vs an astropy-based ingest, and 2 Dask workers vs 1.

    python bench/ingest.py [--datasets 3000] [--batch-files 2000] [--astropy-files 300]

On one generated headers-only archive, measured in one run:
  astropy    the obvious ingest: astropy.io.fits reads every card of every HDU, rows go to one Parquet
             file (timed on a sample, reported per file)
  ql-1       ingest.run.ingest on a LocalCluster with 1 worker (the driver commits while it works),
             end to end (starting the cluster included), and on a cluster already running (given
             by its address, as --scheduler ADDRESS does, its workers having imported the ingest
             code as after an earlier ingest), best of --repeat runs
  ql-2       the same with 2 workers (runs of 1 and 2 workers take turns)
  peak RSS   of the worker processes (from /proc, sampled)
  ceiling    the same pure-Python loop in 2 processes vs 1: what this machine's two cores give at best
             (a shared or hyper-threaded pair gives far less than 2x)
Targets (issue #2): 2 workers >= 1.7x 1 worker, on a running cluster (the cluster's start-up, ~2-3 s,
is the same for both and is reported in the end-to-end lines). The quicklake/astropy ratio is reported.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import threading
import time
import warnings
from pathlib import Path

from _util import archive, report


def _rss_watch(stop: threading.Event, peak: dict[str, int]) -> None:
    """Sample the resident memory of this process's child processes (the Dask workers)."""
    import os

    me = os.getpid()
    while not stop.is_set():
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                with open(f"/proc/{pid}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
                if ppid != me:
                    continue
                with open(f"/proc/{pid}/status") as f:
                    for line in f:
                        if line.startswith("VmRSS:"):
                            kb = int(line.split()[1])
                            peak["worker"] = max(peak.get("worker", 0), kb * 1024)
            except (OSError, ValueError, IndexError):
                continue
        stop.wait(0.2)


def _spin(_: int) -> float:
    t0 = time.perf_counter()
    s = 0
    for i in range(20_000_000):
        s += i
    return time.perf_counter() - t0


def _warm() -> None:
    """What a worker process imports on its first ingest task (~1 s, once per process)."""
    import astropy.io.fits  # noqa: F401  (cards only astropy parses, e.g. record-valued DP1)

    import ingest.batch  # noqa: F401


def core_ceiling() -> float:
    """Throughput of 2 processes over 1 on pure CPU work: the best single time over the best pair time
    (best of 5 each; the best of the ratios would pair a slowed single run with a clean pair)."""
    from concurrent.futures import ProcessPoolExecutor

    ones, pairs = [], []
    with ProcessPoolExecutor(2) as pool:
        list(pool.map(_spin, [0, 1]))  # start both processes
        for _ in range(5):
            ones.append(_spin(0))
            t0 = time.perf_counter()
            list(pool.map(_spin, [0, 1]))
            pairs.append(time.perf_counter() - t0)
    return 2 * min(ones) / min(pairs)


def astropy_ingest(files: list[str], out: Path) -> int:
    """Every card of every HDU through astropy into one Parquet file; returns the card count."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from astropy.io import fits

    cols: dict[str, list] = {
        k: [] for k in ("path", "hdu", "position", "keyword", "value", "comment", "image")
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for f in files:
            with fits.open(f) as hdul:
                for h, hdu in enumerate(hdul):
                    for i, c in enumerate(hdu.header.cards):
                        cols["path"].append(f)
                        cols["hdu"].append(h)
                        cols["position"].append(i)
                        cols["keyword"].append(c.keyword)
                        cols["value"].append(str(c.value))
                        cols["comment"].append(c.comment)
                        cols["image"].append(c.image)
    pq.write_table(pa.table(cols), out, compression="zstd")
    return len(cols["path"])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--datasets", type=int, default=3000, help="datasets to generate (~8 files each)")
    ap.add_argument("--batch-files", type=int, default=2000)
    ap.add_argument("--astropy-files", type=int, default=300)
    ap.add_argument("--repeat", type=int, default=3, help="runs of each on a running cluster (best kept)")
    ap.add_argument("--dir", help="where to keep the archive (default: a temporary folder)")
    args = ap.parse_args()

    from ingest.run import ingest

    with tempfile.TemporaryDirectory() as tmp:
        base = Path(args.dir or tmp)
        files = archive(base / "archive", args.datasets)
        sample = files[:: max(1, len(files) // args.astropy_files)][: args.astropy_files]
        t0 = time.perf_counter()
        astropy_ingest(sample, base / "astropy.parquet")
        r_ap = len(sample) / (time.perf_counter() - t0)

        import dask
        from distributed import Client, LocalCluster

        from lake.executor import LOCAL_CLUSTER_CONFIG as LOCAL  # started as ql starts its own cluster

        rates: dict[int, float] = {}
        running: dict[int, list[float]] = {1: [], 2: []}
        peak: dict[str, int] = {}
        lake = base / "lake"
        cluster_args = dict(threads_per_worker=1, processes=True, dashboard_address=None, silence_logs=40)
        # 1 and 2 workers take turns, so that a slow spell of a shared machine hits both alike
        for _ in range(args.repeat):
            for workers in (1, 2):
                shutil.rmtree(lake, ignore_errors=True)
                with dask.config.set(LOCAL), LocalCluster(**cluster_args, n_workers=workers) as cluster:
                    with Client(cluster) as client:  # as a cluster that has ingested before
                        client.run(_warm)
                    t0 = time.perf_counter()
                    s = ingest(lake, str(base / "archive"), scheduler=cluster.scheduler_address,
                               batch_files=args.batch_files)  # fmt: skip
                    running[workers].append(s.ingested / (time.perf_counter() - t0))
        # end to end last, when imports and the page cache are as warm for 1 worker as for 2
        for workers in (1, 2):
            shutil.rmtree(lake, ignore_errors=True)
            stop = threading.Event()
            watch = threading.Thread(target=_rss_watch, args=(stop, peak), daemon=True)
            watch.start()
            t0 = time.perf_counter()
            s = ingest(lake, str(base / "archive"), workers=workers, batch_files=args.batch_files)
            rates[workers] = s.ingested / (time.perf_counter() - t0)
            stop.set()
            watch.join()
        shutil.rmtree(lake, ignore_errors=True)
        best = {w: max(r) for w, r in running.items()}
        median = {w: statistics.median(r) for w, r in running.items()}
        ceiling = core_ceiling()
        print(f"{len(files):,} files in batches of {args.batch_files}; astropy on {len(sample)} files")
        print("running cluster, files/s per run:", {w: [round(x) for x in r] for w, r in running.items()})
        return report(
            "end-to-end ingest",
            [
                ("astropy-based ingest", r_ap, "files/s"),
                ("quicklake, 1 worker, end to end", rates[1], "files/s"),
                ("quicklake, 2 workers, end to end", rates[2], "files/s"),
                (f"quicklake, 1 worker, running cluster, best of {args.repeat}", best[1], "files/s"),
                (f"quicklake, 2 workers, running cluster, best of {args.repeat}", best[2], "files/s"),
                ("peak worker RSS", peak.get("worker", 0) / 2**20, "MiB"),
                ("core ceiling: 2 processes / 1 on pure CPU", ceiling, "x"),
            ],
            [
                ("quicklake 1 worker / astropy", rates[1] / r_ap, 1, "x"),
                ("2 workers / 1 worker, running cluster", best[2] / best[1], 1.7, "x"),
                ("2 workers / 1, medians (reported)", median[2] / median[1], 0, "x"),
                ("2 workers / 1, share of the core ceiling", 100 * (best[2] / best[1]) / ceiling, 85, "%"),
                ("2 workers / 1 worker, end to end (reported)", rates[2] / rates[1], 0, "x"),
            ],
        )


if __name__ == "__main__":
    raise SystemExit(main())
