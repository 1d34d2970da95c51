"""Weight-file jobs: convert a .pth into a .ckpt, compare weight files."""
