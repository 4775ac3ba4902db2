"""The one exception type that means "the user gave us something wrong"."""


class LandscapeError(Exception):
    """A user-facing error: the CLIs print its message as one line and exit with code 2."""
