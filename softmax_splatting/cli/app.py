"""Open the interpolator's local web page: drop a video or two images in a browser, convert, compare, download.

    softsplat-app                     # http://127.0.0.1:7860/, for this machine only
    python app.py --port 8080         # from a checkout
    softsplat-app --model weights/softsplat.pt --threads 2
    softsplat-app --listen            # every network interface: other machines may use it (it says so)

The page (``softmax_splatting/app/``, built with Gradio) runs each conversion through ``softsplat-interpolate``'s
own code, so it writes what the command line writes and refuses what it refuses, with the same messages; it shows
the command each conversion stands for. Conversions run one at a time; each shows its frames done and time left
and can be cancelled, which removes its files. Nothing is fetched from the internet: Gradio's analytics and
version check are off, and the page's fonts and scripts come from this machine. Uploads and results live in a
temporary folder that is removed when the page closes (Ctrl-C or SIGTERM: one line, status 130 or 143).
"""

from __future__ import annotations

import argparse
import importlib.util
import ipaddress
import logging
import os
import signal
import socket
import sys
import tempfile
import time
from pathlib import Path
from typing import Optional, Sequence

from .. import errors
from ..errors import Interrupted, UsageError
from ..files import not_a_file
from ..interpolator import CLASSICAL
from ..resources import configure_threads, select_device
from . import options

__all__ = ['build_parser', 'main', 'run', 'LOOPBACK', 'DEFAULT_PORT', 'OFFLINE']

LOOPBACK = '127.0.0.1'
DEFAULT_PORT = 7860  # Gradio's, which users of demo pages know
ALL_INTERFACES = '0.0.0.0'
# Set before Gradio is imported: no analytics, no version check, nothing from the Hugging Face hub.
OFFLINE = {'GRADIO_ANALYTICS_ENABLED': 'False', 'HF_HUB_OFFLINE': '1', 'HF_HUB_DISABLE_TELEMETRY': '1',
           'DO_NOT_TRACK': '1'}
APP_REQUIREMENT = 'pip install -r requirements-app.txt (from a checkout) or pip install "softmax-splatting[app]"'


def build_parser() -> options.Parser:
    parser = options.Parser(__doc__)
    parser.add_argument('--port', type=int, default=DEFAULT_PORT,
                        help=f'port of the page (default: {DEFAULT_PORT}; 0: any free port)')
    parser.add_argument('--listen', nargs='?', const=ALL_INTERFACES, metavar='ADDRESS',
                        help=f'listen beyond this machine: on every interface ({ALL_INTERFACES}), or on ADDRESS; '
                             f'anyone who reaches it can then convert files and download results, with no password '
                             f'(default: {LOOPBACK} only)')
    parser.add_argument('--model', metavar='PATH|classical',
                        help='the model preselected on the page: "classical" (the default) or a model file, which '
                             'is offered beside those found in weights/')
    options.add_device(parser)
    options.add_threads(parser)
    parser.add_argument('--browser', action='store_true', help='open the page in this machine\'s web browser')
    return parser


def check_address(host: str, port: int) -> int:
    """The port the page will listen on (a free one for 0); UsageError when the address cannot be listened on."""
    if not 0 <= port <= 65535:
        raise UsageError(f'--port must be from 0 to 65535, got {port}')
    try:
        family = socket.AF_INET6 if ipaddress.ip_address(host).version == 6 else socket.AF_INET
    except ValueError:
        raise UsageError(f'--listen {host}: not an IP address (e.g. 0.0.0.0, or one of this machine\'s '
                         f'addresses)') from None
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server will
        try:
            probe.bind((host, port))
        except OSError as error:
            if error.errno == 98:  # EADDRINUSE
                raise UsageError(f'--port {port}: {host}:{port} is in use by another program (another page?); '
                                 f'choose another port, or --port 0 for any free one') from None
            raise UsageError(f'cannot listen on {host}:{port} ({error.strerror or error})') from None
        return probe.getsockname()[1]


def _url(host: str, port: int) -> str:
    shown = LOOPBACK if host in (ALL_INTERFACES, '::') else host
    return f'http://{f"[{shown}]" if ":" in shown else shown}:{port}/'


class _RemovedFiles(logging.Filter):
    """Drops the server's report of a request for a file of ``folder`` that is gone: a result is removed when its
    page closes or starts another conversion, and a player may still be reading it (it gets an error response).
    Any other failure is reported as before."""

    def __init__(self, folder: Path):
        super().__init__()
        self.folder = f'{folder}/'

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, FileNotFoundError):  # removed between the server's look at it and its opening
            return not str(error.filename or '').startswith(self.folder)
        return not (isinstance(error, RuntimeError) and str(error).startswith(f'File at path {self.folder}')
                    and str(error).endswith(' does not exist.'))  # Starlette's words for a file already gone


def _stop(number: int, _frame) -> None:
    # the first stop signal closes the page; later ones (timeout forwards SIGTERM, users press Ctrl-C twice) are
    # ignored from here on, so that they cannot cut the clean-up short
    errors.ignore_stop_signals()
    if number == signal.SIGINT:
        raise KeyboardInterrupt
    raise Interrupted(f'terminated ({signal.Signals(number).name})', 128 + number)


def run(args: argparse.Namespace) -> int:
    configure_threads(args.threads)
    select_device(args.device)
    if args.model not in (None, CLASSICAL):
        problem = not_a_file(Path(args.model), 'model file')
        if problem is not None:
            raise UsageError(f'--model {args.model}: {problem}')
    if importlib.util.find_spec('gradio') is None:
        raise UsageError(f'the page needs Gradio: {APP_REQUIREMENT}')
    host = args.listen or LOOPBACK
    port = check_address(host, args.port)
    os.environ.update(OFFLINE)
    work = Path(tempfile.mkdtemp(prefix='softsplat-app-'))
    os.environ['GRADIO_TEMP_DIR'] = str(work)  # uploads, results and Gradio's own files: one folder, removed at the end
    from ..app import jobs  # noqa: PLC0415

    board = jobs.JobBoard(work)
    previous = {number: signal.signal(number, _stop) for number in (signal.SIGINT, signal.SIGTERM)}
    demo = None
    try:
        from ..app import page  # noqa: PLC0415 - Gradio, once GRADIO_TEMP_DIR is set

        demo = page.build(board, jobs.model_choices(extra=args.model), args.model or CLASSICAL, args.device)
        demo.queue(default_concurrency_limit=1)
        try:
            demo.launch(server_name=host, server_port=port, prevent_thread_lock=True, quiet=True,
                        inbrowser=args.browser, footer_links=['settings'], ssr_mode=False, pwa=False,
                        mcp_server=False, enable_monitoring=False, js=page.SYNC_SCRIPT, css=page.STYLE)
        except OSError as error:
            raise UsageError(f'cannot open the page on {host}:{port} ({errors.first_line(error)})') from None
        logging.getLogger('uvicorn.error').addFilter(_RemovedFiles(work))  # once the server has set up its logging
        if host not in (LOOPBACK, '::1', 'localhost'):
            print(f'warning: listening on {host}:{port}: anyone who can reach this machine there can convert files '
                  f'and download the results; there is no password', file=sys.stderr, flush=True)
        print(f'the page is at {_url(host, port)} (Ctrl-C closes it)', flush=True)
        while True:
            time.sleep(3600)
    except (KeyboardInterrupt, Interrupted) as stop:
        running = _close(board, demo)
        status = stop.status if isinstance(stop, Interrupted) else 130
        what = 'interrupted' if status == 130 else str(stop)
        cancelled = f'; {running} conversion(s) cancelled, nothing of them kept' if running else ''
        raise Interrupted(f'{what}; the page is closed and its files removed{cancelled}', status) from None
    except BaseException:
        _close(board, demo)
        raise
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def _close(board, demo) -> int:
    running = board.close()
    if demo is not None:
        demo.close()
    return running


def main(argv: Optional[Sequence[str]] = None) -> int:
    return errors.report_errors(lambda: run(build_parser().parse_args(argv)))


if __name__ == '__main__':
    sys.exit(main())
