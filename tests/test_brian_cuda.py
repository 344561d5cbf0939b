"""The brian2cuda construction of the model (device ``cuda_standalone``).

* runtime (numpy target) with cuda_standalone's row of the capability table: the route the
  row selects reproduces the numpy reference exactly, with the criteria of
  ``test_brian_model.py``;
* ``cuda_codegen``: brian2cuda generates the CUDA project of a one-layer feedback net's
  training run and nvcc compiles it (needs brian2cuda, nvcc and cuRAND, not a GPU);
* the trainer on cuda_standalone without a GPU stops with one line naming the project.
"""
import dataclasses
import shutil
from pathlib import Path

import pytest
from brian2 import Network, device, prefs, set_device

from spide_brian.devices.cuda import (CUDARunError, CUDASetupError, configure_brian2cuda,
                              find_curand, has_curand, nvcc_release, run_on_cuda)
from spide_brian.devices import capabilities
from spide_brian.devices import adapter_for
from spide_brian.network import SPIDENetwork
from spide_brian.schedule import SampleTables

from test_brian_model import (CAPACITY, N_CLASSES, N_INPUTS, STRUCTURES,
                              assert_matches_reference, make_case, run_runtime)


def cuda_rules_on_numpy():
    """cuda_standalone's row of the capability table on the numpy target."""
    return dataclasses.replace(capabilities("cuda_standalone"), name="numpy",
                               standalone=False, codegen_target="numpy")


@pytest.fixture
def cuda_stack():
    """Skip without brian2cuda, nvcc or cuRAND; restore Brian2's preferences and device.

    brian2cuda is imported before the preferences are saved: it registers its own."""
    pytest.importorskip("brian2cuda", reason="needs the cuda stack (brian2 2.5.4, brian2cuda)")
    if shutil.which("nvcc") is None:
        pytest.skip("no nvcc on PATH (the CUDA toolkit is needed to compile)")
    if not has_curand():
        pytest.skip("no cuRAND (pip install nvidia-curand)")
    prefs._backup()
    try:
        yield
    finally:
        device.reinit()
        set_device("runtime")
        prefs._restore()


@pytest.mark.parametrize("structure", sorted(STRUCTURES))
def test_cuda_rules_runtime_match_reference(structure):
    config, params, x, y = make_case(STRUCTURES[structure], 0.9, "modified")
    caps = cuda_rules_on_numpy()
    model = run_runtime(config, params, x, y, caps=caps)
    assert (model.batch_dt is not None) == caps.batch_clock_update
    trained, buffers = model.read_parameters()
    assert_matches_reference(config, params, x, y, model.per_sample(len(x)), trained, buffers)
    assert all(v == 0.0 for v in model.copy_mismatch().values())


def test_info_says_why_cuda_is_not_usable():
    missing = adapter_for("cuda_standalone").missing()
    try:
        import brian2cuda  # noqa: F401
    except ImportError:
        assert any("brian2cuda" in reason for reason in missing)
    if shutil.which("nvcc") is None:
        assert any("nvcc" in reason for reason in missing)
    if shutil.which("nvidia-smi") is None:
        assert any("no GPU" in reason for reason in missing)


def test_curand_of_the_wheel_gets_a_linkable_name(tmp_path):
    curand = find_curand(link_folder=tmp_path)
    if curand is None:
        pytest.skip("no cuRAND here (pip install nvidia-curand)")
    if not curand:
        pytest.skip("the CUDA toolkit has cuRAND; nothing to link")
    links = [Path(folder, "libcurand.so") for folder in curand["library_dirs"]]
    assert any(link.exists() for link in links), "no libcurand.so for the linker"
    assert any(Path(folder, "curand.h").is_file() for folder in curand["include_dirs"])
    assert any(any(Path(folder).glob("libcurand.so.*"))
               for folder in curand["runtime_library_dirs"])


def test_missing_brian2cuda_is_a_clear_error():
    try:
        import brian2cuda  # noqa: F401
    except ImportError:
        with pytest.raises(CUDASetupError, match=r"spide-brian\[cuda\]"):
            configure_brian2cuda()
    else:
        pytest.skip("brian2cuda is installed")


class _ProgramWithoutGPU:
    """Stands for a Network whose built CUDA program failed to start."""

    def __init__(self, directory, output):
        self.directory, self.output = directory, output

    def run(self, duration, namespace=None):
        results = self.directory / "results"
        results.mkdir(parents=True)
        (results / "stdout.txt").write_text(self.output)
        raise RuntimeError(f"Project run failed (project directory: {self.directory})")


@pytest.mark.parametrize("output,gpu,reason", [
    ("", False, "no GPU here"),
    ("CUDA error: out of memory\n", True, "CUDA error: out of memory"),
], ids=["no-gpu", "gpu-error"])
def test_a_program_that_cannot_run_is_one_line(tmp_path, monkeypatch, output, gpu, reason):
    monkeypatch.setattr("spide_brian.devices.cuda.gpu_present", lambda: gpu)
    with pytest.raises(CUDARunError) as error:
        run_on_cuda(_ProgramWithoutGPU(tmp_path, output), 1, tmp_path)
    message = str(error.value)
    assert "\n" not in message and str(tmp_path) in message
    assert reason in message and "NVIDIA GPU" in message


@pytest.mark.cuda_codegen
def test_cuda_project_compiles(tmp_path, cuda_stack):
    """Generate and compile (no run) the CUDA program of a one-layer training run."""
    configure_brian2cuda()
    assert prefs.devices.cuda_standalone.cuda_backend.cuda_runtime_version == nvcc_release()
    directory = tmp_path / "cuda"
    set_device("cuda_standalone", directory=str(directory), build_on_run=False)
    config, params, x, y = make_case(STRUCTURES["one_layer"], 1.0, "modified")
    tables = SampleTables.build(x, y, CAPACITY, config)
    caps = capabilities("cuda_standalone")
    model = SPIDENetwork(config, N_INPUTS, N_CLASSES, CAPACITY, device=caps, tables=tables)
    model.assign(params)
    Network(*model.objects).run(model.run_duration, namespace={})
    device.build(directory=str(directory), compile=True, run=False, with_output=False)
    assert (directory / "main").is_file(), f"no program in {directory}"
    objects = {path.stem for path in (directory / "code_objects").glob("*.o")}
    for name in ("spide_layer0_run_regularly_every_step_codeobject",
                 "spide_feedback_weight_copy0_pre_codeobject",
                 "spide_readout_weight_copy1_run_regularly_update_codeobject"):
        assert name in objects
