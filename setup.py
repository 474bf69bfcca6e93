from setuptools import find_packages, setup

# The base install is what inference needs: preprocess -> infer -> score on a converted bundle.
# `import ascend_asr.infer` (and preprocess, score, cli) imports neither torch nor onnx.
BASE = [
    "numpy>=1.24",
    "onnxruntime>=1.16",
    "soundfile>=0.12",
    "soxr>=0.3",  # resampling: libsoxr, the resampler sox and librosa use
    "jiwer>=3.0",
    "tqdm>=4.60",
    "PyYAML>=6.0",
    "kaldi-native-fbank>=1.22",  # Kaldi-exact fbank for the LSTM-CTC (TIMIT) frontend; x86_64 and aarch64 wheels
]

# checkpoint -> ONNX -> bundle (export, convert, ATC, training recipes).
# torch is pinned: 2.13.0 is the CPU wheel this project is tested with; a looser range
# pulls several GB of CUDA packages on a machine without a GPU.
EXPORT = [
    "torch==2.13.0",
    "onnx>=1.14",
]

# the simplify step of `ascend-asr optimize` and the ATC graph of the ESPnet family: onnxslim (onnxsim has no
# wheel for current Pythons). The fp16 simulations need nothing more: onnxconverter-common's converted graphs
# did not load for the shipped models, so optimize/fp16.py rounds tensors through fp16 itself.
OPTIMIZE = ["onnxslim>=0.1.50"]

# PaddleSpeech's own runtime, for `import-paddle` (a Paddle inference model -> ONNX, gated on Paddle Predictor) and
# the streaming table's Paddle row. paddle2onnx is not listed: it pins onnx<=1.17, onnxoptimizer and polygraphy,
# none of which it needs; install it with `pip install --no-deps paddle2onnx==2.1.0` (as .ci/run does).
PADDLE = ["paddlepaddle==3.3.1"]

# ESPnet BPE token lists are checked against their sentencepiece model (decoding needs only the token list)
ESPNET = ["sentencepiece>=0.1.99"]

PLOT = ["matplotlib>=3.5"]  # the PNG plots of `ascend-asr bench` (without it the report is written without plots)

LM = ["kenlm"]  # n-gram language models for beam search (compiles kenlm's C++; a pure-Python ARPA reader is the fallback)

# The tests export and convert models, so they need the export extra's packages too.
# librosa is the reference implementation the Jasper frontend is cross-checked against.
# onnxconverter-common makes the fp16 graphs users bring to `ascend-asr compare` (its tests compare one).
TEST = EXPORT + OPTIMIZE + ESPNET + LM + PLOT + ["onnxconverter-common>=1.14", "pytest>=7", "librosa>=0.10", "hypothesis>=6"]

# Profiles: the source of truth is the top-level atc_profiles/ (the layout the design requires); wheels and
# `pip install .` ship it as the data-only subpackage ascend_asr.atc_profiles (package_dir maps it onto
# atc_profiles/). ascend_asr.profiles finds them in the installed package, else in the source checkout
# (which is what an editable install sees).
PACKAGES = find_packages(include=["ascend_asr", "ascend_asr.*"]) + ["ascend_asr.atc_profiles"]

setup(
    name="ascend-asr",
    version="0.1.0",
    description="Speech-recognition models from checkpoint to Ascend OM: preprocess, convert, infer, score",
    packages=PACKAGES,
    package_dir={"ascend_asr.atc_profiles": "atc_profiles"},
    package_data={
        "ascend_asr": ["assets/models/*", "assets/speech/*", "assets/speech/*/*", "assets/speech/*/*/*/*/*"],
        "ascend_asr.atc_profiles": ["*.yaml"],
    },
    python_requires=">=3.9",
    install_requires=BASE,
    extras_require={
        "export": EXPORT,
        "lm": LM,
        "optimize": OPTIMIZE,
        "paddle": PADDLE,
        "espnet": ESPNET,
        "plot": PLOT,
        "test": TEST,
    },
    entry_points={
        "console_scripts": ["ascend-asr=ascend_asr.cli:main"],
        # Model families from other packages register here (read by ascend_asr/families/__init__.py), e.g.
        #   "ascend_asr.families": ["conformer = my_package.conformer:ConformerFamily"],
        "ascend_asr.families": [],
    },
)
