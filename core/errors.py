"""The one exception type for errors a user can cause (bad file, bad parameter)."""


class DisplasiaError(Exception):
    """A problem the user can fix; the message is one line a pathologist understands.

    The CLI prints it as ``error: <message>`` and exits with code 2; the dashboard shows
    it in an error box. Programming errors are *not* wrapped in this type.
    """

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()))
