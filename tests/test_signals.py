"""signals.py: stop signals held while threads work, and acted on, once, as the handler they displaced would act."""

import os
import signal
import threading

import pytest

from softmax_splatting.errors import Interrupted
from softmax_splatting.signals import StopSignals, terminate_as_interrupt


def test_a_held_signal_waits_for_check_and_then_acts_as_the_displaced_handler():
    calls = []
    previous = signal.signal(signal.SIGTERM, lambda number, frame: calls.append((number, frame)))
    try:
        with StopSignals() as held:
            held.check()  # nothing has arrived
            os.kill(os.getpid(), signal.SIGTERM)
            assert held() and calls == []  # recorded only
            held.check()
            held.check()  # acted on once
        assert calls == [(signal.SIGTERM, None)] and held.received == signal.SIGTERM
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_ctrl_c_under_the_default_handler_raises_keyboard_interrupt_at_check():
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    with StopSignals() as held:
        os.kill(os.getpid(), signal.SIGINT)
        with pytest.raises(KeyboardInterrupt):
            held.check()
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


@pytest.mark.parametrize('action, raises', [(signal.SIG_DFL, True), (signal.SIG_IGN, False)])
def test_sigterm_with_its_default_action_becomes_interrupted_and_an_ignored_one_is_ignored(action, raises):
    previous = signal.signal(signal.SIGTERM, action)
    try:
        with StopSignals() as held:
            os.kill(os.getpid(), signal.SIGTERM)
            if raises:
                with pytest.raises(Interrupted) as raised:
                    held.check()
                assert raised.value.status == 143
            else:
                held.check()
        assert signal.getsignal(signal.SIGTERM) == action
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_outside_the_main_thread_nothing_is_installed():
    seen = []

    def body():
        with StopSignals() as held:
            seen.append(signal.getsignal(signal.SIGINT))
            held.check()

    thread = threading.Thread(target=body)
    thread.start()
    thread.join()
    assert seen == [signal.default_int_handler]


def test_terminate_as_interrupt_raises_interrupted_with_143_and_restores_the_handler():
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(Interrupted) as raised:
        with terminate_as_interrupt():
            os.kill(os.getpid(), signal.SIGTERM)
            for _ in range(1000):  # the handler runs between two bytecodes
                pass
    assert raised.value.status == 143
    assert signal.getsignal(signal.SIGTERM) is before
