"""Drive the local web page in headless Chromium: the README's screenshot, and the helpers the browser tests use.

    python tools/app_screenshot.py                      # docs/app.jpg: a DAVIS clip converted, input beside result
    python tools/app_screenshot.py --sequence bmx-trees --out /tmp/page.png

Starts ``app.py`` on a free port (as a user would, in a process of its own), opens the page in Debian's Chromium
through Playwright (``apt-get install chromium``; ``pip install playwright``, whose own browser download is not
needed), drops a clip made from the sequence's first frames, converts it at factor 2 with the classical model and
captures the page once the result plays beside the input.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path
from typing import List, Optional, Sequence

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = Path('/usr/bin/chromium')
# As root and offline: no sandbox, no GPU, and none of the background connections Chromium makes to Google.
BROWSER_FLAGS = ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
                 '--disable-sync', '--no-first-run', '--disable-quic', '--autoplay-policy=no-user-gesture-required']
_URL = re.compile(r'the page is at (http://\S+) ')


class App:
    """``app.py`` in a process of its own (``command``: what runs it, default ``python app.py``), its URL read from
    its first line of output."""

    def __init__(self, arguments: Sequence[str] = (), env: Optional[dict] = None,
                 command: Optional[List[str]] = None, timeout: float = 120):
        command = command or [sys.executable, str(REPO / 'app.py')]
        self.process = subprocess.Popen(command + ['--port', '0', *arguments], cwd=REPO, env=env,
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.process.stdout.readline()  # blocks until the page is up, or the app ended
        match = _URL.search(line)
        if not match:
            self.process.kill()
            _, errors = self.process.communicate(timeout=timeout)
            raise RuntimeError(f'the app did not start: {line!r} {errors[-2000:]}')
        self.url = match.group(1)

    def stop(self, number: int = signal.SIGTERM, timeout: float = 120):
        """Send ``number``; the exit status and standard error once it has ended."""
        self.process.send_signal(number)
        _, errors = self.process.communicate(timeout=timeout)
        return self.process.returncode, errors

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.communicate()


def launch_browser(playwright):
    return playwright.chromium.launch(executable_path=str(CHROMIUM), args=BROWSER_FLAGS)


def open_page(browser, url: str, requests: Optional[list] = None):
    """A new page at ``url``, 1280 px wide; every URL it asks for is appended to ``requests``."""
    page = browser.new_page(viewport={'width': 1280, 'height': 900}, accept_downloads=True)
    if requests is not None:
        page.on('request', lambda request: requests.append(request.url))
    page.goto(url)
    page.wait_for_selector('#convert')
    return page


def status(page) -> str:
    return page.input_value('#status textarea')


def wait_status(page, *starts: str, timeout: float = 120, seen: Optional[list] = None) -> str:
    """Wait until the status line starts with one of ``starts``; every line shown meanwhile goes to ``seen``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = status(page)
        if seen is not None and (not seen or seen[-1] != line):
            seen.append(line)
        if line.startswith(starts):
            return line
        time.sleep(0.1)
    raise TimeoutError(f'the status line stayed {status(page)!r}, not one starting with {starts}')


def drop(page, paths: Sequence[Path], expect: Sequence[str] = ('two images', 'error')) -> str:
    """Drop ``paths`` on the page (replacing what was there); the status line that describes them."""
    before = status(page)
    page.set_input_files('#input-files input[type=file]', [str(p) for p in paths])
    deadline = time.monotonic() + 60
    while status(page) == before and time.monotonic() < deadline:
        time.sleep(0.1)
    names = tuple(Path(p).name + ':' for p in paths)
    return wait_status(page, *names, *expect, timeout=60)


def convert(page, timeout: float = 300, seen: Optional[list] = None) -> str:
    """Click Convert; the status line it ends with (``wrote ...``, ``error: ...`` or ``cancelled...``)."""
    before = status(page)
    page.click('#convert')
    deadline = time.monotonic() + 5  # the line changes at once, unless a refusal repeats the last line
    while status(page) == before and time.monotonic() < deadline:
        time.sleep(0.05)
    return wait_status(page, 'wrote', 'error', 'cancelled', timeout=timeout, seen=seen)


def make_clip(frames_folder: Path, out: Path, count: int, rate: int = 24) -> Path:
    """The first ``count`` frames of a folder of frames as an H.264 clip, through the project's own writer."""
    sys.path.insert(0, str(REPO))
    from softmax_splatting.app.preview import PREVIEW  # noqa: PLC0415
    from softmax_splatting.video import ImageSequence, Timeline, VideoSink  # noqa: PLC0415

    with tempfile.TemporaryDirectory() as folder:
        for path in sorted(frames_folder.iterdir())[:count]:
            shutil.copy(path, Path(folder) / path.name)
        source = ImageSequence.from_folder(Path(folder), Fraction(rate))
        sink = VideoSink(out, source, Timeline(source, factor=1), PREVIEW, audio=False)
        for frame in source.frames():
            sink.write(frame.image, frame.pts)
        sink.finish()
    return out


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.partition('\n\n')[0])
    parser.add_argument('--data', default=str(REPO.parent / 'shared' / 'data' / 'davis'))
    parser.add_argument('--sequence', default='blackswan')
    parser.add_argument('--frames', type=int, default=24)
    parser.add_argument('--clip', help='drop this video instead of a clip made from --sequence')
    parser.add_argument('--out', default=str(REPO / 'docs' / 'app.jpg'), help='.jpg (quality 85) or .png')
    args = parser.parse_args(argv)
    from playwright.sync_api import sync_playwright  # noqa: PLC0415

    with tempfile.TemporaryDirectory() as folder:
        clip = Path(args.clip) if args.clip else make_clip(Path(args.data) / args.sequence,
                                                           Path(folder) / f'{args.sequence}.mp4', args.frames)
        app = App(['--threads', str(os.cpu_count() or 1)])
        try:
            with sync_playwright() as playwright:
                browser = launch_browser(playwright)
                page = open_page(browser, app.url)
                drop(page, [clip])
                line = convert(page)
                if not line.startswith('wrote'):
                    raise SystemExit(f'the conversion failed: {line}')
                page.wait_for_function("document.querySelector('#result video')?.readyState >= 2")
                page.evaluate("document.querySelector('#result video').currentTime = 0.5")
                page.wait_for_timeout(800)
                out = Path(args.out)
                out.parent.mkdir(parents=True, exist_ok=True)
                temporary = out.with_name(f'.{out.stem}.tmp{out.suffix}')
                jpeg = out.suffix.lower() in ('.jpg', '.jpeg')
                page.screenshot(path=str(temporary), full_page=True, type='jpeg' if jpeg else 'png',
                                quality=85 if jpeg else None)
                os.replace(temporary, out)
                browser.close()
        finally:
            app.stop()
    print(f'wrote {out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
