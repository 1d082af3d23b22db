"""The one error type for bad user input: shown as a single line, exit code 2, no traceback."""


class UserError(ValueError):
    """Bad input from a user (an unknown name, a value out of range, a file that is not ours)."""
