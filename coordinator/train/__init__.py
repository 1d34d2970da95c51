"""The training-step job: same weights and batches, N steps on both sides, compared."""
