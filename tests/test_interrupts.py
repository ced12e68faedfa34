"""Ctrl-C inside asrctl: recorded by its handler, deferred where cutting in would do harm."""

import contextlib
import os
import signal

import pytest

from asrctl import interrupts
from asrctl.testing import make_plugin_dist, run_cli

# A plugin command that is stopped by Ctrl-C while it works.
STOPPED = """
import os, signal
from asrctl import hookimpl

@hookimpl
def register_commands(cli):
    @cli.command()
    def work():
        os.kill(os.getpid(), signal.SIGINT)
        for _ in range(10**8):
            pass
        print("finished")
"""


@pytest.fixture
def handler(monkeypatch):
    """asrctl's SIGINT handler in this process for the test; pytest's back afterwards."""
    monkeypatch.setattr(interrupts, "_interrupted", False)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    interrupts.install()
    yield
    signal.signal(signal.SIGINT, previous)


def ctrl_c() -> None:
    os.kill(os.getpid(), signal.SIGINT)
    for _ in range(1000):  # Python runs the handler at a jump of this loop
        pass


def test_ctrl_c_in_a_deferred_block_stops_the_job_when_the_block_ends(handler):
    finished = []
    with pytest.raises(KeyboardInterrupt):
        with interrupts.deferred():
            ctrl_c()
            finished.append("the rest of the block")
    assert finished == ["the rest of the block"]
    with pytest.raises(KeyboardInterrupt):  # and at every later check
        interrupts.raise_if_interrupted()
    with pytest.raises(KeyboardInterrupt):  # after the block, Ctrl-C raises at once again
        ctrl_c()
        finished.append("never")
    assert finished == ["the rest of the block"]


def test_outside_a_deferred_block_ctrl_c_raises_at_once(handler):
    finished = []
    with pytest.raises(KeyboardInterrupt):
        ctrl_c()
        finished.append("never")
    assert finished == []


def test_between_batches_the_first_ctrl_c_asks_the_second_stops_and_the_clean_up_is_left_alone(handler, capfd):
    done = []
    with pytest.raises(KeyboardInterrupt):
        with interrupts.between_batches():
            ctrl_c()
            done.append("the batch in hand")
            assert "stopping after the current batch (Ctrl-C again to stop now)" in capfd.readouterr().err
            ctrl_c()
            done.append("never")
    assert done == ["the batch in hand"]
    ctrl_c()  # during the clean-up that follows: noted only
    done.append("the clean-up")
    assert done == ["the batch in hand", "the clean-up"]


def test_between_batches_a_single_ctrl_c_stops_the_job_at_its_next_check(handler):
    with interrupts.between_batches():
        ctrl_c()
        with pytest.raises(KeyboardInterrupt):
            interrupts.raise_if_interrupted()
        ctrl_c()  # the job is stopping: not raised into its clean-up


def test_a_job_that_asked_whether_to_stop_only_notes_further_ctrl_c_while_it_saves(handler, capfd):
    with interrupts.between_batches("step"):
        assert not interrupts.stop_requested()
        ctrl_c()
        assert "stopping after the current step" in capfd.readouterr().err
        assert interrupts.stop_requested()
        ctrl_c()  # the trainer is writing the checkpoint of that step: not cut short
        assert interrupts.stop_requested()


@pytest.mark.parametrize("block", [contextlib.nullcontext, interrupts.between_batches])
def test_a_forked_worker_leaves_ctrl_c_to_the_process_that_stops_it(handler, block):
    """Data-loader workers are forked with the handler; Ctrl-C at a terminal reaches them too."""
    with block():
        child = os.fork()
        if child == 0:  # the worker: goes on with its work, and its parent sees nothing of its Ctrl-C
            try:
                ctrl_c()
                os._exit(10 if interrupts.stop_requested() else 0)
            except BaseException:
                os._exit(20)
        _, status = os.waitpid(child, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        assert not interrupts.stop_requested()


def test_after_a_block_without_ctrl_c_it_raises_at_once_again(handler):
    with interrupts.between_batches():
        pass
    with pytest.raises(KeyboardInterrupt):
        ctrl_c()


def test_ignored_sigint_stays_ignored(monkeypatch):
    """Started with SIGINT ignored (nohup, a background job of a script): asrctl leaves it so."""
    monkeypatch.setattr(interrupts, "_interrupted", False)
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        interrupts.install()
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
        with interrupts.deferred():
            ctrl_c()
        interrupts.raise_if_interrupted()
    finally:
        signal.signal(signal.SIGINT, previous)


def test_any_command_stopped_by_ctrl_c_exits_130_with_one_line(tmp_path):
    result = run_cli("work", pythonpath=make_plugin_dist(tmp_path, "asrctl-stopped", STOPPED))
    assert result.returncode == 130 and result.stderr.strip() == "interrupted", result.stderr
    assert "finished" not in result.stdout
