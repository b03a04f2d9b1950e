"""``python -m napari_liftpose``: the command line (see :mod:`napari_liftpose.cli`)."""

import sys

from napari_liftpose.cli import main

if __name__ == "__main__":
    sys.exit(main())
