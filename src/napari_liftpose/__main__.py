"""``python -m napari_liftpose``: the command line (see :mod:`napari_liftpose.cli`)."""

import sys

from napari_liftpose.cli import main

sys.exit(main())
