"""``python -m napari_liftpose.cli``: the same as ``python -m napari_liftpose``."""

import sys

from napari_liftpose.cli.app import main

if __name__ == "__main__":
    sys.exit(main())
