"""Every figure script runs (quick mode, Agg backend) and the numbers behind each are checked."""
import json

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

from spide_brian import figures, plotting  # noqa: E402

NAMES = ["fig1_rate_error", "fig2_beta", "fig3_training_curves", "fig4_firing_rates",
         "fig5_rasters", "fig6_energy", "fig7_biophysics"]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """Build all figures once (single-threaded BLAS: these matrices are small)."""
    out = tmp_path_factory.mktemp("figures")
    with threadpool_limits(1):
        paths = figures.build_all(out, quick=True)
    return out, paths


def _data(built, name):
    return json.loads((built[0] / f"{name}.json").read_text())


def test_build_all_writes_one_readable_png_per_script(built):
    out, paths = built
    assert [p.stem for p in paths] == NAMES
    assert [p.stem for p in figures.figure_scripts()] == NAMES
    for path in paths:
        image = plt.imread(path)
        assert image.shape[0] > 300 and image.shape[1] > 600
        assert image[..., :3].std() > 0.05  # not blank
        assert path.with_suffix(".json").exists()


def test_fig1_modified_reset_error_below_standard_at_every_step(built):
    data = _data(built, "fig1_rate_error")
    for stage in ("forward", "backward"):
        modified = np.array(data[stage]["modified"])
        standard = np.array(data[stage]["standard"])
        assert np.all(modified < standard), stage
        assert np.all(np.diff(modified) < 0) and np.all(np.diff(standard) < 0), stage
        assert np.all(modified / standard < 0.7), stage
    steps = np.array(data["steps"])
    assert np.all(np.array(data["forward"]["modified"]) <= 1.1 / (2 * steps))


def test_fig2_beta_from_spikes_tracks_the_exact_adjoint(built):
    data = _data(built, "fig2_beta")
    assert np.all(np.array(data["errors_modified"]) < np.array(data["errors_standard"]))
    assert data["errors_modified"][-1] < 0.1
    for layer, values in data["errors"].items():
        assert np.all(np.diff(values) < 0), layer
    for exact, spikes in zip(data["scatter_exact"], data["scatter_spikes"]):
        assert len(exact) > 20
        assert np.corrcoef(exact, spikes)[0, 1] > 0.9
        # every gated couple within one spike count of the exact solution
        assert np.max(np.abs(np.array(exact) - spikes)) < 1.0 / data["scatter_steps"]


def test_fig3_curves_come_from_a_learning_run(built):
    data = _data(built, "fig3_training_curves")
    assert data["epoch"] == list(range(1, 13))
    assert data["loss"][-1] < 0.5 * data["loss"][0]
    assert data["test_accuracy"][-1] > 0.75
    assert all(0 <= a <= 1 for a in data["train_accuracy"] + data["test_accuracy"])


def test_fig3_main_reads_an_existing_log(built, tmp_path, capsys):
    script = figures.load_script(figures.FIGURES_DIR / "fig3_training_curves.py")
    log = built[0] / "fig3_run" / "log.tsv"
    assert script.main(["--out", str(tmp_path), "--log", str(log)]) == 0
    assert (tmp_path / "fig3_training_curves.png").exists()
    assert json.loads((tmp_path / "fig3_training_curves.json").read_text())["log"] == str(log)
    assert "fig3_training_curves.png" in capsys.readouterr().out


def test_fig4_statistics_per_layer_and_epoch_are_consistent(built):
    data = _data(built, "fig4_firing_rates")
    forward = np.array(data["forward_rate"])
    backward = np.array(data["backward_rate"])
    assert forward.shape == backward.shape == (10, 3)
    assert np.all((forward > 0) & (forward < 1)) and np.all((backward > 0) & (backward < 1))
    shares = np.array(data["partial"]) + np.array(data["silent"]) + np.array(data["saturated"])
    np.testing.assert_allclose(shares, 1.0)
    assert data["train_accuracy"][-1] > data["train_accuracy"][0]


def test_fig4_rejects_a_log_without_layer_columns(tmp_path):
    script = figures.load_script(figures.FIGURES_DIR / "fig4_firing_rates.py")
    log = tmp_path / "log.tsv"
    log.write_text("epoch\tloss\ttrain_accuracy\ttest_accuracy\n1\t2.0\t0.3\t0.4\n")
    with pytest.raises(ValueError, match="per-layer firing columns"):
        script.compute(log=log)


def test_fig4_reads_per_layer_columns_from_a_log(tmp_path):
    from spide_brian.firing import LayerFiring, statistics_columns

    rows = []
    for epoch in (1, 2):
        layers = [LayerFiring(layer, 0.1 * epoch + layer / 100, 0.05 * epoch, 0.6, 0.3, 0.1)
                  for layer in range(2)]
        rows.append(dict(epoch=epoch, loss=1.0 / epoch, train_accuracy=0.4 * epoch,
                         **statistics_columns(layers)))
    lines = ["\t".join(rows[0])] + ["\t".join(str(v) for v in row.values()) for row in rows]
    log = tmp_path / "log.tsv"
    log.write_text("\n".join(lines) + "\n")
    script = figures.load_script(figures.FIGURES_DIR / "fig4_firing_rates.py")
    data = script.compute(log=log)
    np.testing.assert_allclose(data["forward_rate"], [[0.1, 0.11], [0.2, 0.21]])
    np.testing.assert_allclose(data["backward_rate"], [[0.05, 0.05], [0.1, 0.1]])
    assert data["train_accuracy"] == [0.4, 0.8]
    assert script.make_figure(tmp_path, data=data).exists()


def test_fig5_rasters_hold_both_stages_and_gated_couples_stay_silent(built):
    data = _data(built, "fig5_rasters")
    forward, backward = np.array(data["forward"]), np.array(data["backward"])
    neurons = sum(data["sizes"])
    assert forward.shape == (data["time_step"], neurons)
    assert backward.shape == (data["time_step_back"], neurons)
    assert set(np.unique(forward)) <= {0, 1} and set(np.unique(backward)) == {-1, 0, 1}
    counts = forward.sum(axis=0)
    closed = (counts == 0) | (counts == data["time_step"])
    assert closed.any() and not closed.all()
    assert np.all(backward[:, closed] == 0)


def test_fig6_counts_match_closed_forms_of_the_dense_network(built):
    data = _data(built, "fig6_energy")
    (n,), steps, steps_back = data["sizes"], data["time_step"], data["time_step_back"]
    snn, ann = data["operations_by_category"]["SNN training"], data["operations"]
    # dense feedback: every forward spike reaches n neurons, every ternary spike n neurons
    assert snn["accumulates/forward"] == pytest.approx(data["forward_rate"] * steps * n * n)
    assert snn["accumulates/backward"] == pytest.approx(
        data["backward_rate"] * steps_back * n * n)
    assert snn["neuron_updates"] == (steps + steps_back) * n
    ann_inference = data["operations_by_category"]["ANN inference"]
    assert ann_inference["multiply_accumulates/forward"] == n * n
    assert ann_inference["multiply_accumulates/readout"] == 10 * n
    training, inference = ann["ANN training"], ann["ANN inference"]
    assert training["multiply_accumulates"] > inference["multiply_accumulates"]
    costs = data["costs"]
    for setup, kinds in ann.items():
        total = (costs["accumulate_pj"] * kinds["accumulates"]
                 + costs["multiply_accumulate_pj"] * kinds["multiply_accumulates"]
                 + costs["neuron_update_pj"] * kinds["neuron_updates"])
        assert sum(data["energy_nj"][setup].values()) == pytest.approx(total / 1e3), setup


def test_read_log_rejects_ragged_lines(tmp_path):
    path = tmp_path / "log.tsv"
    path.write_text("epoch\tloss\n1\t0.5\n2\n")
    with pytest.raises(ValueError, match="line 3"):
        figures.read_log(path)


def test_plot_functions_use_the_given_axes_and_return_it():
    with plotting.figure_style():
        figure, axes = plotting.new_figure(3, 3)
        calls = [
            lambda ax: plotting.plot_error_vs_steps([10, 20], {"modified": [0.1, 0.05]}, ax=ax),
            lambda ax: plotting.plot_beta_scatter(np.arange(3.0), np.arange(3.0), ax=ax),
            lambda ax: plotting.plot_loss([1, 2], [1.0, 0.5], ax=ax),
            lambda ax: plotting.plot_accuracy([1, 2], {"test": [0.5, 0.6]}, ax=ax),
            lambda ax: plotting.plot_layer_rates([1, 2], [[0.1, 0.2], [0.2, 0.3]], ax=ax),
            lambda ax: plotting.plot_neuron_shares([1, 2], [0.5, 0.4], [0.3, 0.3], [0.2, 0.3],
                                                   ax=ax),
            lambda ax: plotting.plot_raster(np.eye(4, dtype=bool), ax=ax, layer_sizes=[2, 2]),
            lambda ax: plotting.plot_ternary_raster(np.diag([1, -1, 1]), ax=ax),
            lambda ax: plotting.plot_energy(["a", "b"], {"x": [1.0, 2.0]}, ax=ax),
        ]
        for call, ax in zip(calls, axes):
            assert call(ax) is ax
            assert ax.get_ylabel()
            assert ax.get_xlabel() or ax.get_xticklabels()[0].get_text()
        plt.close(figure)
    assert plotting.plot_loss([1, 2], [1.0, 0.5], color="k").get_lines()[0].get_color() == "k"
    plt.close("all")


def test_fig7_slope_gate_keeps_the_gradient_aligned_under_refractoriness(built):
    data = _data(built, "fig7_biophysics")
    binary = np.array(data["refractory_cosine"]["binary"])
    slope = np.array(data["refractory_cosine"]["slope"])
    assert data["refractory"][0] == 0 and binary[0] == slope[0] > 0.98
    assert np.all(np.diff(binary) < 0)                 # the binary gate drifts with R
    assert np.all(slope[1:] > binary[1:] + 0.02) and slope.min() > 0.95
    assert len(data["tau_m_cosine"]) == len(data["tau_m_ms"]) == len(data["tau_m_accuracy"])
    assert len(data["tau_syn_cosine"]) == len(data["tau_syn_ms"]) == len(data["tau_syn_accuracy"])
    # exponential synapses keep the delta model's fixed point: the gradient stays aligned
    assert data["tau_syn_ms"][0] == 0 and data["tau_syn_cosine"][0] == binary[0]
    assert min(data["tau_syn_cosine"]) > 0.95
    assert (len(data["conductance_cosine"]) == len(data["conductance_tau_syn_ms"])
            == len(data["conductance_accuracy"]))
    # conductances move the fixed point and its slopes: the 0/1 gate aligns less well with
    # the conductance network's own gradient than with the current-based one's
    assert all(0.0 < c < binary[0] for c in data["conductance_cosine"])
    # one integration step is the SPIDE map: the point of the tau_m sweep at the same tau_m
    steps = data["integration_steps"]
    assert steps[0] == 1 and len(data["integration_cosine"]) == len(steps)
    same = data["tau_m_ms"].index(data["integration_tau_m_ms"])
    assert data["integration_cosine"][0] == data["tau_m_cosine"][same]
    assert data["integration_accuracy"][0] == data["tau_m_accuracy"][same]
    assert min(data["integration_cosine"]) > 0.9
    for accuracies in [*data["refractory_accuracy"].values(), data["tau_m_accuracy"],
                       data["tau_syn_accuracy"], data["conductance_accuracy"],
                       data["integration_accuracy"]]:
        assert all(0.3 < a <= 1.0 for a in accuracies)   # every run learnt (10 classes)
