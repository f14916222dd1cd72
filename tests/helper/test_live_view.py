"""What people see while a shift runs: progress lines in CI logs, and `status --watch`, plain
into a pipe and live on a terminal (a real pseudo-terminal)."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import time
from collections.abc import Callable

from tests.harness.aws_stack import AwsStack
from tests.harness.cli_runs import running
from tests.helper.test_shift import shift


def on_terminal(aws: AwsStack, *args: str) -> tuple[subprocess.Popen[bytes], int]:
    """`cutover ARGS` with a pseudo-terminal as its stdin, stdout and stderr; the process and
    the terminal's other end."""
    main, terminal = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "cutover", *args],
        stdin=terminal, stdout=terminal, stderr=terminal, cwd=aws.tmp,
        env={**os.environ, **aws.env, "TERM": "xterm-256color", "COLUMNS": "160"},
    )  # fmt: skip
    os.close(terminal)
    return process, main


def read_screen(main: int, until: Callable[[bytes], bool], timeout: float = 30) -> bytes:
    """What the program wrote to its terminal, until `until(screen)` or it closes."""
    screen = b""
    deadline = time.monotonic() + timeout
    while not until(screen) and time.monotonic() < deadline:
        if select.select([main], [], [], 0.5)[0]:
            try:
                screen += os.read(main, 65536)
            except OSError:  # the program ended and closed the terminal
                break
    return screen


def read_to_close(main: int, timeout: float = 60) -> bytes:
    """What the program wrote to its terminal until it closed it: every byte, not only those
    read before its process was seen to exit (its last lines may still be unread then)."""
    return read_screen(main, lambda _: False, timeout)


def test_a_bake_tells_its_progress_without_flooding_the_log(aws: AwsStack) -> None:
    result = aws.cutover(*shift(aws, "--steps", "100", "--bake", "11.5s", "--interval", "0.2s"))
    assert result.returncode == 0, result.stderr
    told = [line for line in result.stdout.splitlines() if "baked " in line]
    assert len(told) == 1, result.stdout  # one line per 10 s, not one per 0.2 s poll
    assert "of 11.5s" in told[0] and "s left); guards: alarms ok, targets ok, routing ok" in told[0]


def test_status_watch_follows_a_shift_and_exits_with_its_code(aws: AwsStack) -> None:
    process = aws.spawn(*shift(aws, "--steps", "50,100", "--bake", "2s", "--interval", "0.1s"))
    with running(process):
        aws.wait_for(lambda: aws.served() == {"blue": 50, "green": 50}, what="first step")
        watched = aws.cutover(*aws.args("status", "--watch", "--interval", "0.2s"))
        process.communicate(timeout=30)
    assert watched.returncode == 0, watched.stderr
    out = watched.stdout
    assert "step 1/2 blue 50 / green 50: baking" in out
    assert "guards: alarms ok, routing ok, targets ok" in out
    assert "next: `cutover abort` gives traffic back" in out
    assert out.rstrip().splitlines()[0].startswith("deployment ")
    assert "succeeded towards green" in out


def test_status_watch_exits_1_when_the_shift_rolls_back(aws: AwsStack) -> None:
    process = aws.spawn(*shift(aws, "--steps", "50,100", "--bake", "30s", "--interval", "0.1s"))
    with running(process):
        aws.wait_for(lambda: aws.served() == {"blue": 50, "green": 50}, what="first step")
        watcher = aws.spawn(*aws.args("status", "--watch", "--interval", "0.2s"))
        time.sleep(1)
        aws.alarm(aws.data["checkout"]["alarmNames"]["green"][0])
        out, _ = watcher.communicate(timeout=30)
        process.communicate(timeout=30)
    assert watcher.returncode == 1
    assert "rolled-back towards green" in out and "failure: guard failed" in out


def test_status_watch_on_a_terminal_is_a_live_table(aws: AwsStack) -> None:
    process = aws.spawn(*shift(aws, "--steps", "50,100", "--bake", "30s", "--interval", "0.1s"))
    with running(process):
        aws.wait_for(lambda: aws.served() == {"blue": 50, "green": 50}, what="first step")
        watcher, main = on_terminal(aws, *aws.args("status", "--watch", "--interval", "0.2s"))
        screen = read_screen(main, lambda s: b"s left" in s and b"guards:" in s)
        abort = aws.cutover(*aws.args("abort"))
        assert abort.returncode == 0, abort.stderr
        screen += read_to_close(main)
        watcher.wait(timeout=30)
        os.close(main)
        process.communicate(timeout=30)
    text = screen.decode(errors="replace")
    assert "\x1b[" in text  # drawn in place with terminal control, by rich
    assert "step 1/2 blue 50 / green 50: baking" in text and "s left" in text
    assert "guards: alarms ok, routing ok, targets ok" in text
    assert watcher.returncode == 1  # aborted: rolled back


def test_a_shift_on_a_terminal_redraws_its_progress_in_place(aws: AwsStack) -> None:
    process, main = on_terminal(
        aws, *shift(aws, "--steps", "100", "--bake", "11s", "--interval", "0.2s")
    )
    screen = read_to_close(main)
    process.wait(timeout=30)
    os.close(main)
    text = screen.decode(errors="replace")
    assert process.returncode == 0, text
    assert "baked 10s of 11s" in text and "\x1b[" in text  # drawn by rich, in place
    assert "Shift " in text and "succeeded: green serves all traffic." in text
