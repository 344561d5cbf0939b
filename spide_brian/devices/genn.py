"""brian2genn (device ``genn``): running a generated GeNN project, and its known failure.

Without a GeNN installation brian2genn still generates the whole GeNN project (every
restriction check fires while it does) and then stops; :func:`run_on_genn` turns that stop
into :class:`GeNNNotFoundError`, one line naming the generated project and the fix.
"""
from __future__ import annotations

__all__ = ["GeNNNotFoundError", "run_on_genn"]


class GeNNNotFoundError(RuntimeError):
    """brian2genn generated the GeNN project but found no GeNN installation to build it."""


def run_on_genn(network, duration, directory):
    """Run ``network`` under the (already selected) genn device.

    brian2genn generates the whole GeNN project (every restriction check fires during that
    step) and then looks for GeNN; without it the stop is turned into
    :class:`GeNNNotFoundError`, which names the generated project.
    """
    try:
        network.run(duration, namespace={})
    except RuntimeError as error:
        if "GeNN's bin directory" in str(error):
            raise GeNNNotFoundError(
                f"the GeNN project was generated in {directory}, but GeNN itself was not "
                "found: set GENN_PATH to a GeNN 4.x source tree (its bin/ holds "
                "genn-buildmodel.sh) or pass genn_path to build and run it") from error
        raise
