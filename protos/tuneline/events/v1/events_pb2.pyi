from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ArtifactRef(_message.Message):
    __slots__ = ("digest", "uri", "media_type", "size_bytes")
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    URI_FIELD_NUMBER: _ClassVar[int]
    MEDIA_TYPE_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    digest: str
    uri: str
    media_type: str
    size_bytes: int
    def __init__(self, digest: _Optional[str] = ..., uri: _Optional[str] = ..., media_type: _Optional[str] = ..., size_bytes: _Optional[int] = ...) -> None: ...

class GateResult(_message.Message):
    __slots__ = ("gate", "passed", "reason", "counts", "examples")
    class CountsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    GATE_FIELD_NUMBER: _ClassVar[int]
    PASSED_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    COUNTS_FIELD_NUMBER: _ClassVar[int]
    EXAMPLES_FIELD_NUMBER: _ClassVar[int]
    gate: str
    passed: bool
    reason: str
    counts: _containers.ScalarMap[str, int]
    examples: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, gate: _Optional[str] = ..., passed: _Optional[bool] = ..., reason: _Optional[str] = ..., counts: _Optional[_Mapping[str, int]] = ..., examples: _Optional[_Iterable[str]] = ...) -> None: ...

class Criterion(_message.Message):
    __slots__ = ("name", "value", "threshold", "comparator", "computed", "passed", "reason")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    COMPARATOR_FIELD_NUMBER: _ClassVar[int]
    COMPUTED_FIELD_NUMBER: _ClassVar[int]
    PASSED_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    name: str
    value: float
    threshold: float
    comparator: str
    computed: bool
    passed: bool
    reason: str
    def __init__(self, name: _Optional[str] = ..., value: _Optional[float] = ..., threshold: _Optional[float] = ..., comparator: _Optional[str] = ..., computed: _Optional[bool] = ..., passed: _Optional[bool] = ..., reason: _Optional[str] = ...) -> None: ...

class CurvePoint(_message.Message):
    __slots__ = ("step", "epoch", "loss", "learning_rate", "grad_norm")
    STEP_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    LOSS_FIELD_NUMBER: _ClassVar[int]
    LEARNING_RATE_FIELD_NUMBER: _ClassVar[int]
    GRAD_NORM_FIELD_NUMBER: _ClassVar[int]
    step: int
    epoch: float
    loss: float
    learning_rate: float
    grad_norm: float
    def __init__(self, step: _Optional[int] = ..., epoch: _Optional[float] = ..., loss: _Optional[float] = ..., learning_rate: _Optional[float] = ..., grad_norm: _Optional[float] = ...) -> None: ...

class Header(_message.Message):
    __slots__ = ("key", "value")
    KEY_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    key: str
    value: bytes
    def __init__(self, key: _Optional[str] = ..., value: _Optional[bytes] = ...) -> None: ...

class GoalApplied(_message.Message):
    __slots__ = ("goal_name", "goal_version", "goal_json", "applied_by")
    GOAL_NAME_FIELD_NUMBER: _ClassVar[int]
    GOAL_VERSION_FIELD_NUMBER: _ClassVar[int]
    GOAL_JSON_FIELD_NUMBER: _ClassVar[int]
    APPLIED_BY_FIELD_NUMBER: _ClassVar[int]
    goal_name: str
    goal_version: str
    goal_json: str
    applied_by: str
    def __init__(self, goal_name: _Optional[str] = ..., goal_version: _Optional[str] = ..., goal_json: _Optional[str] = ..., applied_by: _Optional[str] = ...) -> None: ...

class DatasetPublished(_message.Message):
    __slots__ = ("dataset_name", "uri", "format", "text_field", "label_field", "slice_field", "publisher", "lineage", "eval_uri")
    class LineageEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    DATASET_NAME_FIELD_NUMBER: _ClassVar[int]
    URI_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_FIELD_NUMBER: _ClassVar[int]
    SLICE_FIELD_FIELD_NUMBER: _ClassVar[int]
    PUBLISHER_FIELD_NUMBER: _ClassVar[int]
    LINEAGE_FIELD_NUMBER: _ClassVar[int]
    EVAL_URI_FIELD_NUMBER: _ClassVar[int]
    dataset_name: str
    uri: str
    format: str
    text_field: str
    label_field: str
    slice_field: str
    publisher: str
    lineage: _containers.ScalarMap[str, str]
    eval_uri: str
    def __init__(self, dataset_name: _Optional[str] = ..., uri: _Optional[str] = ..., format: _Optional[str] = ..., text_field: _Optional[str] = ..., label_field: _Optional[str] = ..., slice_field: _Optional[str] = ..., publisher: _Optional[str] = ..., lineage: _Optional[_Mapping[str, str]] = ..., eval_uri: _Optional[str] = ...) -> None: ...

class DatasetRegistered(_message.Message):
    __slots__ = ("dataset_name", "dataset_version", "train", "eval", "train_rows", "eval_rows", "labels", "certificate", "certificate_ref", "source_uri", "publisher", "lineage", "published_event_id", "text_field", "label_field", "slice_field")
    class LineageEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    DATASET_NAME_FIELD_NUMBER: _ClassVar[int]
    DATASET_VERSION_FIELD_NUMBER: _ClassVar[int]
    TRAIN_FIELD_NUMBER: _ClassVar[int]
    EVAL_FIELD_NUMBER: _ClassVar[int]
    TRAIN_ROWS_FIELD_NUMBER: _ClassVar[int]
    EVAL_ROWS_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    CERTIFICATE_FIELD_NUMBER: _ClassVar[int]
    CERTIFICATE_REF_FIELD_NUMBER: _ClassVar[int]
    SOURCE_URI_FIELD_NUMBER: _ClassVar[int]
    PUBLISHER_FIELD_NUMBER: _ClassVar[int]
    LINEAGE_FIELD_NUMBER: _ClassVar[int]
    PUBLISHED_EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_FIELD_NUMBER: _ClassVar[int]
    SLICE_FIELD_FIELD_NUMBER: _ClassVar[int]
    dataset_name: str
    dataset_version: str
    train: ArtifactRef
    eval: ArtifactRef
    train_rows: int
    eval_rows: int
    labels: _containers.RepeatedScalarFieldContainer[str]
    certificate: _containers.RepeatedCompositeFieldContainer[GateResult]
    certificate_ref: ArtifactRef
    source_uri: str
    publisher: str
    lineage: _containers.ScalarMap[str, str]
    published_event_id: str
    text_field: str
    label_field: str
    slice_field: str
    def __init__(self, dataset_name: _Optional[str] = ..., dataset_version: _Optional[str] = ..., train: _Optional[_Union[ArtifactRef, _Mapping]] = ..., eval: _Optional[_Union[ArtifactRef, _Mapping]] = ..., train_rows: _Optional[int] = ..., eval_rows: _Optional[int] = ..., labels: _Optional[_Iterable[str]] = ..., certificate: _Optional[_Iterable[_Union[GateResult, _Mapping]]] = ..., certificate_ref: _Optional[_Union[ArtifactRef, _Mapping]] = ..., source_uri: _Optional[str] = ..., publisher: _Optional[str] = ..., lineage: _Optional[_Mapping[str, str]] = ..., published_event_id: _Optional[str] = ..., text_field: _Optional[str] = ..., label_field: _Optional[str] = ..., slice_field: _Optional[str] = ...) -> None: ...

class DatasetRejected(_message.Message):
    __slots__ = ("dataset_name", "source_uri", "publisher", "failed_gates", "certificate", "published_event_id", "summary")
    DATASET_NAME_FIELD_NUMBER: _ClassVar[int]
    SOURCE_URI_FIELD_NUMBER: _ClassVar[int]
    PUBLISHER_FIELD_NUMBER: _ClassVar[int]
    FAILED_GATES_FIELD_NUMBER: _ClassVar[int]
    CERTIFICATE_FIELD_NUMBER: _ClassVar[int]
    PUBLISHED_EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    dataset_name: str
    source_uri: str
    publisher: str
    failed_gates: _containers.RepeatedCompositeFieldContainer[GateResult]
    certificate: _containers.RepeatedCompositeFieldContainer[GateResult]
    published_event_id: str
    summary: str
    def __init__(self, dataset_name: _Optional[str] = ..., source_uri: _Optional[str] = ..., publisher: _Optional[str] = ..., failed_gates: _Optional[_Iterable[_Union[GateResult, _Mapping]]] = ..., certificate: _Optional[_Iterable[_Union[GateResult, _Mapping]]] = ..., published_event_id: _Optional[str] = ..., summary: _Optional[str] = ...) -> None: ...

class RunRequested(_message.Message):
    __slots__ = ("goal_name", "dataset_name", "dataset_version", "reason", "requested_by", "incident_id")
    GOAL_NAME_FIELD_NUMBER: _ClassVar[int]
    DATASET_NAME_FIELD_NUMBER: _ClassVar[int]
    DATASET_VERSION_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    REQUESTED_BY_FIELD_NUMBER: _ClassVar[int]
    INCIDENT_ID_FIELD_NUMBER: _ClassVar[int]
    goal_name: str
    dataset_name: str
    dataset_version: str
    reason: str
    requested_by: str
    incident_id: str
    def __init__(self, goal_name: _Optional[str] = ..., dataset_name: _Optional[str] = ..., dataset_version: _Optional[str] = ..., reason: _Optional[str] = ..., requested_by: _Optional[str] = ..., incident_id: _Optional[str] = ...) -> None: ...

class RunStarted(_message.Message):
    __slots__ = ("run_id", "goal_name", "goal_version", "dataset_name", "dataset_version", "attempt", "world_size", "use_gpu")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    GOAL_NAME_FIELD_NUMBER: _ClassVar[int]
    GOAL_VERSION_FIELD_NUMBER: _ClassVar[int]
    DATASET_NAME_FIELD_NUMBER: _ClassVar[int]
    DATASET_VERSION_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    WORLD_SIZE_FIELD_NUMBER: _ClassVar[int]
    USE_GPU_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    goal_name: str
    goal_version: str
    dataset_name: str
    dataset_version: str
    attempt: int
    world_size: int
    use_gpu: bool
    def __init__(self, run_id: _Optional[str] = ..., goal_name: _Optional[str] = ..., goal_version: _Optional[str] = ..., dataset_name: _Optional[str] = ..., dataset_version: _Optional[str] = ..., attempt: _Optional[int] = ..., world_size: _Optional[int] = ..., use_gpu: _Optional[bool] = ...) -> None: ...

class RunFinished(_message.Message):
    __slots__ = ("run_id", "goal_name", "goal_version", "dataset_name", "dataset_version", "status", "failure_reason", "adapter", "envelope", "envelope_digest", "curve", "wall_seconds", "metrics", "train_data", "eval_data", "base_model", "method", "labels", "text_field", "label_field", "slice_field", "attempts", "adapter_signature")
    class MetricsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    GOAL_NAME_FIELD_NUMBER: _ClassVar[int]
    GOAL_VERSION_FIELD_NUMBER: _ClassVar[int]
    DATASET_NAME_FIELD_NUMBER: _ClassVar[int]
    DATASET_VERSION_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    FAILURE_REASON_FIELD_NUMBER: _ClassVar[int]
    ADAPTER_FIELD_NUMBER: _ClassVar[int]
    ENVELOPE_FIELD_NUMBER: _ClassVar[int]
    ENVELOPE_DIGEST_FIELD_NUMBER: _ClassVar[int]
    CURVE_FIELD_NUMBER: _ClassVar[int]
    WALL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    TRAIN_DATA_FIELD_NUMBER: _ClassVar[int]
    EVAL_DATA_FIELD_NUMBER: _ClassVar[int]
    BASE_MODEL_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_FIELD_NUMBER: _ClassVar[int]
    SLICE_FIELD_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    ADAPTER_SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    goal_name: str
    goal_version: str
    dataset_name: str
    dataset_version: str
    status: str
    failure_reason: str
    adapter: ArtifactRef
    envelope: ArtifactRef
    envelope_digest: str
    curve: _containers.RepeatedCompositeFieldContainer[CurvePoint]
    wall_seconds: float
    metrics: _containers.ScalarMap[str, float]
    train_data: ArtifactRef
    eval_data: ArtifactRef
    base_model: str
    method: str
    labels: _containers.RepeatedScalarFieldContainer[str]
    text_field: str
    label_field: str
    slice_field: str
    attempts: int
    adapter_signature: ArtifactRef
    def __init__(self, run_id: _Optional[str] = ..., goal_name: _Optional[str] = ..., goal_version: _Optional[str] = ..., dataset_name: _Optional[str] = ..., dataset_version: _Optional[str] = ..., status: _Optional[str] = ..., failure_reason: _Optional[str] = ..., adapter: _Optional[_Union[ArtifactRef, _Mapping]] = ..., envelope: _Optional[_Union[ArtifactRef, _Mapping]] = ..., envelope_digest: _Optional[str] = ..., curve: _Optional[_Iterable[_Union[CurvePoint, _Mapping]]] = ..., wall_seconds: _Optional[float] = ..., metrics: _Optional[_Mapping[str, float]] = ..., train_data: _Optional[_Union[ArtifactRef, _Mapping]] = ..., eval_data: _Optional[_Union[ArtifactRef, _Mapping]] = ..., base_model: _Optional[str] = ..., method: _Optional[str] = ..., labels: _Optional[_Iterable[str]] = ..., text_field: _Optional[str] = ..., label_field: _Optional[str] = ..., slice_field: _Optional[str] = ..., attempts: _Optional[int] = ..., adapter_signature: _Optional[_Union[ArtifactRef, _Mapping]] = ...) -> None: ...

class ChampionComparison(_message.Message):
    __slots__ = ("champion_digest", "test", "statistic", "p_value", "delta", "candidate_accuracy", "champion_accuracy", "rows")
    CHAMPION_DIGEST_FIELD_NUMBER: _ClassVar[int]
    TEST_FIELD_NUMBER: _ClassVar[int]
    STATISTIC_FIELD_NUMBER: _ClassVar[int]
    P_VALUE_FIELD_NUMBER: _ClassVar[int]
    DELTA_FIELD_NUMBER: _ClassVar[int]
    CANDIDATE_ACCURACY_FIELD_NUMBER: _ClassVar[int]
    CHAMPION_ACCURACY_FIELD_NUMBER: _ClassVar[int]
    ROWS_FIELD_NUMBER: _ClassVar[int]
    champion_digest: str
    test: str
    statistic: float
    p_value: float
    delta: float
    candidate_accuracy: float
    champion_accuracy: float
    rows: int
    def __init__(self, champion_digest: _Optional[str] = ..., test: _Optional[str] = ..., statistic: _Optional[float] = ..., p_value: _Optional[float] = ..., delta: _Optional[float] = ..., candidate_accuracy: _Optional[float] = ..., champion_accuracy: _Optional[float] = ..., rows: _Optional[int] = ...) -> None: ...

class ReferenceProfile(_message.Message):
    __slots__ = ("table", "rows", "feature_names", "projection_dims", "projection_seed")
    TABLE_FIELD_NUMBER: _ClassVar[int]
    ROWS_FIELD_NUMBER: _ClassVar[int]
    FEATURE_NAMES_FIELD_NUMBER: _ClassVar[int]
    PROJECTION_DIMS_FIELD_NUMBER: _ClassVar[int]
    PROJECTION_SEED_FIELD_NUMBER: _ClassVar[int]
    table: ArtifactRef
    rows: int
    feature_names: _containers.RepeatedScalarFieldContainer[str]
    projection_dims: int
    projection_seed: int
    def __init__(self, table: _Optional[_Union[ArtifactRef, _Mapping]] = ..., rows: _Optional[int] = ..., feature_names: _Optional[_Iterable[str]] = ..., projection_dims: _Optional[int] = ..., projection_seed: _Optional[int] = ...) -> None: ...

class EvalOutcome(_message.Message):
    __slots__ = ("eval_id", "run_id", "goal_name", "goal_version", "dataset_name", "dataset_version", "adapter", "passed", "criteria", "metrics", "report_json", "report_html", "reference", "champion", "summary", "base_model", "labels", "method", "adapter_signature")
    class MetricsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    EVAL_ID_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    GOAL_NAME_FIELD_NUMBER: _ClassVar[int]
    GOAL_VERSION_FIELD_NUMBER: _ClassVar[int]
    DATASET_NAME_FIELD_NUMBER: _ClassVar[int]
    DATASET_VERSION_FIELD_NUMBER: _ClassVar[int]
    ADAPTER_FIELD_NUMBER: _ClassVar[int]
    PASSED_FIELD_NUMBER: _ClassVar[int]
    CRITERIA_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    REPORT_JSON_FIELD_NUMBER: _ClassVar[int]
    REPORT_HTML_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_FIELD_NUMBER: _ClassVar[int]
    CHAMPION_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    BASE_MODEL_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    ADAPTER_SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    eval_id: str
    run_id: str
    goal_name: str
    goal_version: str
    dataset_name: str
    dataset_version: str
    adapter: ArtifactRef
    passed: bool
    criteria: _containers.RepeatedCompositeFieldContainer[Criterion]
    metrics: _containers.ScalarMap[str, float]
    report_json: ArtifactRef
    report_html: ArtifactRef
    reference: ReferenceProfile
    champion: ChampionComparison
    summary: str
    base_model: str
    labels: _containers.RepeatedScalarFieldContainer[str]
    method: str
    adapter_signature: ArtifactRef
    def __init__(self, eval_id: _Optional[str] = ..., run_id: _Optional[str] = ..., goal_name: _Optional[str] = ..., goal_version: _Optional[str] = ..., dataset_name: _Optional[str] = ..., dataset_version: _Optional[str] = ..., adapter: _Optional[_Union[ArtifactRef, _Mapping]] = ..., passed: _Optional[bool] = ..., criteria: _Optional[_Iterable[_Union[Criterion, _Mapping]]] = ..., metrics: _Optional[_Mapping[str, float]] = ..., report_json: _Optional[_Union[ArtifactRef, _Mapping]] = ..., report_html: _Optional[_Union[ArtifactRef, _Mapping]] = ..., reference: _Optional[_Union[ReferenceProfile, _Mapping]] = ..., champion: _Optional[_Union[ChampionComparison, _Mapping]] = ..., summary: _Optional[str] = ..., base_model: _Optional[str] = ..., labels: _Optional[_Iterable[str]] = ..., method: _Optional[str] = ..., adapter_signature: _Optional[_Union[ArtifactRef, _Mapping]] = ...) -> None: ...

class EvalPassed(_message.Message):
    __slots__ = ("outcome",)
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    outcome: EvalOutcome
    def __init__(self, outcome: _Optional[_Union[EvalOutcome, _Mapping]] = ...) -> None: ...

class EvalFailed(_message.Message):
    __slots__ = ("outcome",)
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    outcome: EvalOutcome
    def __init__(self, outcome: _Optional[_Union[EvalOutcome, _Mapping]] = ...) -> None: ...

class RolloutStep(_message.Message):
    __slots__ = ("percent", "requests", "errors", "p99_ms", "agreement", "seconds")
    PERCENT_FIELD_NUMBER: _ClassVar[int]
    REQUESTS_FIELD_NUMBER: _ClassVar[int]
    ERRORS_FIELD_NUMBER: _ClassVar[int]
    P99_MS_FIELD_NUMBER: _ClassVar[int]
    AGREEMENT_FIELD_NUMBER: _ClassVar[int]
    SECONDS_FIELD_NUMBER: _ClassVar[int]
    percent: int
    requests: int
    errors: int
    p99_ms: float
    agreement: float
    seconds: float
    def __init__(self, percent: _Optional[int] = ..., requests: _Optional[int] = ..., errors: _Optional[int] = ..., p99_ms: _Optional[float] = ..., agreement: _Optional[float] = ..., seconds: _Optional[float] = ...) -> None: ...

class DeploymentStarted(_message.Message):
    __slots__ = ("deployment_id", "goal_name", "goal_version", "adapter", "strategy", "champion_digest", "eval_id", "run_id", "dataset_version", "traffic_percent")
    DEPLOYMENT_ID_FIELD_NUMBER: _ClassVar[int]
    GOAL_NAME_FIELD_NUMBER: _ClassVar[int]
    GOAL_VERSION_FIELD_NUMBER: _ClassVar[int]
    ADAPTER_FIELD_NUMBER: _ClassVar[int]
    STRATEGY_FIELD_NUMBER: _ClassVar[int]
    CHAMPION_DIGEST_FIELD_NUMBER: _ClassVar[int]
    EVAL_ID_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    DATASET_VERSION_FIELD_NUMBER: _ClassVar[int]
    TRAFFIC_PERCENT_FIELD_NUMBER: _ClassVar[int]
    deployment_id: str
    goal_name: str
    goal_version: str
    adapter: ArtifactRef
    strategy: str
    champion_digest: str
    eval_id: str
    run_id: str
    dataset_version: str
    traffic_percent: int
    def __init__(self, deployment_id: _Optional[str] = ..., goal_name: _Optional[str] = ..., goal_version: _Optional[str] = ..., adapter: _Optional[_Union[ArtifactRef, _Mapping]] = ..., strategy: _Optional[str] = ..., champion_digest: _Optional[str] = ..., eval_id: _Optional[str] = ..., run_id: _Optional[str] = ..., dataset_version: _Optional[str] = ..., traffic_percent: _Optional[int] = ...) -> None: ...

class DeploymentPromoted(_message.Message):
    __slots__ = ("deployment_id", "goal_name", "goal_version", "adapter", "previous_champion_digest", "steps", "reason", "dataset_version", "run_id", "eval_id")
    DEPLOYMENT_ID_FIELD_NUMBER: _ClassVar[int]
    GOAL_NAME_FIELD_NUMBER: _ClassVar[int]
    GOAL_VERSION_FIELD_NUMBER: _ClassVar[int]
    ADAPTER_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_CHAMPION_DIGEST_FIELD_NUMBER: _ClassVar[int]
    STEPS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    DATASET_VERSION_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    EVAL_ID_FIELD_NUMBER: _ClassVar[int]
    deployment_id: str
    goal_name: str
    goal_version: str
    adapter: ArtifactRef
    previous_champion_digest: str
    steps: _containers.RepeatedCompositeFieldContainer[RolloutStep]
    reason: str
    dataset_version: str
    run_id: str
    eval_id: str
    def __init__(self, deployment_id: _Optional[str] = ..., goal_name: _Optional[str] = ..., goal_version: _Optional[str] = ..., adapter: _Optional[_Union[ArtifactRef, _Mapping]] = ..., previous_champion_digest: _Optional[str] = ..., steps: _Optional[_Iterable[_Union[RolloutStep, _Mapping]]] = ..., reason: _Optional[str] = ..., dataset_version: _Optional[str] = ..., run_id: _Optional[str] = ..., eval_id: _Optional[str] = ...) -> None: ...

class DeploymentRolledBack(_message.Message):
    __slots__ = ("deployment_id", "goal_name", "adapter_digest", "restored_digest", "trigger", "reason", "numbers", "incident_id", "decision_to_zero_ms")
    class NumbersEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    DEPLOYMENT_ID_FIELD_NUMBER: _ClassVar[int]
    GOAL_NAME_FIELD_NUMBER: _ClassVar[int]
    ADAPTER_DIGEST_FIELD_NUMBER: _ClassVar[int]
    RESTORED_DIGEST_FIELD_NUMBER: _ClassVar[int]
    TRIGGER_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    NUMBERS_FIELD_NUMBER: _ClassVar[int]
    INCIDENT_ID_FIELD_NUMBER: _ClassVar[int]
    DECISION_TO_ZERO_MS_FIELD_NUMBER: _ClassVar[int]
    deployment_id: str
    goal_name: str
    adapter_digest: str
    restored_digest: str
    trigger: str
    reason: str
    numbers: _containers.ScalarMap[str, float]
    incident_id: str
    decision_to_zero_ms: float
    def __init__(self, deployment_id: _Optional[str] = ..., goal_name: _Optional[str] = ..., adapter_digest: _Optional[str] = ..., restored_digest: _Optional[str] = ..., trigger: _Optional[str] = ..., reason: _Optional[str] = ..., numbers: _Optional[_Mapping[str, float]] = ..., incident_id: _Optional[str] = ..., decision_to_zero_ms: _Optional[float] = ...) -> None: ...

class DeploymentApproved(_message.Message):
    __slots__ = ("deployment_id", "goal_name", "adapter", "approved_by", "reason", "eval_id", "run_id", "goal_version")
    DEPLOYMENT_ID_FIELD_NUMBER: _ClassVar[int]
    GOAL_NAME_FIELD_NUMBER: _ClassVar[int]
    ADAPTER_FIELD_NUMBER: _ClassVar[int]
    APPROVED_BY_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    EVAL_ID_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    GOAL_VERSION_FIELD_NUMBER: _ClassVar[int]
    deployment_id: str
    goal_name: str
    adapter: ArtifactRef
    approved_by: str
    reason: str
    eval_id: str
    run_id: str
    goal_version: str
    def __init__(self, deployment_id: _Optional[str] = ..., goal_name: _Optional[str] = ..., adapter: _Optional[_Union[ArtifactRef, _Mapping]] = ..., approved_by: _Optional[str] = ..., reason: _Optional[str] = ..., eval_id: _Optional[str] = ..., run_id: _Optional[str] = ..., goal_version: _Optional[str] = ...) -> None: ...

class DeploymentRejected(_message.Message):
    __slots__ = ("deployment_id", "goal_name", "adapter", "rejected_by", "reason", "eval_id", "run_id", "goal_version")
    DEPLOYMENT_ID_FIELD_NUMBER: _ClassVar[int]
    GOAL_NAME_FIELD_NUMBER: _ClassVar[int]
    ADAPTER_FIELD_NUMBER: _ClassVar[int]
    REJECTED_BY_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    EVAL_ID_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    GOAL_VERSION_FIELD_NUMBER: _ClassVar[int]
    deployment_id: str
    goal_name: str
    adapter: ArtifactRef
    rejected_by: str
    reason: str
    eval_id: str
    run_id: str
    goal_version: str
    def __init__(self, deployment_id: _Optional[str] = ..., goal_name: _Optional[str] = ..., adapter: _Optional[_Union[ArtifactRef, _Mapping]] = ..., rejected_by: _Optional[str] = ..., reason: _Optional[str] = ..., eval_id: _Optional[str] = ..., run_id: _Optional[str] = ..., goal_version: _Optional[str] = ...) -> None: ...

class DeploymentHeld(_message.Message):
    __slots__ = ("deployment_id", "goal_name", "adapter", "held_by", "reason", "percent", "state")
    DEPLOYMENT_ID_FIELD_NUMBER: _ClassVar[int]
    GOAL_NAME_FIELD_NUMBER: _ClassVar[int]
    ADAPTER_FIELD_NUMBER: _ClassVar[int]
    HELD_BY_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    PERCENT_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    deployment_id: str
    goal_name: str
    adapter: ArtifactRef
    held_by: str
    reason: str
    percent: int
    state: str
    def __init__(self, deployment_id: _Optional[str] = ..., goal_name: _Optional[str] = ..., adapter: _Optional[_Union[ArtifactRef, _Mapping]] = ..., held_by: _Optional[str] = ..., reason: _Optional[str] = ..., percent: _Optional[int] = ..., state: _Optional[str] = ...) -> None: ...

class DeploymentResumed(_message.Message):
    __slots__ = ("deployment_id", "goal_name", "adapter", "resumed_by", "reason", "held_seconds")
    DEPLOYMENT_ID_FIELD_NUMBER: _ClassVar[int]
    GOAL_NAME_FIELD_NUMBER: _ClassVar[int]
    ADAPTER_FIELD_NUMBER: _ClassVar[int]
    RESUMED_BY_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    HELD_SECONDS_FIELD_NUMBER: _ClassVar[int]
    deployment_id: str
    goal_name: str
    adapter: ArtifactRef
    resumed_by: str
    reason: str
    held_seconds: float
    def __init__(self, deployment_id: _Optional[str] = ..., goal_name: _Optional[str] = ..., adapter: _Optional[_Union[ArtifactRef, _Mapping]] = ..., resumed_by: _Optional[str] = ..., reason: _Optional[str] = ..., held_seconds: _Optional[float] = ...) -> None: ...

class InferenceLogged(_message.Message):
    __slots__ = ("request_id", "goal_name", "goal_version", "adapter_digest", "dataset_version", "deployment_id", "variant", "label", "confidence", "margin", "latency_ms", "text_length", "token_count", "embedding_projection", "text", "escalated", "error", "error_code", "served_at_unix_ms", "tenant", "trace_id")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    GOAL_NAME_FIELD_NUMBER: _ClassVar[int]
    GOAL_VERSION_FIELD_NUMBER: _ClassVar[int]
    ADAPTER_DIGEST_FIELD_NUMBER: _ClassVar[int]
    DATASET_VERSION_FIELD_NUMBER: _ClassVar[int]
    DEPLOYMENT_ID_FIELD_NUMBER: _ClassVar[int]
    VARIANT_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    MARGIN_FIELD_NUMBER: _ClassVar[int]
    LATENCY_MS_FIELD_NUMBER: _ClassVar[int]
    TEXT_LENGTH_FIELD_NUMBER: _ClassVar[int]
    TOKEN_COUNT_FIELD_NUMBER: _ClassVar[int]
    EMBEDDING_PROJECTION_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    ESCALATED_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    ERROR_CODE_FIELD_NUMBER: _ClassVar[int]
    SERVED_AT_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    TRACE_ID_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    goal_name: str
    goal_version: str
    adapter_digest: str
    dataset_version: str
    deployment_id: str
    variant: str
    label: str
    confidence: float
    margin: float
    latency_ms: float
    text_length: int
    token_count: int
    embedding_projection: _containers.RepeatedScalarFieldContainer[float]
    text: str
    escalated: bool
    error: bool
    error_code: str
    served_at_unix_ms: int
    tenant: str
    trace_id: str
    def __init__(self, request_id: _Optional[str] = ..., goal_name: _Optional[str] = ..., goal_version: _Optional[str] = ..., adapter_digest: _Optional[str] = ..., dataset_version: _Optional[str] = ..., deployment_id: _Optional[str] = ..., variant: _Optional[str] = ..., label: _Optional[str] = ..., confidence: _Optional[float] = ..., margin: _Optional[float] = ..., latency_ms: _Optional[float] = ..., text_length: _Optional[int] = ..., token_count: _Optional[int] = ..., embedding_projection: _Optional[_Iterable[float]] = ..., text: _Optional[str] = ..., escalated: _Optional[bool] = ..., error: _Optional[bool] = ..., error_code: _Optional[str] = ..., served_at_unix_ms: _Optional[int] = ..., tenant: _Optional[str] = ..., trace_id: _Optional[str] = ...) -> None: ...

class ColumnDrift(_message.Message):
    __slots__ = ("column", "test", "statistic", "p_value", "drifted")
    COLUMN_FIELD_NUMBER: _ClassVar[int]
    TEST_FIELD_NUMBER: _ClassVar[int]
    STATISTIC_FIELD_NUMBER: _ClassVar[int]
    P_VALUE_FIELD_NUMBER: _ClassVar[int]
    DRIFTED_FIELD_NUMBER: _ClassVar[int]
    column: str
    test: str
    statistic: float
    p_value: float
    drifted: bool
    def __init__(self, column: _Optional[str] = ..., test: _Optional[str] = ..., statistic: _Optional[float] = ..., p_value: _Optional[float] = ..., drifted: _Optional[bool] = ...) -> None: ...

class DriftDetected(_message.Message):
    __slots__ = ("goal_name", "adapter_digest", "deployment_id", "drift_share", "consecutive_windows", "columns", "report_html", "verdict", "incident_id", "window_index", "correction")
    GOAL_NAME_FIELD_NUMBER: _ClassVar[int]
    ADAPTER_DIGEST_FIELD_NUMBER: _ClassVar[int]
    DEPLOYMENT_ID_FIELD_NUMBER: _ClassVar[int]
    DRIFT_SHARE_FIELD_NUMBER: _ClassVar[int]
    CONSECUTIVE_WINDOWS_FIELD_NUMBER: _ClassVar[int]
    COLUMNS_FIELD_NUMBER: _ClassVar[int]
    REPORT_HTML_FIELD_NUMBER: _ClassVar[int]
    VERDICT_FIELD_NUMBER: _ClassVar[int]
    INCIDENT_ID_FIELD_NUMBER: _ClassVar[int]
    WINDOW_INDEX_FIELD_NUMBER: _ClassVar[int]
    CORRECTION_FIELD_NUMBER: _ClassVar[int]
    goal_name: str
    adapter_digest: str
    deployment_id: str
    drift_share: float
    consecutive_windows: int
    columns: _containers.RepeatedCompositeFieldContainer[ColumnDrift]
    report_html: ArtifactRef
    verdict: ArtifactRef
    incident_id: str
    window_index: int
    correction: str
    def __init__(self, goal_name: _Optional[str] = ..., adapter_digest: _Optional[str] = ..., deployment_id: _Optional[str] = ..., drift_share: _Optional[float] = ..., consecutive_windows: _Optional[int] = ..., columns: _Optional[_Iterable[_Union[ColumnDrift, _Mapping]]] = ..., report_html: _Optional[_Union[ArtifactRef, _Mapping]] = ..., verdict: _Optional[_Union[ArtifactRef, _Mapping]] = ..., incident_id: _Optional[str] = ..., window_index: _Optional[int] = ..., correction: _Optional[str] = ...) -> None: ...

class FeedbackRecorded(_message.Message):
    __slots__ = ("feedback_id", "request_id", "goal_name", "label", "reference", "source", "recorded_by", "note", "observed_at_unix_ms")
    FEEDBACK_ID_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    GOAL_NAME_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    RECORDED_BY_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    OBSERVED_AT_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    feedback_id: str
    request_id: str
    goal_name: str
    label: str
    reference: str
    source: str
    recorded_by: str
    note: str
    observed_at_unix_ms: int
    def __init__(self, feedback_id: _Optional[str] = ..., request_id: _Optional[str] = ..., goal_name: _Optional[str] = ..., label: _Optional[str] = ..., reference: _Optional[str] = ..., source: _Optional[str] = ..., recorded_by: _Optional[str] = ..., note: _Optional[str] = ..., observed_at_unix_ms: _Optional[int] = ...) -> None: ...

class RollbackRequested(_message.Message):
    __slots__ = ("goal_name", "adapter_digest", "deployment_id", "reason", "incident_id", "requested_by", "numbers", "retrain")
    class NumbersEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    GOAL_NAME_FIELD_NUMBER: _ClassVar[int]
    ADAPTER_DIGEST_FIELD_NUMBER: _ClassVar[int]
    DEPLOYMENT_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    INCIDENT_ID_FIELD_NUMBER: _ClassVar[int]
    REQUESTED_BY_FIELD_NUMBER: _ClassVar[int]
    NUMBERS_FIELD_NUMBER: _ClassVar[int]
    RETRAIN_FIELD_NUMBER: _ClassVar[int]
    goal_name: str
    adapter_digest: str
    deployment_id: str
    reason: str
    incident_id: str
    requested_by: str
    numbers: _containers.ScalarMap[str, float]
    retrain: bool
    def __init__(self, goal_name: _Optional[str] = ..., adapter_digest: _Optional[str] = ..., deployment_id: _Optional[str] = ..., reason: _Optional[str] = ..., incident_id: _Optional[str] = ..., requested_by: _Optional[str] = ..., numbers: _Optional[_Mapping[str, float]] = ..., retrain: _Optional[bool] = ...) -> None: ...

class RetentionApplied(_message.Message):
    __slots__ = ("goal_name", "event_type", "retention_days", "cutoff_unix_ms", "first_seq", "last_seq", "records", "redactions_digest", "requested_at_unix_ms")
    GOAL_NAME_FIELD_NUMBER: _ClassVar[int]
    EVENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    RETENTION_DAYS_FIELD_NUMBER: _ClassVar[int]
    CUTOFF_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    FIRST_SEQ_FIELD_NUMBER: _ClassVar[int]
    LAST_SEQ_FIELD_NUMBER: _ClassVar[int]
    RECORDS_FIELD_NUMBER: _ClassVar[int]
    REDACTIONS_DIGEST_FIELD_NUMBER: _ClassVar[int]
    REQUESTED_AT_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    goal_name: str
    event_type: str
    retention_days: int
    cutoff_unix_ms: int
    first_seq: int
    last_seq: int
    records: int
    redactions_digest: str
    requested_at_unix_ms: int
    def __init__(self, goal_name: _Optional[str] = ..., event_type: _Optional[str] = ..., retention_days: _Optional[int] = ..., cutoff_unix_ms: _Optional[int] = ..., first_seq: _Optional[int] = ..., last_seq: _Optional[int] = ..., records: _Optional[int] = ..., redactions_digest: _Optional[str] = ..., requested_at_unix_ms: _Optional[int] = ...) -> None: ...

class AlertRaised(_message.Message):
    __slots__ = ("alert_id", "severity", "goal_name", "summary", "details", "source_event_id", "source_event_type", "report_uri", "trace_id", "kind", "adapter_digest")
    ALERT_ID_FIELD_NUMBER: _ClassVar[int]
    SEVERITY_FIELD_NUMBER: _ClassVar[int]
    GOAL_NAME_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    DETAILS_FIELD_NUMBER: _ClassVar[int]
    SOURCE_EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    SOURCE_EVENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    REPORT_URI_FIELD_NUMBER: _ClassVar[int]
    TRACE_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    ADAPTER_DIGEST_FIELD_NUMBER: _ClassVar[int]
    alert_id: str
    severity: str
    goal_name: str
    summary: str
    details: str
    source_event_id: str
    source_event_type: str
    report_uri: str
    trace_id: str
    kind: str
    adapter_digest: str
    def __init__(self, alert_id: _Optional[str] = ..., severity: _Optional[str] = ..., goal_name: _Optional[str] = ..., summary: _Optional[str] = ..., details: _Optional[str] = ..., source_event_id: _Optional[str] = ..., source_event_type: _Optional[str] = ..., report_uri: _Optional[str] = ..., trace_id: _Optional[str] = ..., kind: _Optional[str] = ..., adapter_digest: _Optional[str] = ...) -> None: ...

class DeadLetter(_message.Message):
    __slots__ = ("original_topic", "partition", "offset", "original_key", "original_value", "original_headers", "error", "error_type", "consumer", "attempts", "failed_at_unix_ms")
    ORIGINAL_TOPIC_FIELD_NUMBER: _ClassVar[int]
    PARTITION_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    ORIGINAL_KEY_FIELD_NUMBER: _ClassVar[int]
    ORIGINAL_VALUE_FIELD_NUMBER: _ClassVar[int]
    ORIGINAL_HEADERS_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    ERROR_TYPE_FIELD_NUMBER: _ClassVar[int]
    CONSUMER_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    FAILED_AT_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    original_topic: str
    partition: int
    offset: int
    original_key: bytes
    original_value: bytes
    original_headers: _containers.RepeatedCompositeFieldContainer[Header]
    error: str
    error_type: str
    consumer: str
    attempts: int
    failed_at_unix_ms: int
    def __init__(self, original_topic: _Optional[str] = ..., partition: _Optional[int] = ..., offset: _Optional[int] = ..., original_key: _Optional[bytes] = ..., original_value: _Optional[bytes] = ..., original_headers: _Optional[_Iterable[_Union[Header, _Mapping]]] = ..., error: _Optional[str] = ..., error_type: _Optional[str] = ..., consumer: _Optional[str] = ..., attempts: _Optional[int] = ..., failed_at_unix_ms: _Optional[int] = ...) -> None: ...
