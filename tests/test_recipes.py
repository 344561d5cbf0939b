"""Named recipes: the values they set, flags that override them, and clear errors."""

from spide_brian import recipes
from spide_brian.checkpoint import load_checkpoint
from spide_brian.cli import main
from spide_brian.config import SPIDEConfig

FAST = ["--backend", "reference", "--limit", "40", "--batch-size", "16", "--quiet",
        "--epochs", "1"]


def test_every_recipe_is_a_valid_documented_config():
    assert "digits-f400" in recipes.RECIPES
    for name, recipe in recipes.RECIPES.items():
        assert recipe.name == name and recipe.source and recipe.reached
        assert isinstance(recipe.config(), SPIDEConfig)
    assert recipes.RECIPES["digits-f400"].config() == SPIDEConfig()


def test_flags_override_single_values_of_a_recipe(tmp_path, monkeypatch):
    trial = recipes.Recipe(name="trial", dataset="digits", summary="s", source="s",
                           reached="r", values=dict(time_step=12, lr=0.1, hidden_sizes=(20,),
                                                    lr_milestones=(5,)))
    monkeypatch.setitem(recipes.RECIPES, "trial", trial)
    assert main(["train", "--recipe", "trial", *FAST, "--lr", "0.2",
                 "--out", str(tmp_path / "run")]) == 0
    saved = load_checkpoint(tmp_path / "run")
    config = saved["config"]
    assert (config.lr, config.time_step, config.hidden_sizes) == (0.2, 12, (20,))
    assert config.lr_milestones == (5,) and config.batch_size == 16
    assert saved["dataset"] == "digits"


def test_unknown_recipe_and_recipe_on_resume_are_refused(tmp_path, capsys):
    assert main(["train", "--recipe", "nope", *FAST]) == 2
    assert "--recipe must be one of digits-f400" in capsys.readouterr().err
    assert main(["train", *FAST, "--out", str(tmp_path / "run")]) == 0
    assert main(["train", "--recipe", "digits-f400", *FAST, "--out", str(tmp_path / "run"),
                 "--resume"]) == 2
    assert "drop --recipe" in capsys.readouterr().err


def test_info_lists_the_recipes(capsys):
    assert main(["info", "--recipes"]) == 0
    out = capsys.readouterr().out
    assert "digits-f400 (--dataset digits)" in out and "0.9056" in out


def test_fashion_recipe_sets_dropout_and_schedule_and_flags_override_them(tmp_path, capsys):
    config = recipes.RECIPES["fashion-mnist-f400"].config()
    assert (config.dropout, config.lr_milestones, config.epochs) == (0.2, (30, 60, 90), 100)
    assert (config.leaky, config.vth, config.time_step) == (0.95, 2.0, 5)
    assert config.couple_neuron == "if"
    assert recipes.RECIPES["fashion-mnist-f400"].dataset == "fashion-mnist"
    # on the embedded digits (no download), one short epoch with a changed dropout
    assert main(["train", "--recipe", "fashion-mnist-f400", "--dataset", "digits", *FAST,
                 "--dropout", "0.1", "--out", str(tmp_path / "run")]) == 0
    saved = load_checkpoint(tmp_path / "run")["config"]
    assert (saved.dropout, saved.lr_milestones, saved.epochs) == (0.1, (30, 60, 90), 1)
    assert main(["train", *FAST, "--dropout", "1.5"]) == 2
    assert "--dropout must be a probability in [0, 1)" in capsys.readouterr().err


def test_mnist_recipe_takes_leak_threshold_and_steps():
    config = recipes.RECIPES["mnist-f400"].config()
    assert (config.leaky, config.vth, config.time_step) == (0.95, 2.0, 5)
    assert (config.dropout, config.epochs, config.lr_milestones) == (0.2, 30, (20, 25))
