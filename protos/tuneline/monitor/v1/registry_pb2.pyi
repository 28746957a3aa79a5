from tuneline.events.v1 import events_pb2 as _events_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ListGoalsRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class GoalVersion(_message.Message):
    __slots__ = ("version", "applied_by", "applied_unix_ms", "event_id")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    APPLIED_BY_FIELD_NUMBER: _ClassVar[int]
    APPLIED_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    version: str
    applied_by: str
    applied_unix_ms: int
    event_id: str
    def __init__(self, version: _Optional[str] = ..., applied_by: _Optional[str] = ..., applied_unix_ms: _Optional[int] = ..., event_id: _Optional[str] = ...) -> None: ...

class GoalRecord(_message.Message):
    __slots__ = ("name", "tenant", "version_in_force", "versions")
    NAME_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    VERSION_IN_FORCE_FIELD_NUMBER: _ClassVar[int]
    VERSIONS_FIELD_NUMBER: _ClassVar[int]
    name: str
    tenant: str
    version_in_force: str
    versions: _containers.RepeatedCompositeFieldContainer[GoalVersion]
    def __init__(self, name: _Optional[str] = ..., tenant: _Optional[str] = ..., version_in_force: _Optional[str] = ..., versions: _Optional[_Iterable[_Union[GoalVersion, _Mapping]]] = ...) -> None: ...

class ListGoalsResponse(_message.Message):
    __slots__ = ("goals",)
    GOALS_FIELD_NUMBER: _ClassVar[int]
    goals: _containers.RepeatedCompositeFieldContainer[GoalRecord]
    def __init__(self, goals: _Optional[_Iterable[_Union[GoalRecord, _Mapping]]] = ...) -> None: ...

class ListDatasetsRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class DatasetRecord(_message.Message):
    __slots__ = ("name", "version", "status", "train_rows", "eval_rows", "labels", "certificate", "certificate_ref", "publisher", "source_uri", "summary", "time_unix_ms", "published_event_id", "goals")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    TRAIN_ROWS_FIELD_NUMBER: _ClassVar[int]
    EVAL_ROWS_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    CERTIFICATE_FIELD_NUMBER: _ClassVar[int]
    CERTIFICATE_REF_FIELD_NUMBER: _ClassVar[int]
    PUBLISHER_FIELD_NUMBER: _ClassVar[int]
    SOURCE_URI_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    TIME_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    PUBLISHED_EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    GOALS_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: str
    status: str
    train_rows: int
    eval_rows: int
    labels: _containers.RepeatedScalarFieldContainer[str]
    certificate: _containers.RepeatedCompositeFieldContainer[_events_pb2.GateResult]
    certificate_ref: _events_pb2.ArtifactRef
    publisher: str
    source_uri: str
    summary: str
    time_unix_ms: int
    published_event_id: str
    goals: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, name: _Optional[str] = ..., version: _Optional[str] = ..., status: _Optional[str] = ..., train_rows: _Optional[int] = ..., eval_rows: _Optional[int] = ..., labels: _Optional[_Iterable[str]] = ..., certificate: _Optional[_Iterable[_Union[_events_pb2.GateResult, _Mapping]]] = ..., certificate_ref: _Optional[_Union[_events_pb2.ArtifactRef, _Mapping]] = ..., publisher: _Optional[str] = ..., source_uri: _Optional[str] = ..., summary: _Optional[str] = ..., time_unix_ms: _Optional[int] = ..., published_event_id: _Optional[str] = ..., goals: _Optional[_Iterable[str]] = ...) -> None: ...

class ListDatasetsResponse(_message.Message):
    __slots__ = ("datasets",)
    DATASETS_FIELD_NUMBER: _ClassVar[int]
    datasets: _containers.RepeatedCompositeFieldContainer[DatasetRecord]
    def __init__(self, datasets: _Optional[_Iterable[_Union[DatasetRecord, _Mapping]]] = ...) -> None: ...

class ListRunsRequest(_message.Message):
    __slots__ = ("goal", "run_id", "limit")
    GOAL_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    goal: str
    run_id: str
    limit: int
    def __init__(self, goal: _Optional[str] = ..., run_id: _Optional[str] = ..., limit: _Optional[int] = ...) -> None: ...

class RunRecord(_message.Message):
    __slots__ = ("run_id", "goal_name", "goal_version", "dataset_name", "dataset_version", "status", "failure_reason", "method", "adapter", "envelope", "metrics", "wall_seconds", "attempts", "started_unix_ms", "finished_unix_ms", "envelope_json")
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
    METHOD_FIELD_NUMBER: _ClassVar[int]
    ADAPTER_FIELD_NUMBER: _ClassVar[int]
    ENVELOPE_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    WALL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    STARTED_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    FINISHED_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    ENVELOPE_JSON_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    goal_name: str
    goal_version: str
    dataset_name: str
    dataset_version: str
    status: str
    failure_reason: str
    method: str
    adapter: _events_pb2.ArtifactRef
    envelope: _events_pb2.ArtifactRef
    metrics: _containers.ScalarMap[str, float]
    wall_seconds: float
    attempts: int
    started_unix_ms: int
    finished_unix_ms: int
    envelope_json: str
    def __init__(self, run_id: _Optional[str] = ..., goal_name: _Optional[str] = ..., goal_version: _Optional[str] = ..., dataset_name: _Optional[str] = ..., dataset_version: _Optional[str] = ..., status: _Optional[str] = ..., failure_reason: _Optional[str] = ..., method: _Optional[str] = ..., adapter: _Optional[_Union[_events_pb2.ArtifactRef, _Mapping]] = ..., envelope: _Optional[_Union[_events_pb2.ArtifactRef, _Mapping]] = ..., metrics: _Optional[_Mapping[str, float]] = ..., wall_seconds: _Optional[float] = ..., attempts: _Optional[int] = ..., started_unix_ms: _Optional[int] = ..., finished_unix_ms: _Optional[int] = ..., envelope_json: _Optional[str] = ...) -> None: ...

class ListRunsResponse(_message.Message):
    __slots__ = ("runs",)
    RUNS_FIELD_NUMBER: _ClassVar[int]
    runs: _containers.RepeatedCompositeFieldContainer[RunRecord]
    def __init__(self, runs: _Optional[_Iterable[_Union[RunRecord, _Mapping]]] = ...) -> None: ...

class ListEvalsRequest(_message.Message):
    __slots__ = ("goal", "id", "limit")
    GOAL_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    goal: str
    id: str
    limit: int
    def __init__(self, goal: _Optional[str] = ..., id: _Optional[str] = ..., limit: _Optional[int] = ...) -> None: ...

class EvalRecord(_message.Message):
    __slots__ = ("outcome", "time_unix_ms")
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    TIME_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    outcome: _events_pb2.EvalOutcome
    time_unix_ms: int
    def __init__(self, outcome: _Optional[_Union[_events_pb2.EvalOutcome, _Mapping]] = ..., time_unix_ms: _Optional[int] = ...) -> None: ...

class ListEvalsResponse(_message.Message):
    __slots__ = ("evals",)
    EVALS_FIELD_NUMBER: _ClassVar[int]
    evals: _containers.RepeatedCompositeFieldContainer[EvalRecord]
    def __init__(self, evals: _Optional[_Iterable[_Union[EvalRecord, _Mapping]]] = ...) -> None: ...

class ListModelsRequest(_message.Message):
    __slots__ = ("goal", "stage")
    GOAL_FIELD_NUMBER: _ClassVar[int]
    STAGE_FIELD_NUMBER: _ClassVar[int]
    goal: str
    stage: str
    def __init__(self, goal: _Optional[str] = ..., stage: _Optional[str] = ...) -> None: ...

class ModelEvent(_message.Message):
    __slots__ = ("event", "time_unix_ms", "summary", "by")
    EVENT_FIELD_NUMBER: _ClassVar[int]
    TIME_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    BY_FIELD_NUMBER: _ClassVar[int]
    event: str
    time_unix_ms: int
    summary: str
    by: str
    def __init__(self, event: _Optional[str] = ..., time_unix_ms: _Optional[int] = ..., summary: _Optional[str] = ..., by: _Optional[str] = ...) -> None: ...

class ModelRecord(_message.Message):
    __slots__ = ("goal_name", "adapter_digest", "stage", "run_id", "eval_id", "dataset_version", "goal_version", "method", "metrics", "held", "history")
    class MetricsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    GOAL_NAME_FIELD_NUMBER: _ClassVar[int]
    ADAPTER_DIGEST_FIELD_NUMBER: _ClassVar[int]
    STAGE_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    EVAL_ID_FIELD_NUMBER: _ClassVar[int]
    DATASET_VERSION_FIELD_NUMBER: _ClassVar[int]
    GOAL_VERSION_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    HELD_FIELD_NUMBER: _ClassVar[int]
    HISTORY_FIELD_NUMBER: _ClassVar[int]
    goal_name: str
    adapter_digest: str
    stage: str
    run_id: str
    eval_id: str
    dataset_version: str
    goal_version: str
    method: str
    metrics: _containers.ScalarMap[str, float]
    held: bool
    history: _containers.RepeatedCompositeFieldContainer[ModelEvent]
    def __init__(self, goal_name: _Optional[str] = ..., adapter_digest: _Optional[str] = ..., stage: _Optional[str] = ..., run_id: _Optional[str] = ..., eval_id: _Optional[str] = ..., dataset_version: _Optional[str] = ..., goal_version: _Optional[str] = ..., method: _Optional[str] = ..., metrics: _Optional[_Mapping[str, float]] = ..., held: _Optional[bool] = ..., history: _Optional[_Iterable[_Union[ModelEvent, _Mapping]]] = ...) -> None: ...

class ListModelsResponse(_message.Message):
    __slots__ = ("models",)
    MODELS_FIELD_NUMBER: _ClassVar[int]
    models: _containers.RepeatedCompositeFieldContainer[ModelRecord]
    def __init__(self, models: _Optional[_Iterable[_Union[ModelRecord, _Mapping]]] = ...) -> None: ...

class CompareRunsRequest(_message.Message):
    __slots__ = ("a", "b", "max_examples")
    A_FIELD_NUMBER: _ClassVar[int]
    B_FIELD_NUMBER: _ClassVar[int]
    MAX_EXAMPLES_FIELD_NUMBER: _ClassVar[int]
    a: str
    b: str
    max_examples: int
    def __init__(self, a: _Optional[str] = ..., b: _Optional[str] = ..., max_examples: _Optional[int] = ...) -> None: ...

class EnvelopeChange(_message.Message):
    __slots__ = ("section", "path", "a", "b")
    SECTION_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    A_FIELD_NUMBER: _ClassVar[int]
    B_FIELD_NUMBER: _ClassVar[int]
    section: str
    path: str
    a: str
    b: str
    def __init__(self, section: _Optional[str] = ..., path: _Optional[str] = ..., a: _Optional[str] = ..., b: _Optional[str] = ...) -> None: ...

class Delta(_message.Message):
    __slots__ = ("name", "a", "b", "delta")
    NAME_FIELD_NUMBER: _ClassVar[int]
    A_FIELD_NUMBER: _ClassVar[int]
    B_FIELD_NUMBER: _ClassVar[int]
    DELTA_FIELD_NUMBER: _ClassVar[int]
    name: str
    a: float
    b: float
    delta: float
    def __init__(self, name: _Optional[str] = ..., a: _Optional[float] = ..., b: _Optional[float] = ..., delta: _Optional[float] = ...) -> None: ...

class CriterionDelta(_message.Message):
    __slots__ = ("name", "a", "b", "delta", "a_passed", "b_passed", "comparator", "threshold")
    NAME_FIELD_NUMBER: _ClassVar[int]
    A_FIELD_NUMBER: _ClassVar[int]
    B_FIELD_NUMBER: _ClassVar[int]
    DELTA_FIELD_NUMBER: _ClassVar[int]
    A_PASSED_FIELD_NUMBER: _ClassVar[int]
    B_PASSED_FIELD_NUMBER: _ClassVar[int]
    COMPARATOR_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    name: str
    a: float
    b: float
    delta: float
    a_passed: bool
    b_passed: bool
    comparator: str
    threshold: float
    def __init__(self, name: _Optional[str] = ..., a: _Optional[float] = ..., b: _Optional[float] = ..., delta: _Optional[float] = ..., a_passed: _Optional[bool] = ..., b_passed: _Optional[bool] = ..., comparator: _Optional[str] = ..., threshold: _Optional[float] = ...) -> None: ...

class PairedTest(_message.Message):
    __slots__ = ("paired", "reason", "test", "rows", "only_a_correct", "only_b_correct", "p_value", "accuracy_a", "accuracy_b")
    PAIRED_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    TEST_FIELD_NUMBER: _ClassVar[int]
    ROWS_FIELD_NUMBER: _ClassVar[int]
    ONLY_A_CORRECT_FIELD_NUMBER: _ClassVar[int]
    ONLY_B_CORRECT_FIELD_NUMBER: _ClassVar[int]
    P_VALUE_FIELD_NUMBER: _ClassVar[int]
    ACCURACY_A_FIELD_NUMBER: _ClassVar[int]
    ACCURACY_B_FIELD_NUMBER: _ClassVar[int]
    paired: bool
    reason: str
    test: str
    rows: int
    only_a_correct: int
    only_b_correct: int
    p_value: float
    accuracy_a: float
    accuracy_b: float
    def __init__(self, paired: _Optional[bool] = ..., reason: _Optional[str] = ..., test: _Optional[str] = ..., rows: _Optional[int] = ..., only_a_correct: _Optional[int] = ..., only_b_correct: _Optional[int] = ..., p_value: _Optional[float] = ..., accuracy_a: _Optional[float] = ..., accuracy_b: _Optional[float] = ...) -> None: ...

class ChangedExample(_message.Message):
    __slots__ = ("row", "text", "truth", "a", "b")
    ROW_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    TRUTH_FIELD_NUMBER: _ClassVar[int]
    A_FIELD_NUMBER: _ClassVar[int]
    B_FIELD_NUMBER: _ClassVar[int]
    row: int
    text: str
    truth: str
    a: str
    b: str
    def __init__(self, row: _Optional[int] = ..., text: _Optional[str] = ..., truth: _Optional[str] = ..., a: _Optional[str] = ..., b: _Optional[str] = ...) -> None: ...

class CompareRunsResponse(_message.Message):
    __slots__ = ("run_a", "run_b", "eval_a", "eval_b", "envelope", "metrics", "criteria", "labels", "slices", "paired", "changed", "changed_total", "problems")
    RUN_A_FIELD_NUMBER: _ClassVar[int]
    RUN_B_FIELD_NUMBER: _ClassVar[int]
    EVAL_A_FIELD_NUMBER: _ClassVar[int]
    EVAL_B_FIELD_NUMBER: _ClassVar[int]
    ENVELOPE_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    CRITERIA_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    SLICES_FIELD_NUMBER: _ClassVar[int]
    PAIRED_FIELD_NUMBER: _ClassVar[int]
    CHANGED_FIELD_NUMBER: _ClassVar[int]
    CHANGED_TOTAL_FIELD_NUMBER: _ClassVar[int]
    PROBLEMS_FIELD_NUMBER: _ClassVar[int]
    run_a: RunRecord
    run_b: RunRecord
    eval_a: str
    eval_b: str
    envelope: _containers.RepeatedCompositeFieldContainer[EnvelopeChange]
    metrics: _containers.RepeatedCompositeFieldContainer[Delta]
    criteria: _containers.RepeatedCompositeFieldContainer[CriterionDelta]
    labels: _containers.RepeatedCompositeFieldContainer[Delta]
    slices: _containers.RepeatedCompositeFieldContainer[Delta]
    paired: PairedTest
    changed: _containers.RepeatedCompositeFieldContainer[ChangedExample]
    changed_total: int
    problems: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, run_a: _Optional[_Union[RunRecord, _Mapping]] = ..., run_b: _Optional[_Union[RunRecord, _Mapping]] = ..., eval_a: _Optional[str] = ..., eval_b: _Optional[str] = ..., envelope: _Optional[_Iterable[_Union[EnvelopeChange, _Mapping]]] = ..., metrics: _Optional[_Iterable[_Union[Delta, _Mapping]]] = ..., criteria: _Optional[_Iterable[_Union[CriterionDelta, _Mapping]]] = ..., labels: _Optional[_Iterable[_Union[Delta, _Mapping]]] = ..., slices: _Optional[_Iterable[_Union[Delta, _Mapping]]] = ..., paired: _Optional[_Union[PairedTest, _Mapping]] = ..., changed: _Optional[_Iterable[_Union[ChangedExample, _Mapping]]] = ..., changed_total: _Optional[int] = ..., problems: _Optional[_Iterable[str]] = ...) -> None: ...
