"""Errors that name the file, what was expected, what was found, and what to do."""


class AscendAsrError(Exception):
    """Base of every error this package raises on purpose."""


class AudioError(AscendAsrError):
    """An audio file is missing, unreadable, empty, or in a format we refuse."""


class ManifestError(AscendAsrError):
    """A dataset manifest (or one line of it) cannot be read."""


class ProfileError(AscendAsrError):
    """A profile is malformed or disagrees with the ONNX graph."""


class TensorFileError(AscendAsrError):
    """A .bin / info / meta file does not match what the model expects."""


class ShapeError(AscendAsrError):
    """An utterance or batch does not fit any compiled shape."""


class CheckpointError(AscendAsrError):
    """A checkpoint cannot be loaded into the model."""


class BackendError(AscendAsrError):
    """A runtime backend cannot be opened or failed to run."""


class AtcError(AscendAsrError):
    """ATC could not be found or failed to build an OM."""


class ExportError(AscendAsrError):
    """A model could not be exported to ONNX (the exporter failed, or an opset ATC cannot take)."""


class OptionError(AscendAsrError):
    """Options (on the command line or their API equivalents) that contradict each other or would do nothing."""


def describe_exception(exc: BaseException) -> str:
    """One line for an exception that is not a project error: its type, message and where it was raised,
    so that a failure skipped as one utterance's still points at the code (a bug stays visible)."""
    import traceback

    frames = traceback.extract_tb(exc.__traceback__)
    where = f" (at {frames[-1].filename.rsplit('/', 1)[-1]}:{frames[-1].lineno})" if frames else ""
    return f"{type(exc).__name__}: {exc}{where}"
