"""Build the built-in lifters shipped in ``src/napari_liftpose/bodies/builtin/`` and their manifest.

Seeded and reproducible: every lifter is trained on the CPU with one thread from its recipe
(``napari_liftpose.bodies.builtin.RECIPES``), so a rebuild gives the shipped tensors bit for bit.

    .venv/bin/python scripts/build_builtin_lifters.py            # build all, write the manifest
    .venv/bin/python scripts/build_builtin_lifters.py mouse-top  # build one (manifest updated)
    .venv/bin/python scripts/build_builtin_lifters.py --check    # rebuild in a temporary folder
                                                                 # and compare with the shipped

``--check`` compares the tensors bit for bit and the metadata key by key (``package_version``
aside: a release may bump it without retraining) and exits 1 on any difference.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ["OMP_NUM_THREADS"] = "1"  # before numpy and torch start their thread pools

import torch  # noqa: E402
from safetensors import safe_open  # noqa: E402

from napari_liftpose.bodies.builtin import BUILTIN_DIR, MANIFEST, RECIPES, build_builtin  # noqa: E402

IGNORED_META = ("package_version",)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def toml_string(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def write_manifest(names: list[str]) -> None:
    lines = [
        "# Built-in lifters: written by scripts/build_builtin_lifters.py; do not edit by hand.",
        "# Every file is checked against its sha256 when it is loaded.",
    ]
    for name in names:
        recipe = RECIPES[name]
        path = BUILTIN_DIR / recipe.file
        lines += [
            "",
            "[[lifter]]",
            f"name = {toml_string(name)}",
            f"body_model = {toml_string(recipe.body_model)}",
            f"camera = {toml_string(recipe.camera)}",
            f"description = {toml_string(recipe.description)}",
            f"root = {toml_string(recipe.root)}",
            f"file = {toml_string(recipe.file)}",
            f"sha256 = {toml_string(sha256(path))}",
            f"size_bytes = {path.stat().st_size}",
        ]
    MANIFEST.write_text("\n".join(lines) + "\n", encoding="utf-8")


def read_file(path: Path) -> tuple[dict, dict]:
    with safe_open(str(path), framework="pt", device="cpu") as f:
        meta = json.loads((f.metadata() or {})["napari_liftpose"])
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    return tensors, meta


def compare(shipped: Path, rebuilt: Path) -> list[str]:
    """Differences between two lifter files (empty: the same)."""
    if sha256(shipped) == sha256(rebuilt):
        return []
    a_t, a_m = read_file(shipped)
    b_t, b_m = read_file(rebuilt)
    problems = []
    if a_t.keys() != b_t.keys():
        problems.append(f"tensor names differ: {sorted(a_t.keys() ^ b_t.keys())}")
    for key in sorted(a_t.keys() & b_t.keys()):
        x, y = a_t[key], b_t[key]
        if x.shape != y.shape or x.dtype != y.dtype or not torch.equal(x, y):
            problems.append(f"tensor {key} differs")
    for key in sorted(set(a_m) | set(b_m)):
        if key not in IGNORED_META and a_m.get(key) != b_m.get(key):
            problems.append(f"metadata {key!r} differs")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help=f"built-ins to build (default: {list(RECIPES)})")
    parser.add_argument(
        "--check", action="store_true", help="rebuild elsewhere and compare with the shipped files"
    )
    args = parser.parse_args(argv)
    names = args.names or list(RECIPES)
    unknown = [n for n in names if n not in RECIPES]
    if unknown:
        parser.error(f"unknown built-ins {unknown}; expected some of {list(RECIPES)}")
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    failed = False
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            target = (
                Path(tmp) / RECIPES[name].file if args.check else BUILTIN_DIR / RECIPES[name].file
            )
            start, cpu = time.perf_counter(), time.process_time()
            build_builtin(name, target)
            took = (
                f"{time.perf_counter() - start:.1f} s wall, {time.process_time() - cpu:.1f} s CPU"
            )
            if not args.check:
                print(f"{name}: wrote {target} ({target.stat().st_size / 1e6:.2f} MB; {took})")
                continue
            problems = compare(BUILTIN_DIR / RECIPES[name].file, target)
            failed |= bool(problems)
            if problems:
                verdict = "DIFFERS: " + "; ".join(problems)
            elif sha256(BUILTIN_DIR / RECIPES[name].file) == sha256(target):
                verdict = "identical, byte for byte"
            else:
                verdict = "identical but for package_version"
            print(f"{name}: rebuilt ({took}); {verdict}")
    if not args.check:
        shipped = [n for n in RECIPES if (BUILTIN_DIR / RECIPES[n].file).is_file()]
        write_manifest(shipped)
        print(f"wrote {MANIFEST} ({len(shipped)} lifters)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
