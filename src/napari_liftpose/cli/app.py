"""The parser with every subcommand, and ``main``: the one place where errors become exit codes.

Exit codes: 0 success; 1 a package the command needs is not installed (one line saying what to
install); 2 any other error (one line on stderr: ``error: PATH: problem`` for bad input,
``error: napari-liftpose CMD: unexpected Type: message`` for a bug, whose traceback ``-v``
logs); 130 / 143 after SIGINT / SIGTERM (also when a library swallowed the interrupt); 141
when standard output's reader went away (``... | head``).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import warnings
from collections.abc import Callable, Sequence

from napari_liftpose.cli import demo, evaluate, flags, lift, train
from napari_liftpose.cli._common import (
    PROG,
    CommandInterrupted,
    Parser,
    add_verbose_option,
    apply_common_options,
    describe_error,
    describe_missing_module,
)

__all__ = ["BROKEN_PIPE", "SUBCOMMANDS", "build_parser", "main"]

BROKEN_PIPE = 141  # 128 + SIGPIPE: what a Unix tool reports when its reader goes away

#: ``name -> function adding its parser``; add a subcommand by adding a module and an entry.
SUBCOMMANDS: dict[str, Callable] = {
    "train": train.add_parser,
    "lift": lift.add_parser,
    "evaluate": evaluate.add_parser,
    "flags": flags.add_parser,
    "demo": demo.add_parser,
}

log = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every registered subcommand."""
    from napari_liftpose import __version__

    parser = Parser(prog=PROG, description="Lift single-camera 2D animal pose tracks to 3D.")
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    add_verbose_option(parser)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    subparsers.required = True
    for add in SUBCOMMANDS.values():
        add(subparsers)
    for sub in subparsers.choices.values():  # -v also after the subcommand's name
        sub.add_argument(
            "-v", "--verbose", action="count", default=argparse.SUPPRESS, help=argparse.SUPPRESS
        )
    return parser


def _stdout_is_closed() -> bool:
    """True if standard output's reader is gone; it is then pointed at /dev/null (no error at exit)."""
    try:
        sys.stdout.flush()
        return False
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return True


def _unexpected(err: BaseException, prefix: str, verbose: bool) -> str:
    """The line for a bug: its type and message; the traceback goes to the log with ``-v``."""
    if verbose:
        log.error("%s: traceback of the unexpected error", prefix, exc_info=err)
        hint = ""
    else:
        hint = " (run with -v for the traceback)"
    return f"{prefix}: unexpected {type(err).__name__}: {err}{hint}"


def _one_line_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Show a warning as one ``warning:`` line (Python's default adds the source line)."""
    sys.stderr.write(f"warning: {' '.join(str(message).split())}\n")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (0, 2, 130, 143 or 141; see the module)."""
    from napari_liftpose.io import interrupts

    command: str | None = None
    verbose = False
    message: str | None = None
    code = 2
    with interrupts.interrupt_guard(), warnings.catch_warnings():
        warnings.showwarning = _one_line_warning
        try:
            args = build_parser().parse_args(argv)
            command, verbose = args.command, bool(args.verbose)
            apply_common_options(args)  # -v's logging; --threads where the command has it
            if not verbose:  # numpy's "Mean of empty slice" and the like: noise for a user
                warnings.simplefilter("ignore", RuntimeWarning)
            code = int(args.run(args) or 0)
            sys.stdout.flush()  # a closed pipe shows here, not as a traceback at exit
        except BrokenPipeError as err:
            if _stdout_is_closed():  # the reader went away (`... | head`): stop quietly
                return BROKEN_PIPE
            message = f"{PROG}: {err}"  # some other pipe (an output FIFO, say): a real error
        except CommandInterrupted as err:
            message, code = str(err), interrupts.exit_code()
        except KeyboardInterrupt:
            message, code = None, interrupts.exit_code()
        except ModuleNotFoundError as err:  # e.g. no PyTorch: say what to install
            message, code = describe_missing_module(err, command), 1
        except Exception as err:  # every error of every subcommand ends here, as one line
            prefix = f"{PROG} {command}" if command else PROG
            message = describe_error(err, command) or _unexpected(err, prefix, verbose)
            code = getattr(err, "exit_code", 2)
    signum = interrupts.pending()
    if signum is not None:  # also when a library swallowed the KeyboardInterrupt
        code = interrupts.exit_code(signum)
    if code in (interrupts.exit_code(signal.SIGINT), interrupts.exit_code(signal.SIGTERM)):
        name = signal.Signals(code - 128).name
        message = message or f"{PROG} {command or ''}: interrupted".replace(" :", ":")
        message = f"{message} ({name})"
    if message is not None:
        sys.stderr.write(f"error: {' '.join(message.split())}\n")
    return code
