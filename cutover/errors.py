"""The one family of errors a user can cause, and the exit codes they map to: the one table
of what a pipeline can act on (`cutover --help` and each command's help print it)."""

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    FAILED = 1  # the deployment failed or was rolled back (a gate judged unmet, a preview blocked)
    BAD_INPUT = 2  # bad input or a refused gate: nothing was changed
    LOCK_HELD = 3  # another deployment holds the lock


MEANING = {
    ExitCode.OK: "success",
    ExitCode.FAILED: "the deployment failed or was rolled back (traffic given back)",
    ExitCode.BAD_INPUT: "bad input or a refused gate (nothing was changed)",
    ExitCode.LOCK_HELD: "another deployment holds the lock",
}
EXIT_CODES = "Exit codes: " + "; ".join(f"{int(c)} {m}" for c, m in MEANING.items()) + "."


class CutoverError(Exception):
    """Something the user can fix; the message says what was wrong and what to do."""

    exit_code: ExitCode = ExitCode.BAD_INPUT


class ConfigError(CutoverError):
    """Bad stack config, CLI input or outputs file. Nothing was changed."""


class GateRefused(CutoverError):
    """A release gate does not hold. Nothing was changed."""


class LockHeld(CutoverError):
    """Another deployment holds the lock on this listener."""

    exit_code = ExitCode.LOCK_HELD


class DeploymentFailed(CutoverError):
    """The deployment failed or was rolled back."""

    exit_code = ExitCode.FAILED


class JudgedUnmet(CutoverError):
    """Exit gates or a preview judged the release unmet; the command printed the verdict (a
    message, when given, is one more line)."""

    exit_code = ExitCode.FAILED
