"""``python -m napari_liftpose``: the command line (see :mod:`napari_liftpose.cli`)."""

import sys

if __name__ == "__main__":
    try:
        from napari_liftpose.cli import main
    except KeyboardInterrupt:  # Ctrl+C while Python starts: before main() guards the signals
        sys.stderr.write("error: napari-liftpose: interrupted (SIGINT)\n")
        sys.exit(130)
    sys.exit(main())
