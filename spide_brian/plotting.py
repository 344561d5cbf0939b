"""Plot functions for the SPIDE figures, and the shared figure style.

Every function takes data (plain arrays), an optional ``ax`` (a new figure is made if it is
None), forwards ``**kwargs`` to the main matplotlib call and returns the ``Axes``. The figure
scripts in ``figures/`` compose these functions inside :func:`figure_style`.
"""
from __future__ import annotations

import contextlib
import json
from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import MaxNLocator, NullFormatter

__all__ = ["STYLE", "COLORS", "LAYER_COLORS", "figure_style", "new_figure", "save_figure",
           "render_figure",
           "plot_error_vs_steps", "plot_beta_scatter", "plot_loss", "plot_accuracy",
           "plot_layer_rates", "plot_neuron_shares", "plot_raster", "plot_ternary_raster",
           "plot_operations", "plot_energy", "plot_sweep"]

#: rcParams of every figure: readable type at print size, light grid, no top/right spines.
STYLE = {
    "figure.dpi": 100,
    "savefig.dpi": 150,
    "savefig.bbox": "tight",
    "font.size": 10,
    "axes.titlesize": 11,
    "axes.titleweight": "bold",
    "axes.labelsize": 10,
    "legend.fontsize": 8.5,
    "legend.frameon": False,
    "xtick.labelsize": 9,
    "ytick.labelsize": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "grid.linewidth": 0.6,
    "lines.linewidth": 1.6,
    "lines.markersize": 5,
    "figure.constrained_layout.use": True,
}

#: Colours by meaning, shared by all figures (colour-blind safe, Okabe-Ito).
COLORS = {
    "modified": "#0072B2", "standard": "#D55E00", "positive": "#D55E00",
    "negative": "#0072B2", "forward": "#000000", "train": "#0072B2", "test": "#D55E00",
    "snn": "#0072B2", "ann": "#999999", "partial": "#009E73", "silent": "#BBBBBB",
    "saturated": "#E69F00",
}
_CYCLE = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000"]
#: Colours of layers 0, 1, 2 ... in every figure (distinct from the reset colours).
LAYER_COLORS = ["#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#999999"]


def _layer_color(layer):
    return LAYER_COLORS[layer % len(LAYER_COLORS)]


@contextlib.contextmanager
def figure_style():
    """Context in which the shared :data:`STYLE` applies."""
    with matplotlib.rc_context(STYLE):
        yield


def new_figure(n_columns=1, n_rows=1, width=4.2, height=3.3, **kwargs):
    """A figure with a grid of axes, each panel ``width x height`` inches; returns (fig, axes)."""
    figure, axes = plt.subplots(n_rows, n_columns, figsize=(width * n_columns, height * n_rows),
                                squeeze=False, **kwargs)
    return figure, axes.ravel()


def render_figure(draw, data, path):
    """Draw ``data`` with ``draw(data) -> Figure`` in the shared style and save it (and its data
    as JSON) to ``path``; returns the path."""
    with figure_style():
        return save_figure(draw(data), path, data)


def save_figure(figure, path, data=None):
    """Write ``figure`` to ``path`` (format from the suffix) and close it.

    If ``data`` is given, the numbers behind the figure go to a JSON file of the same name,
    with arrays as nested lists.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    plt.close(figure)
    if data is not None:
        path.with_suffix(".json").write_text(json.dumps(_plain(data), indent=1) + "\n",
                                             encoding="utf-8")
    return path


def _plain(value):
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return _plain(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def _axes(ax):
    return plt.subplots()[1] if ax is None else ax


def plot_error_vs_steps(steps, errors, ax=None, ylabel="error", xlabel="time steps",
                        title=None, bound=None, **kwargs):
    """Errors against the number of time steps on log-log axes, one line per entry.

    Parameters
    ----------
    steps : array_like
        Numbers of time steps (``T`` or ``T_b``).
    errors : dict of str -> array_like
        Line label -> error at each entry of ``steps``. Labels starting with ``'modified'``
        or ``'standard'`` get the reset colours; other lines (e.g. per layer) are drawn thinner
        in the layer colours.
    bound : tuple of (str, array_like), optional
        A dashed reference curve (e.g. the rounding bound ``1/(2T)``) with its label.
    """
    ax = _axes(ax)
    others = 0
    for label, values in errors.items():
        options = dict(marker="o")
        if label.split()[0] in COLORS:
            options["color"] = COLORS[label.split()[0]]
        else:
            options.update(color=_layer_color(others), marker="s", markersize=3.5,
                           linewidth=1.0)
            others += 1
        options.update(kwargs)
        ax.loglog(steps, values, label=label, **options)
    if bound is not None:
        ax.loglog(steps, bound[1], linestyle="--", color="0.4", linewidth=1.0, label=bound[0])
    ax.set_xticks(steps)
    ax.set_xticklabels([f"{s:g}" for s in steps])
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.legend()
    if title:
        ax.set_title(title)
    return ax


def plot_sweep(values, series, ax=None, xlabel="value", ylabel="", title=None,
               ylim=None, **kwargs):
    """One measured quantity against a swept parameter, one line per series (e.g. a gate).

    Parameters
    ----------
    values : array_like
        The swept parameter's values (linear axis; give a finite stand-in for infinity).
    series : dict of str -> array_like
        Line label -> the quantity at each of ``values``.
    """
    ax = _axes(ax)
    for index, (label, measured) in enumerate(series.items()):
        options = dict(marker="o", color=_CYCLE[index % len(_CYCLE)])
        options.update(kwargs)
        ax.plot(values, measured, label=label, **options)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if ylim is not None:
        ax.set_ylim(*ylim)
    ax.legend()
    if title:
        ax.set_title(title)
    return ax


def plot_beta_scatter(exact, spiking, ax=None, labels=None, title=None, **kwargs):
    """Spike-based ``beta`` against the exact adjoint, with the identity line.

    Parameters
    ----------
    exact, spiking : array_like or list of array_like
        Matching values (one array, or one per group such as a layer).
    labels : list of str, optional
        Legend entry per group.
    """
    ax = _axes(ax)
    if not isinstance(exact, (list, tuple)):
        exact, spiking = [exact], [spiking]
    labels = labels or [None] * len(exact)
    low = min(float(np.min(np.r_[e, s])) for e, s in zip(exact, spiking))
    high = max(float(np.max(np.r_[e, s])) for e, s in zip(exact, spiking))
    ax.plot([low, high], [low, high], color="0.3", linestyle="--", linewidth=1.0,
            label="identity", zorder=1)
    options = dict(s=6, alpha=0.5, linewidths=0)
    options.update(kwargs)
    for index, (e, s, label) in enumerate(zip(exact, spiking, labels)):
        ax.scatter(e, s, color=_layer_color(index), label=label, **options)
    ax.set_xlabel(r"exact adjoint $\beta^* = (I-J^\top)^{-1} g$ (spikes / step)")
    ax.set_ylabel(r"$\beta$ from ternary spikes (spikes / step)")
    ax.set_aspect("equal", adjustable="datalim")
    ax.legend(markerscale=2)
    if title:
        ax.set_title(title)
    return ax


def _epoch_axis(ax):
    """Label the x axis as training epochs, with integer ticks."""
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def plot_loss(epochs, loss, ax=None, title="Training loss", **kwargs):
    """Mean training cross-entropy per epoch."""
    ax = _axes(ax)
    options = dict(marker="o", color=COLORS["train"], label="train")
    options.update(kwargs)
    ax.plot(epochs, loss, **options)
    _epoch_axis(ax)
    ax.set_ylabel("cross-entropy loss (nats)")
    ax.legend()
    ax.set_title(title)
    return ax


def plot_accuracy(epochs, accuracies, ax=None, title="Accuracy", **kwargs):
    """Accuracy curves in percent.

    Parameters
    ----------
    accuracies : dict of str -> array_like
        Label (``'train'``, ``'test'`` ...) -> accuracy in ``[0, 1]`` per epoch.
    """
    ax = _axes(ax)
    for index, (label, values) in enumerate(accuracies.items()):
        color = COLORS.get(label, _CYCLE[index % len(_CYCLE)])
        ax.plot(epochs, 100 * np.asarray(values, dtype=float), marker="o", color=color,
                label=label, **kwargs)
    _epoch_axis(ax)
    ax.set_ylabel("accuracy (%)")
    ax.legend()
    ax.set_title(title)
    return ax


def plot_layer_rates(epochs, rates, ax=None, ylabel="firing rate (spikes / neuron / step)",
                     title=None, **kwargs):
    """One line per layer of a per-epoch rate.

    Parameters
    ----------
    epochs : array_like
        ``(E,)``.
    rates : array_like
        ``(E, L)``: the rate of each layer in each epoch.
    """
    ax = _axes(ax)
    rates = np.asarray(rates, dtype=float)
    for layer in range(rates.shape[1]):
        ax.plot(epochs, rates[:, layer], marker="o", color=_layer_color(layer),
                label=f"layer {layer}", **kwargs)
    _epoch_axis(ax)
    ax.set_ylabel(ylabel)
    ax.set_ylim(bottom=0)
    ax.legend()
    if title:
        ax.set_title(title)
    return ax


def plot_neuron_shares(epochs, partial, silent, saturated, ax=None, title=None, legend=True,
                       **kwargs):
    """Stacked shares (in percent) of neurons with ``0<a<1``, ``a=0`` and ``a=1`` per epoch."""
    ax = _axes(ax)
    shares = 100 * np.vstack([partial, silent, saturated]).astype(float)
    ax.stackplot(epochs, shares,
                 labels=["0 < a < 1 (gate open)", "silent (a = 0)", "saturated (a = 1)"],
                 colors=[COLORS["partial"], COLORS["silent"], COLORS["saturated"]],
                 alpha=0.85, **kwargs)
    _epoch_axis(ax)
    ax.set_ylabel("share of neurons (%)")
    ax.set_ylim(0, 100)
    ax.set_xlim(np.min(epochs), np.max(epochs))
    if legend:
        ax.legend(loc="lower left", facecolor="white", framealpha=0.8, frameon=True)
    if title:
        ax.set_title(title)
    return ax


def _layer_ticks(ax, sizes):
    edges = np.cumsum([0] + list(sizes))
    for edge in edges[1:-1]:
        ax.axhline(edge - 0.5, color="0.5", linewidth=0.8)
    ax.set_yticks((edges[:-1] + edges[1:] - 1) / 2)
    ax.set_yticklabels([f"layer {i}" for i in range(len(sizes))])
    ax.tick_params(axis="y", length=0)
    ax.set_ylim(-0.5, edges[-1] - 0.5)


def _row_marker_size(ax, rows):
    """Area (points^2) of a "|" marker slightly taller than one raster row, at most 14."""
    height_points = ax.get_window_extent().height * 72.0 / ax.figure.dpi
    return min(14.0, (1.3 * height_points / max(rows, 1)) ** 2)


def plot_raster(spikes, ax=None, layer_sizes=None, title=None, **kwargs):
    """Raster of forward spikes.

    Parameters
    ----------
    spikes : array_like
        ``(T, n)`` boolean: neuron ``j`` spiked at step ``t``.
    layer_sizes : list of int, optional
        If the neurons are several layers stacked, their sizes (adds separators and labels).
    """
    ax = _axes(ax)
    steps, neurons = np.nonzero(np.asarray(spikes))
    options = dict(marker="|", s=_row_marker_size(ax, np.shape(spikes)[1]), linewidths=0.9,
                   color=COLORS["forward"])
    options.update(kwargs)
    ax.scatter(steps, neurons, **options)
    ax.set_xlim(-0.5, np.shape(spikes)[0] - 0.5)
    ax.set_xlabel("time step")
    ax.set_ylabel("neuron")
    ax.grid(False)
    if layer_sizes is not None:
        _layer_ticks(ax, layer_sizes)
    if title:
        ax.set_title(title)
    return ax


def plot_ternary_raster(spikes, ax=None, layer_sizes=None, title=None, **kwargs):
    """Raster of ternary couples: positive spikes above, negative spikes in another colour.

    Parameters
    ----------
    spikes : array_like
        ``(T_b, n)`` integers in ``{-1, 0, 1}``.
    layer_sizes : list of int, optional
        Sizes of stacked layers (adds separators and labels).
    """
    ax = _axes(ax)
    spikes = np.asarray(spikes)
    options = dict(s=_row_marker_size(ax, spikes.shape[1]), linewidths=0.9)
    options.update(kwargs)
    for sign, name, marker in ((1, "positive", "|"), (-1, "negative", "|")):
        steps, couples = np.nonzero(spikes == sign)
        ax.scatter(steps, couples, marker=marker, color=COLORS[name],
                   label=f"{name} spike ({sign:+d})", **options)
    ax.set_xlim(-0.5, spikes.shape[0] - 0.5)
    ax.set_xlabel("backward time step")
    ax.set_ylabel("ternary couple")
    ax.grid(False)
    if layer_sizes is not None:
        _layer_ticks(ax, layer_sizes)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2, markerscale=3)
    if title:
        ax.set_title(title)
    return ax


def plot_operations(labels, stacks, ax=None, ylabel="operations per sample", title=None,
                    log=False, **kwargs):
    """Stacked bars of per-sample quantities, one bar per setup.

    Parameters
    ----------
    labels : list of str
        Bar names (e.g. ``'SNN training'``, ``'ANN training'``).
    stacks : dict of str -> array_like
        Segment name -> value for each bar (missing segments are 0).
    log : bool
        Logarithmic value axis (segments are then drawn but proportions are not to scale).
    """
    ax = _axes(ax)
    positions = np.arange(len(labels))
    bottom = np.zeros(len(labels))
    for index, (name, values) in enumerate(stacks.items()):
        values = np.asarray(values, dtype=float)
        ax.bar(positions, values, bottom=bottom, color=_CYCLE[index % len(_CYCLE)], label=name,
               width=0.65, **kwargs)
        bottom = bottom + values
    for position, total in zip(positions, bottom):
        ax.annotate(f"{total:.3g}", (position, total), ha="center", va="bottom", fontsize=8,
                    xytext=(0, 2), textcoords="offset points")
    ax.set_xticks(positions)
    ax.set_xticklabels(labels)
    ax.set_ylabel(ylabel)
    if log:
        ax.set_yscale("log")
    else:
        ax.set_ylim(0, bottom.max() * 1.12 if bottom.max() > 0 else 1)
    ax.grid(axis="x", visible=False)
    ax.legend()
    if title:
        ax.set_title(title)
    return ax


def plot_energy(labels, stacks, ax=None, unit="nJ", title=None, **kwargs):
    """Stacked bars of energy per sample (values in ``unit``), one bar per setup."""
    return plot_operations(labels, stacks, ax=ax, ylabel=f"energy per sample ({unit})",
                           title=title, **kwargs)
