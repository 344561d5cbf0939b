"""Named training recipes: documented sets of config values, with the data they are for.

A recipe names a dataset and the :class:`~spide_brian.config.SPIDEConfig` fields it changes
from the defaults, where the values come from, and the accuracy the recipe reached with this
package (seeds, epochs, backend and time on the machine it was measured on).
``spide-brian train --recipe NAME`` starts from it; any config flag given as well overrides
that one value; ``spide-brian info --recipes`` lists them.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from .config import ConfigError, SPIDEConfig

__all__ = ["Recipe", "RECIPES", "get_recipe"]


@dataclass(frozen=True)
class Recipe:
    """A named, documented training setup.

    Parameters
    ----------
    name : str
        What ``--recipe`` takes.
    dataset : str
        Dataset it is for (``--dataset`` may still name another).
    summary : str
        One line: the network and the method's settings.
    source : str
        Where the values come from.
    reached : str
        The accuracy it reached with this package, and how (seeds, epochs, backend, time).
    values : dict
        Config fields that differ from the :class:`SPIDEConfig` defaults.
    published : str, optional
        The published figure for this network, where one exists.
    """

    name: str
    dataset: str
    summary: str
    source: str
    reached: str
    values: dict = field(default_factory=dict)
    published: Optional[str] = None

    def config(self) -> SPIDEConfig:
        """The recipe's configuration (validated)."""
        return SPIDEConfig().replace(**self.values)


RECIPES = {recipe.name: recipe for recipe in (
    Recipe(
        name="digits-f400",
        dataset="digits",
        summary="64 inputs -> 400 IF neurons with 400 x 400 feedback, T = 30, T_b = 100, "
                "S = 100, lr 0.05, batch 128, 20 epochs (the package defaults)",
        source="the method's F400 network and optimiser settings (docs/method.md), on the "
               "embedded 8 x 8 digits",
        reached="0.9056 test accuracy after 20 epochs, seed 0 (both backends; the Brian2 "
                "model on cpp_standalone is spike-for-spike the reference)"),
)}


def get_recipe(name) -> Recipe:
    """The recipe called ``name``; a :class:`ConfigError` lists the known ones otherwise."""
    if name not in RECIPES:
        raise ConfigError(f"recipe must be one of {', '.join(sorted(RECIPES))}; got {name!r}")
    return RECIPES[name]
