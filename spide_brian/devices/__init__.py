"""The devices the Brian2 model runs on.

* :mod:`~spide_brian.devices.table`: the one capability table (what the model may use
  on each device);
* :mod:`~spide_brian.devices.adapters`: one adapter per device (what it needs here, its
  options, selecting and running a build, its errors);
* :mod:`~spide_brian.devices.processes`: compiler jobs and the lifetime of child processes;
* :mod:`~spide_brian.devices.genn` and :mod:`~spide_brian.devices.cuda`: what brian2genn and
  brian2cuda need beyond Brian2's own devices.
"""
from .adapters import (ADAPTERS, DEVICE_ERRORS, DeviceAdapter, DeviceOption,  # noqa: F401
                       adapter_for, device_options, device_status)
from .table import (CAPABILITIES, DEVICE_ALIASES, GENN_STEP_ORDER,  # noqa: F401
                    Capabilities, brian2_at_least, capabilities, check_membrane,
                    check_synapses, default_device, refused_options)
from .processes import (bound_make_jobs, tie_children_to_this_process,  # noqa: F401
                        tied_command)

__all__ = ["Capabilities", "CAPABILITIES", "capabilities", "default_device", "DEVICE_ALIASES",
           "GENN_STEP_ORDER", "brian2_at_least", "check_membrane", "check_synapses",
           "refused_options", "bound_make_jobs", "tie_children_to_this_process",
           "tied_command", "DeviceAdapter", "DeviceOption", "ADAPTERS", "adapter_for",
           "device_options", "device_status", "DEVICE_ERRORS"]
