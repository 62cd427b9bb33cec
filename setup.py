"""Installation script of PySNN."""

import re
from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent
VERSION = re.search(r'__version__ = "([^"]+)"', (HERE / "pysnn" / "__init__.py").read_text()).group(
    1
)

setup(
    name="pysnn",
    version=VERSION,
    description="Spiking neural networks on PyTorch: timestep simulation, delays, STDP learning",
    long_description=(HERE / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="MIT",
    packages=find_packages(include=["pysnn", "pysnn.*"]),
    python_requires=">=3.9",
    install_requires=["torch>=2.1", "numpy"],
    extras_require={
        "test": ["pytest", "hypothesis"],
        "dev": ["black", "ruff", "mypy", "pre-commit"],
        # scikit-learn: SklearnDigits, the tutorials' stand-in where MNIST is not installed
        "docs": [
            "sphinx",
            "furo",
            "sphinx-gallery",
            "sphinx-copybutton",
            "matplotlib",
            "scikit-learn",
        ],
        "examples": ["matplotlib", "tqdm", "gymnasium", "scikit-learn"],
        "plot": ["matplotlib"],
        "nir": ["nir"],
        # h5py: pysnn.datasets.SHD reads the Spiking Heidelberg Digits HDF5 files
        "data": ["h5py"],
    },
    classifiers=[
        "Programming Language :: Python :: 3",
        "License :: OSI Approved :: MIT License",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
    ],
)
