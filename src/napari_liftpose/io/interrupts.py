"""SIGINT and SIGTERM as a clean ``KeyboardInterrupt`` that no library can swallow.

A ``KeyboardInterrupt`` raised while h5py or PyTables runs a callback or a ``__del__`` is
printed as "Exception ignored" and lost, so a run could carry on and publish a file after the
user pressed Ctrl+C. :func:`interrupt_guard` installs handlers that *record* the signal before
raising, and :func:`napari_liftpose.io.atomic.atomic_path` checks :func:`interrupted` before it
renames a temporary file into place: once an interrupt arrived inside the guard, no new file is
published, even if the exception itself was swallowed (:func:`set_aside` lets through a save
the interrupt asks for, such as the best model so far). The recorded signal stays readable
through :func:`pending` after the guard, for the exit code; it blocks no write there. SIGTERM raises ``KeyboardInterrupt`` too, so ``finally``
blocks (temporary files, half-written models) clean up on ``kill`` as on Ctrl+C.

Exit codes recommended for the command line (the shell's convention, 128 + the signal number;
:func:`exit_code` computes them):

- 130 after SIGINT (Ctrl+C),
- 143 after SIGTERM (``kill``).

Typical use in the CLI's ``main``::

    with interrupt_guard():
        try:
            return run(args)
        except KeyboardInterrupt:
            print("error: interrupted", file=sys.stderr)
            return exit_code()

The handlers are installed only from the main thread (Python allows no other); elsewhere, e.g.
in napari's worker threads, the guard does nothing and :func:`pending` stays ``None``.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator

__all__ = [
    "interrupt_guard",
    "pending",
    "clear",
    "record",
    "set_aside",
    "raise_if_pending",
    "interrupted",
    "exit_code",
    "deferred_signals",
    "surfaced",
    "GUARDED_SIGNALS",
]

GUARDED_SIGNALS: tuple[signal.Signals, ...] = (signal.SIGINT, signal.SIGTERM)

_pending: int | None = None
_guards = 0  # how many interrupt_guard blocks are active (main thread only)


def pending() -> int | None:
    """The number of the first SIGINT/SIGTERM received under :func:`interrupt_guard`, else None."""
    return _pending


def clear() -> None:
    """Forget a received signal (a new run starts with nothing pending)."""
    global _pending
    _pending = None


def record(signum: int) -> None:
    """Mark ``signum`` as received (what the guard's handler does), unless one already is."""
    global _pending
    if _pending is None:
        _pending = int(signum)


@contextlib.contextmanager
def set_aside() -> Iterator[int | None]:
    """Nothing is pending within the block; the signal set aside is pending again after it.

    For a save that the interrupt itself asks for (the best model so far after Ctrl+C):
    :func:`napari_liftpose.io.atomic.atomic_path` may rename within the block. Yields the
    signal set aside (or None).
    """
    signum = _pending
    clear()
    try:
        yield signum
    finally:
        if signum is not None:
            record(signum)


def raise_if_pending() -> None:
    """Raise ``KeyboardInterrupt`` if a signal was received, even if its exception was swallowed.

    Raises
    ------
    KeyboardInterrupt
        If :func:`pending` is not None.
    """
    if _pending is not None:
        raise KeyboardInterrupt(f"interrupted by {signal.Signals(_pending).name}")


def interrupted() -> bool:
    """True inside :func:`interrupt_guard` once a signal was received: publish nothing new.

    Outside a guard this is always False, so a signal recorded by an earlier guarded run (a
    test calling the CLI's ``main``, say) does not block later writes in the same process.
    """
    return _guards > 0 and _pending is not None


def exit_code(signum: int | None = None) -> int:
    """The exit code for an interrupted run: ``128 + signal`` (130 for SIGINT, 143 for SIGTERM).

    Parameters
    ----------
    signum : int, optional
        The signal; by default the pending one, or SIGINT when none was recorded (a
        ``KeyboardInterrupt`` raised by Python's own handler).
    """
    if signum is None:
        signum = _pending if _pending is not None else signal.SIGINT
    return 128 + int(signum)


def _record_and_raise(signum: int, frame: object) -> None:
    record(signum)
    raise KeyboardInterrupt(f"interrupted by {signal.Signals(signum).name}")


@contextlib.contextmanager
def interrupt_guard() -> Iterator[None]:
    """Within the block, SIGINT and SIGTERM are recorded and raise ``KeyboardInterrupt``.

    Clears any earlier pending signal on entry and restores the previous handlers on exit; the
    received signal stays readable through :func:`pending` after the block. Outside the main
    thread this does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    global _guards
    previous = {sig: signal.getsignal(sig) for sig in GUARDED_SIGNALS}
    clear()
    for sig in GUARDED_SIGNALS:
        signal.signal(sig, _record_and_raise)
    _guards += 1
    try:
        yield
    finally:
        _guards -= 1
        for sig, handler in previous.items():
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)


@contextlib.contextmanager
def surfaced() -> Iterator[None]:
    """Within the block, an error raised after a guarded signal arrived becomes ``KeyboardInterrupt``.

    h5py turns a ``KeyboardInterrupt`` raised inside its Cython code into an unrelated error
    (``TypeError: Operation not defined for data type class``, seen under SIGTERM); the caller
    must still see the interrupt, not a bogus write error. Errors with nothing pending pass
    through unchanged.
    """
    try:
        yield
    except KeyboardInterrupt:
        raise
    except Exception as err:
        if interrupted():
            raise KeyboardInterrupt(f"interrupted by {signal.Signals(_pending).name}") from err
        raise


@contextlib.contextmanager
def deferred_signals() -> Iterator[None]:
    """Hold SIGINT and SIGTERM back during a short cleanup; they are delivered right after.

    Used so that a second Ctrl+C cannot cut the removal of a temporary file in half. A no-op
    where the platform has no ``pthread_sigmask`` (Windows).
    """
    if not hasattr(signal, "pthread_sigmask"):
        yield
        return
    old = signal.pthread_sigmask(signal.SIG_BLOCK, GUARDED_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)
