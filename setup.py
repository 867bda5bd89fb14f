"""Build script: the package plus the private C++ extension ``simplepose._grouping``.

``pip install -e .`` compiles ``csrc/src/*.cpp`` with pybind11 (C++17); nothing else is
needed. ``DEBUG=1 pip install -e .`` builds with ``-g -Og`` for gdb/valgrind.
"""

import os
from glob import glob
from pathlib import Path

from pybind11.setup_helpers import Pybind11Extension, build_ext
from setuptools import find_packages, setup

debug = os.environ.get("DEBUG", "0") == "1"
extra_compile_args = ["-g", "-Og"] if debug else ["-O3"]

ext_modules = [
    Pybind11Extension(
        "simplepose._grouping",
        sorted(glob("csrc/src/*.cpp")),  # sorted: reproducible builds
        include_dirs=["csrc/include"],
        cxx_std=17,
        extra_compile_args=extra_compile_args,
    )
]

setup(
    name="simplepose",
    version="0.1.0",
    description=(
        "Multi-person 2D pose estimation: SimplePose (bottom-up) and CPN/MSPN/RSN (top-down)"
    ),
    long_description=Path("README.md").read_text(encoding="utf-8")
    if Path("README.md").exists()
    else "",
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.10",  # zip(strict=), itertools.pairwise
    packages=find_packages(include=["simplepose", "simplepose.*"]),
    package_data={"simplepose": ["weights/*.safetensors", "weights/*.onnx", "weights/NOTICE"]},
    ext_modules=ext_modules,
    cmdclass={"build_ext": build_ext},
    install_requires=[
        "numpy>=1.23",
        "opencv-python-headless>=4.6",
        "pycocotools>=2.0.6",
        "numba>=0.58",
        "torch>=2.1",
        "safetensors>=0.4",
        "onnxruntime>=1.16",
        "tqdm>=4.60",
        "pyyaml>=6.0",
        "matplotlib>=3.6",
        "scipy>=1.9",  # MPII gt_valid.mat (scipy.io.loadmat); tracking's linear_sum_assignment
        "imageio-ffmpeg>=0.4.9",  # its ffmpeg binary writes the demo's H.264 videos
    ],
    # trackeval (test and bench extras only) requires the GUI wheel opencv-python; it and
    # opencv-python-headless both install the same cv2 package, so with these extras cv2 is
    # whichever was installed last (README, "Install"). The base install stays headless.
    extras_require={
        "test": [
            "pytest>=7",
            "hypothesis>=6.80",
            "trackeval>=1.0",
            "ruff==0.17.6",
            "onnx>=1.16",
            "onnxscript>=0.5",
        ],
        # bench/video.py's tracking metrics
        "bench": ["trackeval>=1.0"],
        # `simplepose export` (torch.onnx dynamo exporter); ONNX Runtime inference needs neither
        "export": ["onnx>=1.16", "onnxscript>=0.5"],
        # optional backend measured by bench/backends.py
        "openvino": ["openvino>=2024.0"],
    },
    entry_points={"console_scripts": ["simplepose = simplepose.cli:main"]},
    zip_safe=False,
)
