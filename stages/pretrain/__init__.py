"""The bundled pretraining stage: train a small LLaMA-style model on the final shards, sampling each
document by its `weight`, and report validation loss per source and language (docs/pretrain.md)."""
