"""The framework-free worker runtime: the worker interface, the servicer, serve/main, model specs, recording."""
