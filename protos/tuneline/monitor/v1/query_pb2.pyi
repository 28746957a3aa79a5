from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class LineageRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class LineageStep(_message.Message):
    __slots__ = ("stage", "event_type", "event_id", "time", "summary", "facts", "artifacts")
    class FactsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    STAGE_FIELD_NUMBER: _ClassVar[int]
    EVENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    FACTS_FIELD_NUMBER: _ClassVar[int]
    ARTIFACTS_FIELD_NUMBER: _ClassVar[int]
    stage: str
    event_type: str
    event_id: str
    time: str
    summary: str
    facts: _containers.ScalarMap[str, str]
    artifacts: _containers.RepeatedCompositeFieldContainer[ArtifactCheck]
    def __init__(self, stage: _Optional[str] = ..., event_type: _Optional[str] = ..., event_id: _Optional[str] = ..., time: _Optional[str] = ..., summary: _Optional[str] = ..., facts: _Optional[_Mapping[str, str]] = ..., artifacts: _Optional[_Iterable[_Union[ArtifactCheck, _Mapping]]] = ...) -> None: ...

class ArtifactCheck(_message.Message):
    __slots__ = ("name", "digest", "uri", "verified", "error")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    URI_FIELD_NUMBER: _ClassVar[int]
    VERIFIED_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    name: str
    digest: str
    uri: str
    verified: bool
    error: str
    def __init__(self, name: _Optional[str] = ..., digest: _Optional[str] = ..., uri: _Optional[str] = ..., verified: _Optional[bool] = ..., error: _Optional[str] = ...) -> None: ...

class LineageResponse(_message.Message):
    __slots__ = ("id", "kind", "steps", "complete", "verified", "problems")
    ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    STEPS_FIELD_NUMBER: _ClassVar[int]
    COMPLETE_FIELD_NUMBER: _ClassVar[int]
    VERIFIED_FIELD_NUMBER: _ClassVar[int]
    PROBLEMS_FIELD_NUMBER: _ClassVar[int]
    id: str
    kind: str
    steps: _containers.RepeatedCompositeFieldContainer[LineageStep]
    complete: bool
    verified: bool
    problems: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, id: _Optional[str] = ..., kind: _Optional[str] = ..., steps: _Optional[_Iterable[_Union[LineageStep, _Mapping]]] = ..., complete: _Optional[bool] = ..., verified: _Optional[bool] = ..., problems: _Optional[_Iterable[str]] = ...) -> None: ...

class VerifyLedgerRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class VerifyLedgerResponse(_message.Message):
    __slots__ = ("ok", "records", "first_bad_sequence", "problem", "head_hash")
    OK_FIELD_NUMBER: _ClassVar[int]
    RECORDS_FIELD_NUMBER: _ClassVar[int]
    FIRST_BAD_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    PROBLEM_FIELD_NUMBER: _ClassVar[int]
    HEAD_HASH_FIELD_NUMBER: _ClassVar[int]
    ok: bool
    records: int
    first_bad_sequence: int
    problem: str
    head_hash: str
    def __init__(self, ok: _Optional[bool] = ..., records: _Optional[int] = ..., first_bad_sequence: _Optional[int] = ..., problem: _Optional[str] = ..., head_hash: _Optional[str] = ...) -> None: ...

class LedgerHeadRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class LedgerHeadResponse(_message.Message):
    __slots__ = ("sequence", "head_hash")
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    HEAD_HASH_FIELD_NUMBER: _ClassVar[int]
    sequence: int
    head_hash: str
    def __init__(self, sequence: _Optional[int] = ..., head_hash: _Optional[str] = ...) -> None: ...

class ListIncidentsRequest(_message.Message):
    __slots__ = ("limit", "open_only")
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    OPEN_ONLY_FIELD_NUMBER: _ClassVar[int]
    limit: int
    open_only: bool
    def __init__(self, limit: _Optional[int] = ..., open_only: _Optional[bool] = ...) -> None: ...

class Incident(_message.Message):
    __slots__ = ("key", "kind", "goal", "severity", "summary", "details", "report_uri", "trace_id", "alerts", "status", "opened_unix_ms", "resolved_unix_ms", "deliveries_pending", "deliveries_failed")
    KEY_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    GOAL_FIELD_NUMBER: _ClassVar[int]
    SEVERITY_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    DETAILS_FIELD_NUMBER: _ClassVar[int]
    REPORT_URI_FIELD_NUMBER: _ClassVar[int]
    TRACE_ID_FIELD_NUMBER: _ClassVar[int]
    ALERTS_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    OPENED_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    RESOLVED_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    DELIVERIES_PENDING_FIELD_NUMBER: _ClassVar[int]
    DELIVERIES_FAILED_FIELD_NUMBER: _ClassVar[int]
    key: str
    kind: str
    goal: str
    severity: str
    summary: str
    details: str
    report_uri: str
    trace_id: str
    alerts: int
    status: str
    opened_unix_ms: int
    resolved_unix_ms: int
    deliveries_pending: int
    deliveries_failed: int
    def __init__(self, key: _Optional[str] = ..., kind: _Optional[str] = ..., goal: _Optional[str] = ..., severity: _Optional[str] = ..., summary: _Optional[str] = ..., details: _Optional[str] = ..., report_uri: _Optional[str] = ..., trace_id: _Optional[str] = ..., alerts: _Optional[int] = ..., status: _Optional[str] = ..., opened_unix_ms: _Optional[int] = ..., resolved_unix_ms: _Optional[int] = ..., deliveries_pending: _Optional[int] = ..., deliveries_failed: _Optional[int] = ...) -> None: ...

class ListIncidentsResponse(_message.Message):
    __slots__ = ("incidents",)
    INCIDENTS_FIELD_NUMBER: _ClassVar[int]
    incidents: _containers.RepeatedCompositeFieldContainer[Incident]
    def __init__(self, incidents: _Optional[_Iterable[_Union[Incident, _Mapping]]] = ...) -> None: ...

class ListDriftWindowsRequest(_message.Message):
    __slots__ = ("goal", "limit", "drifted_only")
    GOAL_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    DRIFTED_ONLY_FIELD_NUMBER: _ClassVar[int]
    goal: str
    limit: int
    drifted_only: bool
    def __init__(self, goal: _Optional[str] = ..., limit: _Optional[int] = ..., drifted_only: _Optional[bool] = ...) -> None: ...

class DriftWindow(_message.Message):
    __slots__ = ("adapter_digest", "index", "drifted", "drift_share", "verdict_digest", "verdict_uri", "report_digest", "report_uri", "span_ms")
    ADAPTER_DIGEST_FIELD_NUMBER: _ClassVar[int]
    INDEX_FIELD_NUMBER: _ClassVar[int]
    DRIFTED_FIELD_NUMBER: _ClassVar[int]
    DRIFT_SHARE_FIELD_NUMBER: _ClassVar[int]
    VERDICT_DIGEST_FIELD_NUMBER: _ClassVar[int]
    VERDICT_URI_FIELD_NUMBER: _ClassVar[int]
    REPORT_DIGEST_FIELD_NUMBER: _ClassVar[int]
    REPORT_URI_FIELD_NUMBER: _ClassVar[int]
    SPAN_MS_FIELD_NUMBER: _ClassVar[int]
    adapter_digest: str
    index: int
    drifted: bool
    drift_share: float
    verdict_digest: str
    verdict_uri: str
    report_digest: str
    report_uri: str
    span_ms: int
    def __init__(self, adapter_digest: _Optional[str] = ..., index: _Optional[int] = ..., drifted: _Optional[bool] = ..., drift_share: _Optional[float] = ..., verdict_digest: _Optional[str] = ..., verdict_uri: _Optional[str] = ..., report_digest: _Optional[str] = ..., report_uri: _Optional[str] = ..., span_ms: _Optional[int] = ...) -> None: ...

class ListDriftWindowsResponse(_message.Message):
    __slots__ = ("windows",)
    WINDOWS_FIELD_NUMBER: _ClassVar[int]
    windows: _containers.RepeatedCompositeFieldContainer[DriftWindow]
    def __init__(self, windows: _Optional[_Iterable[_Union[DriftWindow, _Mapping]]] = ...) -> None: ...
