"""Tiny models and random data for the framework tests, also imported by the scripts they run."""

from __future__ import annotations

from typing import Any

import torch

VOCAB = 64
SEQUENCE = 8


class TokenDataset(torch.utils.data.Dataset[dict[str, torch.Tensor]]):
    """Random token ids and labels: what a tokenizer would hand a classifier, without a tokenizer."""

    def __init__(self, size: int, seed: int) -> None:
        generator = torch.Generator().manual_seed(seed)
        self.input_ids = torch.randint(1, VOCAB, (size, SEQUENCE), generator=generator)
        self.labels = torch.randint(0, 2, (size,), generator=generator)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        ids = self.input_ids[index]
        return {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": self.labels[index]}


def tiny_bert() -> Any:
    """A randomly initialised 2-layer BERT classifier: built from a config, nothing downloaded."""
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=VOCAB,
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=SEQUENCE,
    )
    config.num_labels = 2  # a PretrainedConfig property (the keyword exists at runtime, not in its stubs)
    return BertForSequenceClassification(config)


def training_args(output_dir: str, **overrides: Any) -> Any:
    """Two epochs of 4 steps, a log every 2 steps, an evaluation and a checkpoint after each epoch."""
    from transformers import TrainingArguments

    options: dict[str, Any] = {
        "output_dir": output_dir,
        "run_name": "tiny-bert",
        "num_train_epochs": 2,
        "per_device_train_batch_size": 8,
        "per_device_eval_batch_size": 16,
        "learning_rate": 1e-3,
        "logging_steps": 2,
        "eval_strategy": "epoch",
        "save_strategy": "epoch",
        "metric_for_best_model": "eval_loss",
        "greater_is_better": False,
        "report_to": "none",
        "use_cpu": True,
        "disable_tqdm": True,
        "dataloader_num_workers": 0,
        "seed": 0,
    }
    options.update(overrides)
    return TrainingArguments(**options)


def tiny_keras_model(learning_rate: float = 1e-2) -> Any:
    """A 2-layer Keras regressor, compiled with Adam and an extra metric."""
    import keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, activation="relu"), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss="mse", metrics=["mae"])
    return model


def regression_data(size: int, seed: int) -> tuple[Any, Any]:
    import numpy as np

    generator = np.random.default_rng(seed)
    return generator.random((size, 4), dtype=np.float32), generator.random((size, 1), dtype=np.float32)
