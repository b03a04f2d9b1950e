"""Command line: ``napari-liftpose train | lift | evaluate | demo`` (headless, for batch and HPC).

A thin shell: one module per subcommand (:mod:`~napari_liftpose.cli.train`,
:mod:`~napari_liftpose.cli.lift`, :mod:`~napari_liftpose.cli.evaluate`,
:mod:`~napari_liftpose.cli.demo`) registers its arguments with ``add_parser(subparsers)`` (listed
in :data:`SUBCOMMANDS`) and turns them into library calls. :func:`main`
(:mod:`~napari_liftpose.cli.app`) is the one place where every error becomes one line on stderr
naming the file and the problem, with exit code 2 (130/143 after SIGINT/SIGTERM). No output may
be one of the command's inputs; outputs are written atomically, so a failed run leaves no partial
file.
"""

from napari_liftpose.cli.app import SUBCOMMANDS, build_parser, main

__all__ = ["SUBCOMMANDS", "build_parser", "main"]
