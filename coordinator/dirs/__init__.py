"""Directory jobs: compare directories of saved .npy tensors, local or served by workers."""
