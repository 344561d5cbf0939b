"""The Brian2 trainer records what it computes and says when it discards a program."""
import pytest

from spide_brian.brian_backend import BrianTrainer, StandaloneProgram
from spide_brian.config import SPIDEConfig
from spide_brian.parameters import init_parameters


def test_timing_is_recorded_as_the_model_computes_it():
    config = SPIDEConfig(hidden_sizes=(6,), time_step=4, time_step_back=4)
    assert config.timing == "reference"        # the default; one layer: the same network
    trainer = BrianTrainer(config, init_parameters(config, 5, 3), device="numpy")
    assert trainer.config.timing == "brian"


def test_deeper_reference_timing_network_is_refused():
    config = SPIDEConfig(hidden_sizes=(6, 4), time_step=4, time_step_back=4)
    with pytest.raises(ValueError, match="timing 'brian'.*replace\\(timing='brian'\\)"):
        BrianTrainer(config, init_parameters(config, 5, 3), device="numpy")
    ok = BrianTrainer(config.replace(timing="brian"), init_parameters(config, 5, 3),
                      device="numpy")
    assert ok.config.timing == "brian"


class _Owner:
    """A trainer as the program slot sees it."""

    def __init__(self, slot):
        self.slot, self.model, self.messages, self.closed = slot, None, [], 0

    def _say(self, message):
        self.messages.append(message)

    def close(self):
        self.closed += 1
        self.slot.release(self)


def test_a_second_trainer_taking_the_program_tells_both():
    slot = StandaloneProgram()
    first, second = _Owner(slot), _Owner(slot)
    slot.take(first)
    assert slot.held_by(first) and not first.messages
    slot.take(first)                             # the same trainer again: nothing to tell
    assert first.closed == 0 and not first.messages
    slot.take(second)
    assert slot.held_by(second) and not slot.held_by(first)
    assert first.closed == 1
    assert "compiles again when it is next used" in first.messages[0]
    assert "close trainers you are done with" in second.messages[0]
    slot.release(first)                          # a released trainer cannot free another's
    assert slot.held_by(second)
    slot.release(second)
    assert slot.trainer is None


def test_a_runtime_trainer_frees_the_device_of_a_standalone_program():
    """A numpy/cython trainer runs on Brian2's runtime device: a standalone program another
    trainer holds is discarded first (that trainer is told), or the runtime run would be
    declared into the standalone project."""
    from brian2 import get_device, set_device

    slot = StandaloneProgram()
    standalone, runtime = _Owner(slot), _Owner(slot)
    slot.leave_for_runtime(runtime)              # nothing held: nothing to do
    assert not runtime.messages and slot.trainer is None
    slot.take(standalone)
    set_device("cpp_standalone", build_on_run=False)
    try:
        slot.leave_for_runtime(runtime)
        assert standalone.closed == 1 and slot.trainer is None
        assert "trainer on a runtime target runs now" in standalone.messages[0]
        assert get_device().__class__.__name__ == "RuntimeDevice"
    finally:
        set_device("runtime")


def test_samples_per_run_simulates_the_fewest_slots():
    from spide_brian.brian_backend import samples_per_run

    # digits: 4 training runs and 1 test run of 384 slots (1920 + 5 R) beat 2 runs of 1536
    assert samples_per_run(1437, 360, 128) == 384
    # every choice is a whole number of mini-batches within the limit, and no other such
    # capacity simulates fewer slots
    for n_train, n_test, batch in [(1437, 360, 128), (60000, 10000, 128), (100, 900, 32),
                                   (7, 0, 3)]:
        chosen = samples_per_run(n_train, n_test, batch, max_capacity=2000, run_overhead=32)
        assert chosen % batch == 0 and chosen <= 2000 + batch

        def slots(c):
            return (-(-n_train // c) + -(-n_test // c)) * (c + 32)

        assert all(slots(chosen) <= slots(c) for c in range(batch, 2000 + batch, batch))
    # without a cost per run, the smallest padding wins; with a large one, one run
    assert samples_per_run(1000, 1000, 100, run_overhead=0) == 1000
    assert samples_per_run(1437, 360, 128, run_overhead=10 ** 6) == 1536
