"""Figure 3: training curves (loss, train and test accuracy) from a training log.

Reads the ``log.tsv`` that ``spide-brian train --out DIR`` writes. Without ``--log``, it first
trains with the numpy reference on the embedded digits through that same command (quick: 100
IF neurons with feedback, 12 epochs; full: the default F400 network, 50 epochs) into
``OUT/fig3_run/`` (its printed output goes to ``OUT/fig3_run/train.out``).

Usage: ``python figures/fig3_training_curves.py [--out DIR] [--full] [--log PATH/log.tsv]``
"""
import sys
from contextlib import redirect_stdout
from pathlib import Path

from spide_brian import cli, plotting
from spide_brian.figures import figure_arguments, read_log

NAME = "fig3_training_curves"
QUICK = ["--hidden-sizes", "100", "--epochs", "12", "--batch-size", "32"]
FULL = ["--epochs", "50"]


def train_log(out_dir, quick=True):
    """Train on digits with ``spide-brian train`` and return the path of its ``log.tsv``."""
    run = Path(out_dir) / "fig3_run"
    run.mkdir(parents=True, exist_ok=True)
    with open(run / "train.out", "w", encoding="utf-8") as output, redirect_stdout(output):
        status = cli.main(["train", "--dataset", "digits", "--backend", "reference", "--quiet",
                           "--out", str(run), *(QUICK if quick else FULL)])
    if status != 0:
        raise RuntimeError(f"training for {NAME} failed with status {status}")
    return run / "log.tsv"


def compute(out_dir, quick=True, log=None):
    """Columns of the log (training first if ``log`` is None)."""
    path = Path(log) if log is not None else train_log(out_dir, quick)
    data = {name: values.tolist() for name, values in read_log(path).items()}
    data["log"] = str(path)
    return data


def draw(data):
    """Loss and accuracy panels."""
    figure, (left, right) = plotting.new_figure(2)
    plotting.plot_loss(data["epoch"], data["loss"], ax=left, title="Training loss")
    plotting.plot_accuracy(data["epoch"], {"train": data["train_accuracy"],
                                           "test": data["test_accuracy"]}, ax=right,
                           title="Accuracy")
    figure.suptitle(f"SPIDE training, final test accuracy {100 * data['test_accuracy'][-1]:.1f} %",
                    fontsize=11)
    return figure


def make_figure(out_dir, quick=True, data=None, log=None):
    """Read (or train and read) the log, draw and save; returns the PNG path."""
    data = compute(out_dir, quick, log) if data is None else data
    return plotting.render_figure(draw, data, f"{out_dir}/{NAME}.png")


def main(argv=None):
    args = figure_arguments(__doc__, argv, lambda parser: parser.add_argument(
        "--log", default=None, help="log.tsv of a training run (default: train one first)"))
    print(make_figure(args.out, quick=not args.full, log=args.log))
    return 0


if __name__ == "__main__":
    sys.exit(main())
