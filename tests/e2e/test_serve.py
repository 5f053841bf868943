"""`mlci-tui --serve`: the dashboard in a real headless Chromium, through textual-serve.

The server runs the real binary; the page is opened by Chromium from the system packages,
driven over its DevTools protocol (aiohttp's websocket client, which textual-serve
brings), and screenshotted once the terminal has drawn.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.loop_projects import make_project, processes_with_env

pytestmark = pytest.mark.e2e

MLCI_TUI = str(Path(sys.executable).with_name("mlci-tui"))
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
WAIT_S = 90.0
"""How long a step may take on a loaded 2-core machine before the test gives up on it."""
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][A-Z0-9]|\x1b[=>]")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_http(url: str) -> bytes:
    deadline = time.monotonic() + WAIT_S
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return bytes(response.read())
        except (urllib.error.URLError, ConnectionError, OSError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def _project(root: Path) -> Path:
    return make_project(root, tests={"tests/test_ok.py": "def test_ok():\n    assert True\n"})


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    project = _project(tmp_path / "served-project")
    port = _free_port()
    log = (tmp_path / "serve.log").open("w")
    env = {**os.environ, "MLCI_TEST_MARK": str(port)}
    proc = subprocess.Popen(
        [MLCI_TUI, "--serve", "--port", str(port), str(project)],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        env=env,
    )
    try:
        _wait_http(f"http://127.0.0.1:{port}/")
        yield port, project
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


def test_serve_with_host_but_no_serve_is_a_usage_error(tmp_path: Path) -> None:
    result = subprocess.run([MLCI_TUI, "--port", "9", str(tmp_path)], capture_output=True, text=True, check=False)
    assert result.returncode == 2 and "--serve" in result.stderr


def test_the_page_loads_nothing_from_outside(served: tuple[int, Path]) -> None:
    port, project = served
    page = _wait_http(f"http://127.0.0.1:{port}/").decode()
    assert f"mlci · {project.name}" in page
    external = [u for u in re.findall(r"""(?:src|href)=["'](https?://[^"']+)""", page) if "127.0.0.1" not in u]
    assert external == []


async def _read_dashboard(port: int) -> str:
    import aiohttp

    text = ""
    url = f"http://127.0.0.1:{port}/ws?width=120&height=36"
    async with aiohttp.ClientSession() as session, session.ws_connect(url) as ws:
        deadline = time.monotonic() + WAIT_S
        while "Tiers" not in text and time.monotonic() < deadline:
            message = await ws.receive(timeout=WAIT_S)
            if message.type == aiohttp.WSMsgType.BINARY:
                text += ANSI.sub("", message.data.decode("utf-8", "replace"))
            elif message.type != aiohttp.WSMsgType.TEXT:
                break
    return text


def test_a_browser_session_gets_the_dashboard(served: tuple[int, Path]) -> None:
    port, _project_root = served
    text = asyncio.run(_read_dashboard(port))
    assert "Tiers" in text and "code" in text


async def _cdp_screenshot(debug_port: int, url: str) -> bytes:
    import aiohttp

    async with aiohttp.ClientSession() as session:
        async with session.put(f"http://127.0.0.1:{debug_port}/json/new?{url}") as response:
            target = json.loads(await response.text())
        async with session.ws_connect(target["webSocketDebuggerUrl"], max_msg_size=0) as ws:
            ids = iter(range(1, 10_000))

            async def call(method: str, **params: object) -> dict[str, object]:
                message_id = next(ids)
                await ws.send_json({"id": message_id, "method": method, "params": params})
                while True:
                    reply = await ws.receive_json(timeout=WAIT_S)
                    if reply.get("id") == message_id:
                        return dict(reply.get("result", {}))

            async def evaluate(expression: str) -> object:
                result = await call("Runtime.evaluate", expression=expression, returnByValue=True)
                return dict(result.get("result", {})).get("value")  # type: ignore[call-overload]

            deadline = time.monotonic() + WAIT_S
            # textual-serve marks the page when the app's first bytes arrive.
            while not await evaluate("document.body.classList.contains('-first-byte')"):
                assert time.monotonic() < deadline, "the served app never drew"
                await asyncio.sleep(0.25)
            await asyncio.sleep(3.0)  # the app paints its panels, the page fades the terminal in
            shot = await call("Page.captureScreenshot", format="png")
            import base64

            return base64.b64decode(str(shot["data"]))


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (make test installs it)")
def test_headless_chromium_shows_the_tier_panel(served: tuple[int, Path], tmp_path: Path) -> None:
    port, _project_root = served
    debug_port = _free_port()
    assert CHROMIUM is not None
    browser = subprocess.Popen(
        [
            CHROMIUM,
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            f"--user-data-dir={tmp_path / 'chromium'}",
            f"--remote-debugging-port={debug_port}",
            "--window-size=1400,900",
            "about:blank",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        _wait_http(f"http://127.0.0.1:{debug_port}/json/version")
        png = asyncio.run(_cdp_screenshot(debug_port, f"http://127.0.0.1:{port}/"))
        # While the page is open, an mlci-tui process of the server's draws it.
        assert processes_with_env("MLCI_TEST_MARK", str(port)), "no mlci-tui process serves the page"
    finally:
        os.killpg(browser.pid, signal.SIGKILL)
        browser.wait()
    shot = tmp_path / "served-dashboard.png"
    shot.write_bytes(png)
    if os.environ.get("MLCI_SCREENSHOT_DIR"):
        shutil.copy(shot, Path(os.environ["MLCI_SCREENSHOT_DIR"]) / shot.name)

    from PIL import Image

    image = Image.open(shot).convert("RGB")
    colours = image.getcolors(maxcolors=1 << 20) or []
    intro = sum(count for count, rgb in colours if rgb == (12, 24, 31))
    # The dashboard, not textual-serve's waiting screen: many colours, and the intro's
    # background no longer fills the page.
    assert len(colours) > 20
    assert intro < 0.5 * image.width * image.height
