"""The framework tests train for real, on random data, with models built here: nothing is downloaded."""

from __future__ import annotations

import os

# Before any test module imports a framework: Keras picks its backend, and the Hugging Face libraries
# their hub mode, when first imported.
os.environ["KERAS_BACKEND"] = "torch"
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
