"""The one family of errors a user can cause; each maps to a CLI exit code (DESIGN.md)."""


class CutoverError(Exception):
    """Something the user can fix; the message says what was wrong and what to do."""

    exit_code = 2


class ConfigError(CutoverError):
    """Bad stack config, CLI input or outputs file. Nothing was changed."""


class GateRefused(CutoverError):
    """A release gate does not hold. Nothing was changed."""


class LockHeld(CutoverError):
    """Another deployment holds the lock on this listener."""

    exit_code = 3


class DeploymentFailed(CutoverError):
    """The deployment failed or was rolled back."""

    exit_code = 1
