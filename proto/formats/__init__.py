"""Framework-free readers and writers of weight files (torch .pth, MindSpore .ckpt), shared by every process."""
