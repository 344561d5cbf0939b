"""spide-brian: SPIDE training of feedback spiking neural networks as Brian2 models.

Forward IF/LIF neurons settle at an equilibrium of firing rates, ternary neuron couples solve
the implicit-differentiation system with spikes, and each synapse updates its weight from the
two stages' average firing rates (Xiao et al., Neural Networks 2023, doi
10.1016/j.neunet.2023.01.026).
"""
__version__ = "0.1.0"

from .config import ConfigError, SPIDEConfig  # noqa: E402
from .datasets import Dataset, load_dataset  # noqa: E402
from .parameters import init_parameters  # noqa: E402

__all__ = ["SPIDEConfig", "ConfigError", "Dataset", "load_dataset", "init_parameters",
           "__version__"]
