"""The model shaped for evaluation (spide_brian.evaluation): the same test results as the
training model with learning off, in short slots and runs sized for the test set; on a
compiled device, a worker process of its own."""
import numpy as np
import pytest

from spide_brian import reference as ref
from spide_brian.brian_backend import BrianTrainer
from spide_brian.evaluation import (EVALUATION_BACKWARD_STEPS, EvaluationFailed,
                                    WorkerEvaluation, evaluation_config)
from spide_brian.schedule import SlotSchedule
from spide_brian.training import batch_major

from test_brian_model import STRUCTURES, make_case, make_frame_case


def _evaluations(config, params, x, y, **options):
    """``evaluate`` of a numpy-target trainer with the evaluation model and with the
    training model (learning off), after one training epoch."""
    results = []
    for shaped in (True, False):
        trainer = BrianTrainer(config, params, device="numpy", shaped_evaluation=shaped,
                               **options)
        trainer.train_epoch(x, y)
        results.append((trainer.evaluate(x, y), trainer.last_records, trainer))
    return results


def test_evaluation_config_keeps_the_forward_stage():
    config, _, _, _ = make_case(STRUCTURES["chain"], 0.9, "modified")
    config = config.replace(dropout=0.2, time_step_back=250)
    shaped = evaluation_config(config)
    assert shaped.time_step_back == EVALUATION_BACKWARD_STEPS and shaped.dropout == 0.0
    assert shaped.replace(time_step_back=250, dropout=0.2) == config
    assert SlotSchedule.from_config(shaped).slot_length == config.time_step + 8
    assert SlotSchedule.from_config(config).forward_start == \
        SlotSchedule.from_config(shaped).forward_start


@pytest.mark.parametrize("structure", ["one_layer", "chain"])
def test_shaped_evaluation_equals_the_training_model(structure):
    """Spike counts, probabilities and every total equal bitwise; predictions equal the
    reference's; the evaluation model has short slots and a capacity of its own."""
    config, params, x, y = make_case(STRUCTURES[structure], 0.9, "modified")
    (shaped, shaped_records, trainer), (plain, plain_records, _) = _evaluations(
        config.replace(dropout=0.25), params, x, y)
    for key in ("correct", "samples", "forward_spikes", "loss_sum"):
        assert shaped[key] == plain[key]
    np.testing.assert_array_equal(shaped["predictions"], plain["predictions"])
    np.testing.assert_array_equal(shaped_records["prob"], plain_records["prob"])
    for mine, theirs in zip(shaped_records["forward_counts"], plain_records["forward_counts"]):
        np.testing.assert_array_equal(mine, theirs)
    assert shaped_records["forward_counts"][0].sum() > 0
    logits, _ = ref.predict(trainer.params, config, x)
    np.testing.assert_array_equal(shaped["predictions"], np.argmax(logits, axis=1))
    model = trainer._evaluation._trainer.model
    assert model.schedule.slot_length == config.time_step + 8
    assert model.capacity == trainer.evaluation_capacity == 9     # 8 samples, batches of 3
    # forward-only: no couples, one forward copy per weight, no learning code, zero
    # backward counts; the training model has all of them
    assert not model.learning and trainer.model.learning
    assert model.positives == model.negatives == [None] * len(model.layers)
    names = [obj.name for obj in model.objects]
    assert not [name for name in names if any(part in name for part in (
        "_accumulate", "_learning", "_update", "_gather"))
                or "_positive" in name or "_negative" in name]
    assert [name for name in (obj.name for obj in trainer.model.objects)
            if "_positive" in name]
    for name, copies in model.copies.items():
        assert len(copies) <= len(trainer.model.copies[name])
        assert not [copy for copy in copies if copy.transposed]
    for counts in shaped_records["backward_counts"]:
        assert not counts.any()


def test_shaped_evaluation_of_frames_and_chunks():
    """Event frames, and a test set longer than the evaluation capacity (three runs of 3)."""
    config, params, frames, y = make_frame_case(STRUCTURES["one_layer"], 0.9, "modified")
    (shaped, records, trainer), (plain, _, _) = _evaluations(config, params, frames, y,
                                                             evaluation_capacity=2)
    assert trainer.evaluation_capacity == 3      # whole mini-batches
    assert shaped["forward_spikes"] == plain["forward_spikes"] > 0
    assert shaped["loss_sum"] == plain["loss_sum"]
    np.testing.assert_array_equal(shaped["predictions"], plain["predictions"])
    assert len(records["prob"]) == 2            # the last run's two samples
    logits, _ = ref.predict(trainer.params, config, batch_major(frames))
    np.testing.assert_array_equal(shaped["predictions"], np.argmax(logits, axis=1))


def test_default_shaping_by_device():
    config, params, _, _ = make_case(STRUCTURES["one_layer"], 1.0, "modified")
    assert BrianTrainer(config, params, device="numpy").shaped_evaluation
    assert BrianTrainer(config, params, device="cpp_standalone").shaped_evaluation == \
        BrianTrainer(config, params, device="cpp_standalone").reruns
    assert not BrianTrainer(config, params, device="numpy",
                            shaped_evaluation=False).shaped_evaluation


def test_a_failing_worker_says_why():
    """A worker whose model cannot be made answers with the reason; nothing is left
    running."""
    config, params, x, y = make_case(STRUCTURES["one_layer"], 1.0, "modified")
    settings = dict(trainer_class=BrianTrainer, config=evaluation_config(config),
                    params=params, device="cpp_standalone",
                    n_inputs=N_WRONG, n_classes=3, capacity=3, frame_input=False,
                    build_dir=None)
    worker = WorkerEvaluation(settings)
    with pytest.raises(EvaluationFailed, match="input_weight"):
        worker.records(params, x[:3], y[:3])
    assert worker._process is None


#: An input size that does not fit the case's input weights.
N_WRONG = 7


def test_forward_only_trainer_refuses_to_train():
    config, params, x, y = make_case(STRUCTURES["one_layer"], 1.0, "modified")
    trainer = BrianTrainer(config, params, device="numpy", learning=False,
                           shaped_evaluation=False)
    with pytest.raises(RuntimeError, match="forward-only"):
        trainer.train_epoch(x, y)
    logits, _ = ref.predict(trainer.params, config, x)
    np.testing.assert_array_equal(trainer.evaluate(x, y)["predictions"],
                                  np.argmax(logits, axis=1))
