"""The page in a real browser: Debian's headless Chromium driven by Playwright through ``python app.py``, started
as a user starts it. A video with audio is dropped, converted and downloaded, and its players play as one; two
images give their frames, a slider and a zip; bad input shows the command line's line; a long conversion shows
its frames and time left and Cancel leaves nothing; the browser asks nothing of any host but the page's, and the
app connects to none (a Python audit hook in its process records every connection and name lookup); SIGTERM
closes it with one line and removes its files. `.ci/run` installs Chromium where it is missing."""

import ipaddress
import os
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from images import texture
from test_video import clip, info

from softmax_splatting import frames
from softmax_splatting.cli import interpolate

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / 'tools'))

import app_screenshot as driver  # noqa: E402

playwright_api = pytest.importorskip('playwright.sync_api', reason='pip install -r requirements-test.txt')
pytestmark = pytest.mark.skipif(not driver.CHROMIUM.is_file(), reason='needs Chromium: apt-get install chromium')

# Run in the app's process before app.py: records every connection to, or name lookup of, a host that is not
# this machine's loopback.
AUDIT = '''
import ipaddress, runpy, sys
record = open(sys.argv[1], 'a', buffering=1)
def remote(host):
    if host in (None, '', 'localhost'):
        return False
    try:
        return not ipaddress.ip_address(str(host).split('%')[0]).is_loopback
    except ValueError:
        return True
def hook(event, args):
    if event == 'socket.connect' and isinstance(args[1], tuple) and remote(args[1][0]):
        record.write(f'connect {args[1]!r}\\n')
    elif event == 'socket.getaddrinfo' and remote(args[0]):
        record.write(f'lookup {args[0]!r}\\n')
sys.addaudithook(hook)
sys.argv = sys.argv[2:]
sys.path.insert(0, sys.argv[0].rpartition('/')[0])  # as running the script itself would
runpy.run_path(sys.argv[0], run_name='__main__')
'''


@pytest.fixture(scope='module')
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp('app')
    (root / 'audit.py').write_text(AUDIT)
    temporary = root / 'tmp'
    temporary.mkdir()
    env = dict(os.environ, TMPDIR=str(temporary), OMP_NUM_THREADS='2')
    app = driver.App(['--threads', '2'], env=env,
                     command=[sys.executable, str(root / 'audit.py'), str(root / 'connections.log'),
                              str(REPO / 'app.py')])
    app.root, app.temporary, app.requests = root, temporary, []
    yield app
    app.kill()


@pytest.fixture(scope='module')
def browser():
    with playwright_api.sync_playwright() as playwright:
        browser = driver.launch_browser(playwright)
        yield browser
        browser.close()


@pytest.fixture
def page(server, browser):
    page = driver.open_page(browser, server.url, server.requests)
    yield page
    page.close()


def work_folder(server) -> Path:
    folders = list(server.temporary.glob('softsplat-app-*'))
    assert len(folders) == 1, folders
    return folders[0]


def download(page, tmp_path) -> Path:
    with page.expect_download() as started:
        page.click('#download')
    saved = tmp_path / started.value.suggested_filename
    started.value.save_as(saved)
    return saved


def players(page):
    return page.evaluate("['source', 'result'].map(id => { const v = document.querySelector(`#${id} video`);"
                         " return {paused: v.paused, time: v.currentTime, duration: v.duration,"
                         " rate: v.playbackRate, muted: v.muted}; })")


def test_a_video_with_audio_is_converted_compared_and_downloaded(server, page, tmp_path):
    source = clip(tmp_path / 'walk.mp4', seconds=2, rate=12, size='160x96', audio='stereo')
    assert driver.drop(page, [source]) == 'walk.mp4: 160x96, 12 fps, 24 frames (2.00 s), audio aac'
    page.click('#rate label:has-text("slow motion")')
    page.fill('#slow-motion input', '3')
    page.click('#rate label:has-text("factor")')  # the last choice counts: factor 2
    page.wait_for_selector('#slow-motion', state='hidden')
    page.wait_for_selector('#factor', state='visible')
    line = driver.convert(page)
    assert line == 'wrote walk-x2.mp4: 24 frames in, 47 out at 24 fps'
    assert page.inner_text('#command').endswith('softsplat-interpolate --video walk.mp4 --out walk-x2.mp4 --factor 2 '
                                                '--model classical --scene-threshold 0.36')
    saved = download(page, tmp_path)
    assert saved.name == 'walk-x2.mp4'
    interpolate.main(['--video', str(source), '--out', str(tmp_path / 'cli.mp4'), '--model', 'classical'])
    got, expected = info(saved), info(tmp_path / 'cli.mp4')
    assert got['frames'] == expected['frames'] == 47 and got['audio'] == expected['audio'] == [('aac', 2, 44100)]

    # the two players play as one, the input muted
    page.wait_for_function("document.querySelector('#result video')?.readyState >= 2"
                           " && document.querySelector('#source video')?.readyState >= 2")
    page.evaluate("document.querySelector('#result video').play()")
    page.wait_for_timeout(700)
    both = players(page)
    assert not both[0]['paused'] and not both[1]['paused'] and both[0]['muted'] and not both[1]['muted']
    assert abs(both[0]['time'] - both[1]['time']) < 0.3
    page.evaluate("document.querySelector('#result video').pause()")
    page.evaluate("document.querySelector('#result video').currentTime = 1.25")
    page.wait_for_timeout(500)
    both = players(page)
    assert both[0]['paused'] and abs(both[0]['time'] - 1.25) < 0.05

    # the screenshot README shows is taken the same way (tools/app_screenshot.py)
    page.screenshot(path=str(tmp_path / 'page.png'), full_page=True)
    shot = frames.read_image(tmp_path / 'page.png')
    assert shot.shape[1] == 1280 and shot.shape[0] > 800 and shot.std() > 20


def test_slow_motion_players_follow_each_other_at_the_scaled_time(server, page, tmp_path):
    source = clip(tmp_path / 'slow.mp4', seconds=1, rate=12, size='96x64')
    driver.drop(page, [source])
    page.click('#rate label:has-text("slow motion")')
    page.fill('#slow-motion input', '3')
    assert driver.convert(page) == 'wrote slow-slowmo3.mp4: 12 frames in, 34 out at 12 fps, 3x slow motion'
    page.wait_for_function("document.querySelector('#result video')?.readyState >= 2")
    page.evaluate("document.querySelector('#result video').currentTime = 2.4")
    page.wait_for_timeout(500)
    both = players(page)
    assert abs(both[1]['duration'] / both[0]['duration'] - 3) < 0.2
    assert abs(both[0]['time'] - 2.4 * both[0]['duration'] / both[1]['duration']) < 0.05
    page.evaluate("document.querySelector('#result video').play()")
    page.wait_for_timeout(300)
    assert abs(players(page)[0]['rate'] - both[0]['duration'] / both[1]['duration']) < 1e-3


def test_an_input_browsers_cannot_play_is_shown_through_a_copy(server, page, tmp_path):
    source = clip(tmp_path / 'old.mkv', seconds=1, rate=10, size='96x64', extra=('-c:v', 'mpeg4'))
    line = driver.drop(page, [source])
    assert line == 'old.mkv: 96x64, 10 fps, 10 frames (1.00 s), no audio (shown through a copy browsers play)'
    page.wait_for_function("document.querySelector('#source video')?.readyState >= 2")
    assert '/previews/' in page.evaluate("document.querySelector('#source video').src")
    assert driver.convert(page) == 'wrote old-x2.mp4: 10 frames in, 19 out at 20 fps'  # from the file as dropped


def test_two_images_give_their_frames_a_slider_and_a_zip(server, page, tmp_path):
    scene = texture(80, 120, seed=5)
    one, two = tmp_path / 'f1.png', tmp_path / 'f2.png'
    frames.write_image(one, scene[8:72, 8:104])
    frames.write_image(two, scene[8:72, 14:110])
    assert driver.drop(page, [two, one]) == 'two images: f1.png (96x64), then f2.png (96x64)'
    page.fill('#factor input', '4')
    line = driver.convert(page)
    assert line == ('wrote 3 frames between the two images, f1-interpolated-t0.25.png to f1-interpolated-t0.75.png; '
                    'f1-interpolated.zip holds them')
    assert 'Cross-fade | interpolated (f1-interpolated-t0.5.png, t = 0.5)' in page.inner_text('#slider')
    assert page.evaluate("document.querySelectorAll('#slider img').length") == 2
    assert page.evaluate("document.querySelector('#loop video').src").endswith('loop.mp4')
    saved = download(page, tmp_path)
    with zipfile.ZipFile(saved) as bundle:
        assert sorted(bundle.namelist()) == [f'f1-interpolated-t{t}.png' for t in (0.25, 0.5, 0.75)]
        bundle.extract('f1-interpolated-t0.5.png', tmp_path / 'unzipped')
    interpolate.main(['--one', str(one), '--two', str(two), '--out', str(tmp_path / 'mid.png'), '--model',
                      'classical'])
    assert np.array_equal(frames.read_image(tmp_path / 'unzipped' / 'f1-interpolated-t0.5.png'),
                          frames.read_image(tmp_path / 'mid.png'))


def test_bad_input_shows_the_command_lines_line(server, page, tmp_path, capsys):
    assert driver.convert(page) == 'error: drop a video, or two images'
    (tmp_path / 'broken.mp4').write_bytes(b'\x00not a video' * 10)
    shown = driver.drop(page, [tmp_path / 'broken.mp4'])
    assert interpolate.main(['--video', str(tmp_path / 'broken.mp4'), '--out', str(tmp_path / 'o.mp4')]) == 2
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert shown == line.replace(f'{tmp_path}/', '') and shown.startswith('error: broken.mp4: not a readable video')
    assert driver.convert(page) == shown  # Convert says the same
    assert page.is_hidden('#download')

    frames.write_image(tmp_path / 'a.png', texture(64, 96))
    frames.write_image(tmp_path / 'b.png', texture(48, 96))
    driver.drop(page, [tmp_path / 'a.png', tmp_path / 'b.png'])
    assert driver.convert(page) == 'error: the frames differ in size: a.png is 96x64, b.png is 96x48'
    page.click('#rate label:has-text("fps")')
    assert driver.convert(page).startswith('error: fps applies to a video; two images take the factor')


def test_a_long_conversion_shows_progress_and_cancel_leaves_nothing(server, page, tmp_path):
    source = clip(tmp_path / 'long.mp4', seconds=12, rate=25, size='480x272')
    driver.drop(page, [source])
    page.fill('#factor input', '8')
    jobs = work_folder(server) / 'jobs'
    before = set(jobs.iterdir()) if jobs.exists() else set()  # the jobs of pages still open (or closing)
    page.click('#convert')
    line = driver.wait_status(page, 'converting long.mp4:', 'wrote', 'error', timeout=120)
    assert ' of 300 frames' in line
    driver.wait_status(page, *(f'converting long.mp4: {n} of 300 frames, ' for n in range(2, 300)), timeout=60)
    assert page.evaluate("document.querySelector('#progress progress')?.max") == 300
    page.click('#cancel')
    assert driver.wait_status(page, 'cancelled', 'wrote', timeout=60) == 'cancelled; nothing was kept'
    assert page.is_hidden('#download')
    assert set(jobs.iterdir()) <= before


def test_a_closed_page_takes_its_results_with_it(server, browser, tmp_path):
    page = driver.open_page(browser, server.url)
    one, two = tmp_path / 'a.png', tmp_path / 'b.png'
    frames.write_image(one, texture(64, 96, seed=1))
    frames.write_image(two, texture(64, 96, seed=2))
    driver.drop(page, [one, two])
    assert driver.convert(page).startswith('wrote a-interpolated.png')
    jobs = work_folder(server) / 'jobs'
    mine = [folder for folder in jobs.iterdir() if (folder / 'a-interpolated.png').exists()]
    assert len(mine) == 1
    page.close()
    deadline = time.monotonic() + 30
    while mine[0].exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not mine[0].exists()


def test_nothing_was_fetched_from_outside(server):
    """After the tests above: the browser asked only the page's own address, and the app connected nowhere else."""
    assert server.requests, 'no requests were recorded'
    origin = server.url.rstrip('/')
    foreign = sorted({url for url in server.requests if not url.startswith((origin + '/', 'data:', 'blob:'))
                      and url != origin})
    assert foreign == []
    log = server.root / 'connections.log'
    assert not log.exists() or log.read_text() == ''
    assert ipaddress.ip_address(server.url.split('//')[1].split(':')[0]).is_loopback


def test_sigterm_closes_the_page_with_one_line_and_removes_its_files(server):
    folder = work_folder(server)
    assert folder.is_dir()
    server.process.send_signal(signal.SIGTERM)  # twice, as `timeout` does when it is itself terminated
    status, errors = server.stop(signal.SIGTERM)
    assert status == 143, errors
    assert errors.strip() == 'terminated (SIGTERM); the page is closed and its files removed', errors[-3000:]
    assert not folder.exists()


def test_the_readme_screenshot_tool_captures_a_converted_clip(tmp_path):
    source = clip(tmp_path / 'shot.mp4', seconds=1, rate=12, size='160x96')
    done = subprocess.run([sys.executable, str(REPO / 'tools' / 'app_screenshot.py'), '--clip', str(source), '--out',
                           str(tmp_path / 'page.jpg')], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and done.stdout.strip() == f'wrote {tmp_path / "page.jpg"}', done.stderr[-2000:]
    shot = frames.read_image(tmp_path / 'page.jpg')
    assert shot.shape[1] == 1280 and shot.shape[0] > 800 and shot.std() > 20
    assert not list(tmp_path.glob('.page*'))


def test_listening_beyond_loopback_needs_the_flag_and_says_so(tmp_path):
    app = driver.App(['--listen', '127.0.0.2'], env=dict(os.environ, TMPDIR=str(tmp_path)))
    try:
        assert app.url.startswith('http://127.0.0.2:')
        status, errors = app.stop(signal.SIGINT)
    finally:
        app.kill()
    lines = errors.strip().splitlines()
    assert lines[0].startswith('warning: listening on 127.0.0.2:') and 'there is no password' in lines[0]
    assert status == 130 and lines[-1] == 'interrupted; the page is closed and its files removed'
    assert not list(tmp_path.iterdir())
