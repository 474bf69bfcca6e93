"""The one runner behind every entry point: `ascend-asr X`, `python -m ascend_asr.X`, the ModelZoo scripts.

A project error (AscendAsrError) is one line on stderr, `[ascend-asr] error: <message>`, exit 2.
A run that skipped bad utterances exits 3 when none succeeded, or with `--strict` when any failed
(they are listed in failures.json / summary.json).
Ctrl-C (exit 130) and SIGTERM (exit 143) say that a rerun of the same command resumes: every
writer appends finished work and renames complete files into place, and the exception unwinds
through their `finally` blocks and context managers before the process exits. Any other
exception is a bug and keeps its traceback.
"""
from __future__ import annotations

import signal
import sys
import threading

from .errors import AscendAsrError

ERROR_PREFIX = "[ascend-asr] error: "
INTERRUPTED = "[ascend-asr] interrupted; rerun the same command to resume"
EXIT_ERROR, EXIT_SIGINT, EXIT_SIGTERM = 2, 128 + signal.SIGINT, 128 + signal.SIGTERM
EXIT_UTTERANCES_FAILED = 3  # preprocess/infer/demo: every utterance failed (any one, with --strict)


class Terminated(BaseException):
    """SIGTERM, raised where the main thread is, so that it unwinds as Ctrl-C does (not an Exception:
    an `except Exception` around one utterance must not swallow it)."""


def _raise_terminated(signum, frame):
    raise Terminated()


def watch_parent(parent_pid: int) -> None:
    """SIGTERM to this process once `parent_pid` is gone (or this process was re-parented): a worker of ours
    never outlives the run that started it (after a kill -9 it would otherwise live on, holding the folder
    lock it inherited and the parent's output pipes). What SIGTERM does is the worker's own handler's."""
    import os
    import threading
    import time

    first_parent = os.getppid()

    def parent_alive() -> bool:
        if os.getppid() != first_parent:
            return False
        try:
            os.kill(parent_pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            pass
        return True

    def watch():
        while parent_alive():
            time.sleep(1.0)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, daemon=True, name="parent-watch").start()


def worker_process_setup(parent_pid: int) -> None:
    """In a pool worker of ours: Ctrl-C is the parent's to handle (it stops the pool), SIGTERM ends the worker,
    and the worker ends when its parent is gone."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    watch_parent(parent_pid)


def run(main, argv=None) -> int:
    """main(argv) -> exit status, with the project's error and interruption handling."""
    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _raise_terminated) if in_main_thread else None
    try:
        return main(argv) or 0
    except AscendAsrError as exc:
        print(ERROR_PREFIX + str(exc), file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print(INTERRUPTED, file=sys.stderr)
        return EXIT_SIGINT
    except Terminated:
        print(INTERRUPTED, file=sys.stderr)
        return EXIT_SIGTERM
    finally:
        if in_main_thread:
            signal.signal(signal.SIGTERM, previous)
