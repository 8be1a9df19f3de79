"""The framework tests train for real, on random data, with models built here: nothing is downloaded."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator

import pytest

# Before any test module imports a framework: Keras picks its backend, and the Hugging Face libraries
# their hub mode, when first imported.
os.environ["KERAS_BACKEND"] = "torch"
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
# One intra-op thread: these models are tiny, and on a shared machine a pool of spinning threads only
# waits for its slowest member. Scripts the tests start get the same through OMP_NUM_THREADS.
os.environ["OMP_NUM_THREADS"] = "1"

import torch  # after the environment above

torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _every_run_ended() -> Iterator[None]:
    # A logger or callback that left its run open would keep runlane's threads (system metrics) running
    # into the tests that follow: fail the test that did it instead.
    yield
    left = [t.name for t in threading.enumerate() if t.name.startswith("runlane")]
    assert not left, f"a run was left open: runlane threads {left}"
