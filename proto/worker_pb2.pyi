from proto import tensor_pb2 as _tensor_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class DescribeRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class DescribeReply(_message.Message):
    __slots__ = ("framework", "framework_version", "python_version", "device", "protocol_version", "model_spec", "model_class", "parameter_count", "parameter_elements", "example_inputs", "hostname", "execution_mode", "factory_loss", "factory_optimizer", "example_input_values", "weights_state", "rank", "world_size", "rank_addresses", "launcher", "pid", "activation_paths")
    FRAMEWORK_FIELD_NUMBER: _ClassVar[int]
    FRAMEWORK_VERSION_FIELD_NUMBER: _ClassVar[int]
    PYTHON_VERSION_FIELD_NUMBER: _ClassVar[int]
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    PROTOCOL_VERSION_FIELD_NUMBER: _ClassVar[int]
    MODEL_SPEC_FIELD_NUMBER: _ClassVar[int]
    MODEL_CLASS_FIELD_NUMBER: _ClassVar[int]
    PARAMETER_COUNT_FIELD_NUMBER: _ClassVar[int]
    PARAMETER_ELEMENTS_FIELD_NUMBER: _ClassVar[int]
    EXAMPLE_INPUTS_FIELD_NUMBER: _ClassVar[int]
    HOSTNAME_FIELD_NUMBER: _ClassVar[int]
    EXECUTION_MODE_FIELD_NUMBER: _ClassVar[int]
    FACTORY_LOSS_FIELD_NUMBER: _ClassVar[int]
    FACTORY_OPTIMIZER_FIELD_NUMBER: _ClassVar[int]
    EXAMPLE_INPUT_VALUES_FIELD_NUMBER: _ClassVar[int]
    WEIGHTS_STATE_FIELD_NUMBER: _ClassVar[int]
    RANK_FIELD_NUMBER: _ClassVar[int]
    WORLD_SIZE_FIELD_NUMBER: _ClassVar[int]
    RANK_ADDRESSES_FIELD_NUMBER: _ClassVar[int]
    LAUNCHER_FIELD_NUMBER: _ClassVar[int]
    PID_FIELD_NUMBER: _ClassVar[int]
    ACTIVATION_PATHS_FIELD_NUMBER: _ClassVar[int]
    framework: str
    framework_version: str
    python_version: str
    device: str
    protocol_version: str
    model_spec: str
    model_class: str
    parameter_count: int
    parameter_elements: int
    example_inputs: _containers.RepeatedCompositeFieldContainer[_tensor_pb2.TensorSpec]
    hostname: str
    execution_mode: str
    factory_loss: str
    factory_optimizer: str
    example_input_values: bool
    weights_state: str
    rank: int
    world_size: int
    rank_addresses: _containers.RepeatedScalarFieldContainer[str]
    launcher: str
    pid: int
    activation_paths: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, framework: _Optional[str] = ..., framework_version: _Optional[str] = ..., python_version: _Optional[str] = ..., device: _Optional[str] = ..., protocol_version: _Optional[str] = ..., model_spec: _Optional[str] = ..., model_class: _Optional[str] = ..., parameter_count: _Optional[int] = ..., parameter_elements: _Optional[int] = ..., example_inputs: _Optional[_Iterable[_Union[_tensor_pb2.TensorSpec, _Mapping]]] = ..., hostname: _Optional[str] = ..., execution_mode: _Optional[str] = ..., factory_loss: _Optional[str] = ..., factory_optimizer: _Optional[str] = ..., example_input_values: _Optional[bool] = ..., weights_state: _Optional[str] = ..., rank: _Optional[int] = ..., world_size: _Optional[int] = ..., rank_addresses: _Optional[_Iterable[str]] = ..., launcher: _Optional[str] = ..., pid: _Optional[int] = ..., activation_paths: _Optional[_Iterable[str]] = ...) -> None: ...

class SeedRequest(_message.Message):
    __slots__ = ("seed",)
    SEED_FIELD_NUMBER: _ClassVar[int]
    seed: int
    def __init__(self, seed: _Optional[int] = ...) -> None: ...

class SeedReply(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListParametersRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ParameterInfo(_message.Message):
    __slots__ = ("name", "dtype", "shape", "module_path", "module_type", "trainable", "is_buffer", "module_rule_type", "placement", "shard_dim")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DTYPE_FIELD_NUMBER: _ClassVar[int]
    SHAPE_FIELD_NUMBER: _ClassVar[int]
    MODULE_PATH_FIELD_NUMBER: _ClassVar[int]
    MODULE_TYPE_FIELD_NUMBER: _ClassVar[int]
    TRAINABLE_FIELD_NUMBER: _ClassVar[int]
    IS_BUFFER_FIELD_NUMBER: _ClassVar[int]
    MODULE_RULE_TYPE_FIELD_NUMBER: _ClassVar[int]
    PLACEMENT_FIELD_NUMBER: _ClassVar[int]
    SHARD_DIM_FIELD_NUMBER: _ClassVar[int]
    name: str
    dtype: str
    shape: _containers.RepeatedScalarFieldContainer[int]
    module_path: str
    module_type: str
    trainable: bool
    is_buffer: bool
    module_rule_type: str
    placement: str
    shard_dim: int
    def __init__(self, name: _Optional[str] = ..., dtype: _Optional[str] = ..., shape: _Optional[_Iterable[int]] = ..., module_path: _Optional[str] = ..., module_type: _Optional[str] = ..., trainable: _Optional[bool] = ..., is_buffer: _Optional[bool] = ..., module_rule_type: _Optional[str] = ..., placement: _Optional[str] = ..., shard_dim: _Optional[int] = ...) -> None: ...

class ModuleInfo(_message.Message):
    __slots__ = ("path", "type", "rule_type")
    PATH_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    RULE_TYPE_FIELD_NUMBER: _ClassVar[int]
    path: str
    type: str
    rule_type: str
    def __init__(self, path: _Optional[str] = ..., type: _Optional[str] = ..., rule_type: _Optional[str] = ...) -> None: ...

class ListParametersReply(_message.Message):
    __slots__ = ("parameters", "modules")
    PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    MODULES_FIELD_NUMBER: _ClassVar[int]
    parameters: _containers.RepeatedCompositeFieldContainer[ParameterInfo]
    modules: _containers.RepeatedCompositeFieldContainer[ModuleInfo]
    def __init__(self, parameters: _Optional[_Iterable[_Union[ParameterInfo, _Mapping]]] = ..., modules: _Optional[_Iterable[_Union[ModuleInfo, _Mapping]]] = ...) -> None: ...

class GetWeightsRequest(_message.Message):
    __slots__ = ("names",)
    NAMES_FIELD_NUMBER: _ClassVar[int]
    names: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, names: _Optional[_Iterable[str]] = ...) -> None: ...

class WeightDigest(_message.Message):
    __slots__ = ("spec", "digest")
    SPEC_FIELD_NUMBER: _ClassVar[int]
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    spec: _tensor_pb2.TensorSpec
    digest: bytes
    def __init__(self, spec: _Optional[_Union[_tensor_pb2.TensorSpec, _Mapping]] = ..., digest: _Optional[bytes] = ...) -> None: ...

class WeightDigestsReply(_message.Message):
    __slots__ = ("digests",)
    DIGESTS_FIELD_NUMBER: _ClassVar[int]
    digests: _containers.RepeatedCompositeFieldContainer[WeightDigest]
    def __init__(self, digests: _Optional[_Iterable[_Union[WeightDigest, _Mapping]]] = ...) -> None: ...

class SetWeightsOptions(_message.Message):
    __slots__ = ("strict",)
    STRICT_FIELD_NUMBER: _ClassVar[int]
    strict: bool
    def __init__(self, strict: _Optional[bool] = ...) -> None: ...

class SetWeightsRequest(_message.Message):
    __slots__ = ("options", "chunk")
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    options: SetWeightsOptions
    chunk: _tensor_pb2.TensorChunk
    def __init__(self, options: _Optional[_Union[SetWeightsOptions, _Mapping]] = ..., chunk: _Optional[_Union[_tensor_pb2.TensorChunk, _Mapping]] = ...) -> None: ...

class WeightMappingInfo(_message.Message):
    __slots__ = ("pt_name", "ms_name", "transform")
    PT_NAME_FIELD_NUMBER: _ClassVar[int]
    MS_NAME_FIELD_NUMBER: _ClassVar[int]
    TRANSFORM_FIELD_NUMBER: _ClassVar[int]
    pt_name: str
    ms_name: str
    transform: str
    def __init__(self, pt_name: _Optional[str] = ..., ms_name: _Optional[str] = ..., transform: _Optional[str] = ...) -> None: ...

class PullWeightsRequest(_message.Message):
    __slots__ = ("source", "mappings", "strict", "source_token", "source_tls_ca", "source_tls_server_name")
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    MAPPINGS_FIELD_NUMBER: _ClassVar[int]
    STRICT_FIELD_NUMBER: _ClassVar[int]
    SOURCE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    SOURCE_TLS_CA_FIELD_NUMBER: _ClassVar[int]
    SOURCE_TLS_SERVER_NAME_FIELD_NUMBER: _ClassVar[int]
    source: str
    mappings: _containers.RepeatedCompositeFieldContainer[WeightMappingInfo]
    strict: bool
    source_token: str
    source_tls_ca: bytes
    source_tls_server_name: str
    def __init__(self, source: _Optional[str] = ..., mappings: _Optional[_Iterable[_Union[WeightMappingInfo, _Mapping]]] = ..., strict: _Optional[bool] = ..., source_token: _Optional[str] = ..., source_tls_ca: _Optional[bytes] = ..., source_tls_server_name: _Optional[str] = ...) -> None: ...

class SetWeightsReply(_message.Message):
    __slots__ = ("loaded", "missing")
    LOADED_FIELD_NUMBER: _ClassVar[int]
    MISSING_FIELD_NUMBER: _ClassVar[int]
    loaded: int
    missing: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, loaded: _Optional[int] = ..., missing: _Optional[_Iterable[str]] = ...) -> None: ...

class ForwardOptions(_message.Message):
    __slots__ = ("train_mode",)
    TRAIN_MODE_FIELD_NUMBER: _ClassVar[int]
    train_mode: bool
    def __init__(self, train_mode: _Optional[bool] = ...) -> None: ...

class ForwardRequest(_message.Message):
    __slots__ = ("options", "chunk")
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    options: ForwardOptions
    chunk: _tensor_pb2.TensorChunk
    def __init__(self, options: _Optional[_Union[ForwardOptions, _Mapping]] = ..., chunk: _Optional[_Union[_tensor_pb2.TensorChunk, _Mapping]] = ...) -> None: ...

class TrainOptions(_message.Message):
    __slots__ = ("loss", "optimizer", "lr", "reset", "return_state", "return_moments", "float64_reference")
    LOSS_FIELD_NUMBER: _ClassVar[int]
    OPTIMIZER_FIELD_NUMBER: _ClassVar[int]
    LR_FIELD_NUMBER: _ClassVar[int]
    RESET_FIELD_NUMBER: _ClassVar[int]
    RETURN_STATE_FIELD_NUMBER: _ClassVar[int]
    RETURN_MOMENTS_FIELD_NUMBER: _ClassVar[int]
    FLOAT64_REFERENCE_FIELD_NUMBER: _ClassVar[int]
    loss: str
    optimizer: str
    lr: float
    reset: bool
    return_state: bool
    return_moments: bool
    float64_reference: bool
    def __init__(self, loss: _Optional[str] = ..., optimizer: _Optional[str] = ..., lr: _Optional[float] = ..., reset: _Optional[bool] = ..., return_state: _Optional[bool] = ..., return_moments: _Optional[bool] = ..., float64_reference: _Optional[bool] = ...) -> None: ...

class TrainStepRequest(_message.Message):
    __slots__ = ("options", "chunk")
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    options: TrainOptions
    chunk: _tensor_pb2.TensorChunk
    def __init__(self, options: _Optional[_Union[TrainOptions, _Mapping]] = ..., chunk: _Optional[_Union[_tensor_pb2.TensorChunk, _Mapping]] = ...) -> None: ...

class RecordOptions(_message.Message):
    __slots__ = ("sketch_size", "sketch_seed", "float64_reference", "backward_loss")
    SKETCH_SIZE_FIELD_NUMBER: _ClassVar[int]
    SKETCH_SEED_FIELD_NUMBER: _ClassVar[int]
    FLOAT64_REFERENCE_FIELD_NUMBER: _ClassVar[int]
    BACKWARD_LOSS_FIELD_NUMBER: _ClassVar[int]
    sketch_size: int
    sketch_seed: int
    float64_reference: bool
    backward_loss: str
    def __init__(self, sketch_size: _Optional[int] = ..., sketch_seed: _Optional[int] = ..., float64_reference: _Optional[bool] = ..., backward_loss: _Optional[str] = ...) -> None: ...

class RecordRequest(_message.Message):
    __slots__ = ("options", "chunk")
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    options: RecordOptions
    chunk: _tensor_pb2.TensorChunk
    def __init__(self, options: _Optional[_Union[RecordOptions, _Mapping]] = ..., chunk: _Optional[_Union[_tensor_pb2.TensorChunk, _Mapping]] = ...) -> None: ...

class TensorSummary(_message.Message):
    __slots__ = ("name", "dtype", "shape", "min", "max", "mean", "norm", "finite", "sketch", "sketch_seed")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DTYPE_FIELD_NUMBER: _ClassVar[int]
    SHAPE_FIELD_NUMBER: _ClassVar[int]
    MIN_FIELD_NUMBER: _ClassVar[int]
    MAX_FIELD_NUMBER: _ClassVar[int]
    MEAN_FIELD_NUMBER: _ClassVar[int]
    NORM_FIELD_NUMBER: _ClassVar[int]
    FINITE_FIELD_NUMBER: _ClassVar[int]
    SKETCH_FIELD_NUMBER: _ClassVar[int]
    SKETCH_SEED_FIELD_NUMBER: _ClassVar[int]
    name: str
    dtype: str
    shape: _containers.RepeatedScalarFieldContainer[int]
    min: float
    max: float
    mean: float
    norm: float
    finite: bool
    sketch: _containers.RepeatedScalarFieldContainer[float]
    sketch_seed: int
    def __init__(self, name: _Optional[str] = ..., dtype: _Optional[str] = ..., shape: _Optional[_Iterable[int]] = ..., min: _Optional[float] = ..., max: _Optional[float] = ..., mean: _Optional[float] = ..., norm: _Optional[float] = ..., finite: _Optional[bool] = ..., sketch: _Optional[_Iterable[float]] = ..., sketch_seed: _Optional[int] = ...) -> None: ...

class ModuleCall(_message.Message):
    __slots__ = ("path", "type", "rule_type", "call", "start", "end", "inputs", "outputs", "param_names", "attributes")
    class AttributesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    PATH_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    RULE_TYPE_FIELD_NUMBER: _ClassVar[int]
    CALL_FIELD_NUMBER: _ClassVar[int]
    START_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    INPUTS_FIELD_NUMBER: _ClassVar[int]
    OUTPUTS_FIELD_NUMBER: _ClassVar[int]
    PARAM_NAMES_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTES_FIELD_NUMBER: _ClassVar[int]
    path: str
    type: str
    rule_type: str
    call: int
    start: int
    end: int
    inputs: _containers.RepeatedCompositeFieldContainer[TensorSummary]
    outputs: _containers.RepeatedCompositeFieldContainer[TensorSummary]
    param_names: _containers.RepeatedScalarFieldContainer[str]
    attributes: _containers.ScalarMap[str, str]
    def __init__(self, path: _Optional[str] = ..., type: _Optional[str] = ..., rule_type: _Optional[str] = ..., call: _Optional[int] = ..., start: _Optional[int] = ..., end: _Optional[int] = ..., inputs: _Optional[_Iterable[_Union[TensorSummary, _Mapping]]] = ..., outputs: _Optional[_Iterable[_Union[TensorSummary, _Mapping]]] = ..., param_names: _Optional[_Iterable[str]] = ..., attributes: _Optional[_Mapping[str, str]] = ...) -> None: ...

class RecordReply(_message.Message):
    __slots__ = ("calls", "reference_calls", "reference_note")
    CALLS_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_CALLS_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_NOTE_FIELD_NUMBER: _ClassVar[int]
    calls: _containers.RepeatedCompositeFieldContainer[ModuleCall]
    reference_calls: _containers.RepeatedCompositeFieldContainer[ModuleCall]
    reference_note: str
    def __init__(self, calls: _Optional[_Iterable[_Union[ModuleCall, _Mapping]]] = ..., reference_calls: _Optional[_Iterable[_Union[ModuleCall, _Mapping]]] = ..., reference_note: _Optional[str] = ...) -> None: ...

class GetActivationsRequest(_message.Message):
    __slots__ = ("run", "keys", "inputs", "outputs")
    RUN_FIELD_NUMBER: _ClassVar[int]
    KEYS_FIELD_NUMBER: _ClassVar[int]
    INPUTS_FIELD_NUMBER: _ClassVar[int]
    OUTPUTS_FIELD_NUMBER: _ClassVar[int]
    run: str
    keys: _containers.RepeatedScalarFieldContainer[str]
    inputs: bool
    outputs: bool
    def __init__(self, run: _Optional[str] = ..., keys: _Optional[_Iterable[str]] = ..., inputs: _Optional[bool] = ..., outputs: _Optional[bool] = ...) -> None: ...

class RunModuleOptions(_message.Message):
    __slots__ = ("path", "call", "float64", "backward")
    PATH_FIELD_NUMBER: _ClassVar[int]
    CALL_FIELD_NUMBER: _ClassVar[int]
    FLOAT64_FIELD_NUMBER: _ClassVar[int]
    BACKWARD_FIELD_NUMBER: _ClassVar[int]
    path: str
    call: int
    float64: bool
    backward: bool
    def __init__(self, path: _Optional[str] = ..., call: _Optional[int] = ..., float64: _Optional[bool] = ..., backward: _Optional[bool] = ...) -> None: ...

class RunModuleRequest(_message.Message):
    __slots__ = ("options", "chunk")
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    options: RunModuleOptions
    chunk: _tensor_pb2.TensorChunk
    def __init__(self, options: _Optional[_Union[RunModuleOptions, _Mapping]] = ..., chunk: _Optional[_Union[_tensor_pb2.TensorChunk, _Mapping]] = ...) -> None: ...

class ListDirRequest(_message.Message):
    __slots__ = ("path",)
    PATH_FIELD_NUMBER: _ClassVar[int]
    path: str
    def __init__(self, path: _Optional[str] = ...) -> None: ...

class DirEntry(_message.Message):
    __slots__ = ("name", "dtype", "shape", "nbytes", "ctime")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DTYPE_FIELD_NUMBER: _ClassVar[int]
    SHAPE_FIELD_NUMBER: _ClassVar[int]
    NBYTES_FIELD_NUMBER: _ClassVar[int]
    CTIME_FIELD_NUMBER: _ClassVar[int]
    name: str
    dtype: str
    shape: _containers.RepeatedScalarFieldContainer[int]
    nbytes: int
    ctime: float
    def __init__(self, name: _Optional[str] = ..., dtype: _Optional[str] = ..., shape: _Optional[_Iterable[int]] = ..., nbytes: _Optional[int] = ..., ctime: _Optional[float] = ...) -> None: ...

class ListDirReply(_message.Message):
    __slots__ = ("path", "entries")
    PATH_FIELD_NUMBER: _ClassVar[int]
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    path: str
    entries: _containers.RepeatedCompositeFieldContainer[DirEntry]
    def __init__(self, path: _Optional[str] = ..., entries: _Optional[_Iterable[_Union[DirEntry, _Mapping]]] = ...) -> None: ...

class GetTensorsRequest(_message.Message):
    __slots__ = ("path", "names")
    PATH_FIELD_NUMBER: _ClassVar[int]
    NAMES_FIELD_NUMBER: _ClassVar[int]
    path: str
    names: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, path: _Optional[str] = ..., names: _Optional[_Iterable[str]] = ...) -> None: ...

class GetExampleInputsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class EndSessionRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class EndSessionReply(_message.Message):
    __slots__ = ("restored", "note")
    RESTORED_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    restored: int
    note: str
    def __init__(self, restored: _Optional[int] = ..., note: _Optional[str] = ...) -> None: ...
