"""Native runtime logs (LiteRT's ``INFO: Created TensorFlow Lite XNNPACK delegate``, the GPU
accelerator's ``delegate_webgpu.cc`` lines, TensorFlow's C++ logging) go nowhere unless the user
asks for them: ``edgecnn --verbose`` or ``EDGECNN_VERBOSE=1``. They are written by C++ straight to
file descriptors 1 and 2, so Python's logging cannot filter them: the descriptors are pointed
elsewhere around the calls that print."""

from __future__ import annotations

import atexit
import contextlib
import functools
import os
import sys
from collections.abc import Iterator

VERBOSE_VARIABLE = "EDGECNN_VERBOSE"


def verbose() -> bool:
    return os.environ.get(VERBOSE_VARIABLE, "") not in ("", "0")


def set_verbose(enabled: bool) -> None:
    """Show native logs (on stderr) from now on, in this process and the ones it starts."""
    os.environ[VERBOSE_VARIABLE] = "1" if enabled else "0"
    # TensorFlow's C++ logging reads this when it loads: 3 keeps errors only, 0 shows everything
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "0" if enabled else os.environ.get("TF_CPP_MIN_LOG_LEVEL", "3")


def _flush_c_streams() -> None:
    """Native code writes through C's stdio, which buffers stdout when it is not a terminal: what
    it holds must leave while the descriptors still point where it was meant to go."""
    import ctypes

    try:
        ctypes.CDLL(None).fflush(None)
    except (OSError, AttributeError):  # no C library to call (an unusual platform): nothing buffered to flush
        pass


@contextlib.contextmanager
def native_output_quiet() -> Iterator[None]:
    """What native code writes to descriptors 1 and 2 during the block is dropped; in verbose
    mode it goes to stderr, never to stdout (where `--json` keeps exactly one document)."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved_out, saved_err = os.dup(1), os.dup(2)
    sink = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(saved_err if verbose() else sink, 1)
        if not verbose():
            os.dup2(sink, 2)
        yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        _flush_c_streams()
        os.dup2(saved_out, 1)
        os.dup2(saved_err, 2)
        for descriptor in (saved_out, saved_err, sink):
            os.close(descriptor)


@functools.cache
def quiet_at_exit() -> None:
    """Drop what native code prints while the process ends (LiteRT's accelerator registry logs
    ``DestroyAccelerator`` lines from static destructors, after Python is done), unless verbose.
    Registered once, by the first GPU accelerator created."""
    def silence() -> None:
        if verbose():
            return
        sys.stdout.flush()
        sys.stderr.flush()
        _flush_c_streams()
        sink = os.open(os.devnull, os.O_WRONLY)
        os.dup2(sink, 1)
        os.dup2(sink, 2)

    atexit.register(silence)
