"""spide-brian: SPIDE training of feedback spiking neural networks as Brian2 models."""
from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).resolve().parent
setup(
    name="spide-brian",
    version="0.1.0",
    description="SPIDE: spike-based training of feedback spiking neural networks in Brian2",
    long_description=(HERE / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    python_requires=">=3.9",
    # equations/ (the model as text) and figures/ (one script per figure) are installed inside
    # the package as spide_brian/equations_data and spide_brian/figure_scripts
    packages=find_packages(include=["spide_brian", "spide_brian.*"])
    + ["spide_brian.equations_data", "spide_brian.figure_scripts"],
    package_dir={"spide_brian.equations_data": "equations",
                 "spide_brian.figure_scripts": "figures"},
    package_data={"spide_brian.equations_data": ["*"], "spide_brian.figure_scripts": ["*"]},
    install_requires=[
        "brian2>=2.5.4",
        "numpy<2.4",
        "scipy",
        "scikit-learn",
        "tqdm",
        "matplotlib",
        "dask[distributed]",
    ],
    extras_require={
        "test": ["pytest>=7", "pytest-xdist>=3"],
        "dvs": ["tonic>=1.4", "aedat"],
        "genn": ["brian2==2.5.4", "brian2genn==1.7.0", "numpy<2", "cython<3.1"],
        "cuda": ["brian2==2.5.4", "brian2cuda==1.0a3", "numpy<2", "cython<3.1"],
    },
    entry_points={"console_scripts": ["spide-brian=spide_brian.cli:main"]},
)
