"""napari-liftpose: lift single-camera 2D animal pose tracks to 3D.

Importing the package loads neither napari nor Qt: the engine (:mod:`napari_liftpose.lifting`)
and the file formats (:mod:`napari_liftpose.io`) work headless.
"""

from napari_liftpose.poses import Poses

__version__ = "0.1.0"
__all__ = ["Poses", "__version__"]
