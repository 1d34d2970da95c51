"""The wire between the coordinator and the workers, framework-free: protobuf messages and generated code,
tensors as header + chunks (codec), dtypes, errors and their gRPC statuses, transport, message conversion.

Subpackages: formats (weight and tensor files), weights (weight migration), worker (the worker runtime).
"""
