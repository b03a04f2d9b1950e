"""How the CSV readers parse numbers: every cell to the exact double it spells, on any pandas.

pandas' default C parser is fast but, before pandas 3.1, may land 1 ulp away from the double a
cell spells (pandas 2.3: 6,296 of the 27,960 cells of a real DeepLabCut file). Values a user did
not touch must come back bit-exact, so every ``pd.read_csv`` of poses passes
:data:`EXACT_FLOATS`: ``float_precision="round_trip"`` where the default is not exact, nothing
where it is (pandas 3.1 deprecates the option, its default being exact).
"""

from __future__ import annotations

import re

import pandas as pd

__all__ = ["EXACT_FLOATS", "pandas_version"]


def pandas_version() -> tuple[int, int]:
    """``(major, minor)`` of the installed pandas (``(0, 0)`` if it cannot be parsed)."""
    match = re.match(r"(\d+)\.(\d+)", pd.__version__)
    return (int(match[1]), int(match[2])) if match else (0, 0)


#: Keyword arguments for ``pd.read_csv`` that parse every float cell exactly.
EXACT_FLOATS: dict[str, str] = (
    {"float_precision": "round_trip"} if pandas_version() < (3, 1) else {}
)
