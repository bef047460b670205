"""pip-installable ROS-free part of pare_ros: the PARE core library and the training package.

The ROS 2 node and messages are built by colcon from the same tree (package.xml, CMakeLists.txt);
``pip install .`` gives the library and command-line tools to people who only want those.
"""
from setuptools import find_packages, setup

setup(
    name="pare_ros",
    version="0.1.0",
    description="PARE (Part Attention Regressor) 3D human body estimation: ROS-free core, "
    "training and the pare_ros ROS 2 node",
    license="MIT",
    python_requires=">=3.10",
    packages=find_packages(include=["pare_ros", "pare_ros.*"], exclude=["pare_ros.ros", "pare_ros.ros.*"])
    + find_packages(where="training", include=["pare_training", "pare_training.*"]),
    package_dir={"pare_training": "training/pare_training"},
    # The manifest of model files users bring (pare_ros.model_files finds it under
    # <prefix>/share/pare_ros/model when installed this way).
    data_files=[("share/pare_ros/model", ["model/manifest.yaml", "model/README.md"])],
    install_requires=[
        "torch>=2.4",
        "numpy>=1.24",
        "scipy>=1.10",
        "smplx>=0.1.28",
        "opencv-python-headless>=4.8,<5",
        "pyyaml",
        "tqdm",
        "threadpoolctl>=3.1",
    ],
    extras_require={
        "onnx": ["onnx>=1.15", "onnxruntime>=1.17"],
        "bags": ["rosbags>=0.10"],
        "train": ["tensorboard", "scikit-image"],
        "test": ["pytest", "pytest-timeout", "scikit-image", "motmetrics", "onnx", "onnxruntime"],
    },
    entry_points={
        "console_scripts": [
            "pare-ros=pare_ros.cli:main",
        ]
    },
)
