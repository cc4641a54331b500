"""Exceptions raised by defocus.

Every error a user can cause (a bad file, a bad option) is a :class:`DefocusError`; the CLI prints its message on
one line and never a traceback.
"""


class DefocusError(Exception):
    """Base class of every error defocus raises on purpose."""


class UsageError(DefocusError):
    """The command or call itself is wrong (an unknown name, option or device, an unusable output folder): nothing
    was run. The CLI exits with code 2."""


class InputArrayError(DefocusError, ValueError):
    """An array handed to a method's ``predict`` is not an H×W×3 (or H×W) image."""


class ImageReadError(DefocusError):
    """An input file is missing, empty, truncated, not an image, or too large to decode safely."""


class ImageTooLargeError(ImageReadError):
    """An image with more pixels than the limit allows (or a likely decompression bomb): refused before decoding."""


class OutputExistsError(DefocusError):
    """An output file exists already and overwriting was not allowed (``--force``)."""


class UnknownMethodError(UsageError):
    """A method name that is not in the registry."""


class UnknownOptionError(UsageError):
    """An option a method does not take."""


class WeightsError(DefocusError):
    """A weight file is missing, corrupt, or fails its sha256 check."""


class DatasetError(DefocusError):
    """A dataset folder does not have the layout its loader expects."""
