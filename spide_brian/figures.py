"""Build the paper figures: find, load and run the scripts in ``figures/``.

Each script ``figures/figN_*.py`` exposes ``make_figure(out_dir, quick=True) -> Path`` (a PNG
and, beside it, a JSON file with the numbers behind it) and ``main(argv)``. ``quick`` sizes
each figure to run in well under a minute on the embedded digits; ``quick=False`` is the full
size. The scripts live in the source tree next to the package (``figures/``), so building them
needs a checkout.
"""
from __future__ import annotations

import argparse
import importlib.util
import sys
import time
from pathlib import Path

import numpy as np
from brian2.utils.logger import get_logger

__all__ = ["FIGURES_DIR", "figure_scripts", "load_script", "build_all", "figure_arguments",
           "read_log"]

logger = get_logger(__name__)

_SOURCE_FIGURES = Path(__file__).resolve().parent.parent / "figures"
#: The figure scripts: ``figures/`` of a source checkout, or the copy installed with the package.
FIGURES_DIR = (_SOURCE_FIGURES if _SOURCE_FIGURES.is_dir()
               else Path(__file__).resolve().parent / "figure_scripts")


def figure_scripts(folder=None):
    """Paths of the figure scripts (``fig*.py``) in ``folder``, in figure order."""
    folder = Path(folder) if folder is not None else FIGURES_DIR
    if not folder.is_dir():
        raise FileNotFoundError(f"no figure scripts at {folder}: reinstall spide-brian (the "
                                f"scripts are installed with it) or run from a source checkout")
    return sorted(folder.glob("fig*.py"))


def load_script(path):
    """Import a figure script as a module (registered as ``spide_figures.<name>``)."""
    path = Path(path)
    name = f"spide_figures.{path.stem}"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def build_all(out_dir, quick=True, folder=None):
    """Run every figure script; returns the paths of the PNG files written.

    Parameters
    ----------
    out_dir : str or Path
        Folder for the figures (created if missing).
    quick : bool
        Quick mode (seconds each, digits) or full size.
    folder : str or Path, optional
        Folder of the scripts; defaults to :data:`FIGURES_DIR`.
    """
    out_dir = Path(out_dir)
    paths = []
    for script in figure_scripts(folder):
        started = time.perf_counter()
        paths.append(Path(load_script(script).make_figure(out_dir, quick=quick)))
        logger.debug(f"{script.stem}: {paths[-1]} in {time.perf_counter() - started:.1f} s")
    return paths


def figure_arguments(description, argv=None, add_arguments=None):
    """Parse a figure script's command line: ``--out DIR``, ``--full`` and its own flags.

    Parameters
    ----------
    description : str
        The script's docstring.
    add_arguments : callable, optional
        ``add_arguments(parser)`` adds the script's own flags.
    """
    parser = argparse.ArgumentParser(description=description,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="output/figures",
                        help="output folder (default: %(default)s)")
    parser.add_argument("--full", action="store_true",
                        help="full size (minutes) instead of the quick default (seconds)")
    if add_arguments is not None:
        add_arguments(parser)
    return parser.parse_args(argv)


def read_log(path):
    """Read a training log (``log.tsv`` of ``spide-brian train``) into columns.

    Returns
    -------
    dict of str -> ndarray
        One float array per column, in file order.
    """
    lines = [line for line in Path(path).read_text(encoding="utf-8").splitlines() if line]
    if not lines:
        raise ValueError(f"{path} is empty; expected a header line and one line per epoch")
    header = lines[0].split("\t")
    rows = [line.split("\t") for line in lines[1:]]
    for number, row in enumerate(rows, start=2):
        if len(row) != len(header):
            raise ValueError(f"{path} line {number}: {len(row)} fields, header has {len(header)}")
    return {name: np.array([float(row[i]) for row in rows]) for i, name in enumerate(header)}
