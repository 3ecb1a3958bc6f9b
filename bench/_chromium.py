"""Real Chromium against real Streamlit servers, for bench/site.py: start a server, and time a page from
a navigation or a click to the moment it has settled and drawn.

"Settled and drawn" is what a user sees as done: the page's own heading or text is there, the script
has finished (``stApp``'s ``data-test-script-state`` is ``notRunning``; it goes ``initial`` → ``running``
→ ``notRunning``, see docs/background/streamlit-recipe.md §3b), nothing is stale or a skeleton, and
every chart, table and image shown has drawn (a canvas or an SVG; an image that has loaded, in
``st.image`` or in a block of HTML such as Browse's cards).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
IDLE = '[data-testid="stApp"][data-test-script-state="notRunning"][data-test-connection-state="CONNECTED"]'
DRAWN = """() => {
  // (what is shown: a table in a closed tab or expander draws nothing until it is opened)
  const shown = (e) => {
    const r = e.getBoundingClientRect();
    return r.width > 0 && r.height > 0 && e.checkVisibility({ checkOpacity: true, checkVisibilityCSS: true });
  };
  const all = (sel) => Array.from(document.querySelectorAll(sel)).filter(shown);
  if (document.querySelector('[data-stale="true"]') || document.querySelector('[data-testid="stSkeleton"]'))
    return false;
  return all('[data-testid="stVegaLiteChart"]').every((e) => e.querySelector('canvas, svg'))
    && all('[data-testid="stDataFrame"]').every((e) => e.querySelector('canvas'))
    && all('[data-testid="stPlotlyChart"]').every((e) => e.querySelector('.main-svg'))
    && all('[data-testid="stImage"] img, [data-testid="stHtml"] img')
      .every((i) => i.complete && i.naturalWidth > 0);
}"""
TIMEOUT_MS = 120_000


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_http(url: str, proc: subprocess.Popen[bytes], timeout: float = 300) -> None:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with {proc.returncode} before answering at {url}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"no answer at {url} within {timeout:g} s")


@contextmanager
def server(cmd: list[str], env: dict[str, str], log: Path, cwd: Path | None = None) -> Iterator[str]:
    """A Streamlit server started with ``cmd`` (its ``--port`` given in it); yields its base URL."""
    port = cmd[cmd.index("--port") + 1] if "--port" in cmd else cmd[cmd.index("--server.port") + 1]
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT)
        try:
            _wait_http(f"http://127.0.0.1:{port}/_stcore/health", proc)
            yield f"http://127.0.0.1:{port}"
        finally:
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@contextmanager
def chromium() -> Iterator[Any]:
    """Debian's headless Chromium through Playwright (no downloaded browser)."""
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        raise SystemExit("chromium is missing: apt-get install chromium (python3 dev.py test installs it)")
    with sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--disable-background-networking",
            ],
        )
        try:
            yield b
        finally:
            b.close()


def done(pg: Any, heading: str | None = None, text: str | None = None) -> None:
    """Wait until the page shows ``heading`` (an h1-h3) and ``text``, has run its script and has drawn;
    an error box instead is an error here (a benchmark of a failing page measures nothing)."""
    error = pg.locator('[data-testid="stAlertContentError"], [data-testid="stException"]')
    if heading:
        pg.get_by_role("heading", name=heading).or_(error).first.wait_for(timeout=TIMEOUT_MS)
    if text:
        pg.get_by_text(text).or_(error).first.wait_for(timeout=TIMEOUT_MS)
    pg.wait_for_selector(IDLE, state="attached", timeout=TIMEOUT_MS)
    pg.wait_for_function(DRAWN, timeout=TIMEOUT_MS, polling=50)  # (a timer: a background tab has no frames)
    if error.count():
        raise RuntimeError(f"{pg.url}: {' / '.join(error.all_inner_texts())}")


def timed(action: Callable[[], object], until: Callable[[], object]) -> float:
    """Seconds from ``action`` (a navigation, a click) to the end of ``until`` (a :func:`done`)."""
    t0 = time.perf_counter()
    action()
    until()
    return time.perf_counter() - t0


class Meter:
    """Times actions on a page: the wall time (:func:`timed`) and the time the page's main thread was
    busy meanwhile (script, style, layout, paint: Chrome's ``TaskDuration`` metric), which tells the
    browser's drawing from the wait for the server. Keeps both per label."""

    def __init__(self, pg: Any) -> None:
        self.pg = pg
        self.cdp = pg.context.new_cdp_session(pg)
        self.cdp.send("Performance.enable")
        self.wall: dict[str, list[float]] = {}
        self.busy: dict[str, list[float]] = {}

    def _task(self) -> float:
        metrics = self.cdp.send("Performance.getMetrics")["metrics"]
        return float(next(m["value"] for m in metrics if m["name"] == "TaskDuration"))

    def timed(self, label: str | None, action: Callable[[], object], until: Callable[[], object]) -> float:
        """:func:`timed`, kept under ``label`` with the busy time (None: a warming run, not kept)."""
        b0 = self._task()
        t = timed(action, until)
        b1 = self._task()
        if label is not None:
            self.wall.setdefault(label, []).append(t)
            # (a navigation to a new renderer restarts the count)
            self.busy.setdefault(label, []).append(b1 - b0 if b1 >= b0 else b1)
        return t
