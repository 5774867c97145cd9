"""Models behind the quality and safety stages: training, saving, loading, batched prediction."""
