"""Framework-free readers and writers of weight files."""
