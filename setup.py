from setuptools import find_packages, setup

# torch is pinned: 2.13.0 is the CPU wheel this project is tested with; a looser range
# pulls several GB of CUDA packages on a machine without a GPU.
BASE = [
    "numpy>=1.24",
    "onnx>=1.14",
    "onnxruntime>=1.16",
    "torch==2.13.0",
    "soundfile>=0.12",
    "soxr>=0.3",  # resampling: libsoxr, the resampler sox and librosa use
    "jiwer>=3.0",
    "tqdm>=4.60",
    "PyYAML>=6.0",
    "kaldi-native-fbank>=1.22",  # Kaldi-exact fbank for the LSTM-CTC (TIMIT) frontend; x86_64 and aarch64 wheels
]

setup(
    name="ascend-asr",
    version="0.1.0",
    description="Speech-recognition models from checkpoint to Ascend OM: preprocess, convert, infer, score",
    packages=find_packages(include=["ascend_asr", "ascend_asr.*"]),
    package_data={"ascend_asr": ["assets/models/*", "assets/speech/*", "assets/speech/*/*", "assets/speech/*/*/*/*/*"]},
    python_requires=">=3.9",
    install_requires=BASE,
    extras_require={
        # librosa is the reference implementation the Jasper frontend is cross-checked against
        "test": ["pytest>=7", "librosa>=0.10", "kenlm"],
        # n-gram language models for beam search (compiles kenlm's C++; a pure-Python ARPA reader is the fallback)
        "lm": ["kenlm"],
    },
    entry_points={"console_scripts": ["ascend-asr=ascend_asr.cli:main"]},
)
