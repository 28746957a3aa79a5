from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class PredictRequest(_message.Message):
    __slots__ = ("goal", "text", "request_id", "tenant", "top_k")
    GOAL_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    TOP_K_FIELD_NUMBER: _ClassVar[int]
    goal: str
    text: str
    request_id: str
    tenant: str
    top_k: int
    def __init__(self, goal: _Optional[str] = ..., text: _Optional[str] = ..., request_id: _Optional[str] = ..., tenant: _Optional[str] = ..., top_k: _Optional[int] = ...) -> None: ...

class LabelScore(_message.Message):
    __slots__ = ("label", "score")
    LABEL_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    label: str
    score: float
    def __init__(self, label: _Optional[str] = ..., score: _Optional[float] = ...) -> None: ...

class PredictResponse(_message.Message):
    __slots__ = ("label", "confidence", "top_k", "escalate", "escalate_reason", "adapter_digest", "dataset_version", "goal_version", "request_id", "trace_id", "variant")
    LABEL_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    TOP_K_FIELD_NUMBER: _ClassVar[int]
    ESCALATE_FIELD_NUMBER: _ClassVar[int]
    ESCALATE_REASON_FIELD_NUMBER: _ClassVar[int]
    ADAPTER_DIGEST_FIELD_NUMBER: _ClassVar[int]
    DATASET_VERSION_FIELD_NUMBER: _ClassVar[int]
    GOAL_VERSION_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    TRACE_ID_FIELD_NUMBER: _ClassVar[int]
    VARIANT_FIELD_NUMBER: _ClassVar[int]
    label: str
    confidence: float
    top_k: _containers.RepeatedCompositeFieldContainer[LabelScore]
    escalate: bool
    escalate_reason: str
    adapter_digest: str
    dataset_version: str
    goal_version: str
    request_id: str
    trace_id: str
    variant: str
    def __init__(self, label: _Optional[str] = ..., confidence: _Optional[float] = ..., top_k: _Optional[_Iterable[_Union[LabelScore, _Mapping]]] = ..., escalate: _Optional[bool] = ..., escalate_reason: _Optional[str] = ..., adapter_digest: _Optional[str] = ..., dataset_version: _Optional[str] = ..., goal_version: _Optional[str] = ..., request_id: _Optional[str] = ..., trace_id: _Optional[str] = ..., variant: _Optional[str] = ...) -> None: ...

class PredictBatchRequest(_message.Message):
    __slots__ = ("requests",)
    REQUESTS_FIELD_NUMBER: _ClassVar[int]
    requests: _containers.RepeatedCompositeFieldContainer[PredictRequest]
    def __init__(self, requests: _Optional[_Iterable[_Union[PredictRequest, _Mapping]]] = ...) -> None: ...

class PredictBatchResponse(_message.Message):
    __slots__ = ("responses",)
    RESPONSES_FIELD_NUMBER: _ClassVar[int]
    responses: _containers.RepeatedCompositeFieldContainer[PredictResponse]
    def __init__(self, responses: _Optional[_Iterable[_Union[PredictResponse, _Mapping]]] = ...) -> None: ...

class ListDeploymentsRequest(_message.Message):
    __slots__ = ("goal",)
    GOAL_FIELD_NUMBER: _ClassVar[int]
    goal: str
    def __init__(self, goal: _Optional[str] = ...) -> None: ...

class AdapterSlot(_message.Message):
    __slots__ = ("adapter_digest", "role", "traffic_percent", "deployment_id", "dataset_version", "eval_id")
    ADAPTER_DIGEST_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    TRAFFIC_PERCENT_FIELD_NUMBER: _ClassVar[int]
    DEPLOYMENT_ID_FIELD_NUMBER: _ClassVar[int]
    DATASET_VERSION_FIELD_NUMBER: _ClassVar[int]
    EVAL_ID_FIELD_NUMBER: _ClassVar[int]
    adapter_digest: str
    role: str
    traffic_percent: int
    deployment_id: str
    dataset_version: str
    eval_id: str
    def __init__(self, adapter_digest: _Optional[str] = ..., role: _Optional[str] = ..., traffic_percent: _Optional[int] = ..., deployment_id: _Optional[str] = ..., dataset_version: _Optional[str] = ..., eval_id: _Optional[str] = ...) -> None: ...

class GoalDeployment(_message.Message):
    __slots__ = ("goal", "goal_version", "state", "strategy", "slots", "step_index", "step_requests", "deployment_id", "held", "held_by")
    GOAL_FIELD_NUMBER: _ClassVar[int]
    GOAL_VERSION_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    STRATEGY_FIELD_NUMBER: _ClassVar[int]
    SLOTS_FIELD_NUMBER: _ClassVar[int]
    STEP_INDEX_FIELD_NUMBER: _ClassVar[int]
    STEP_REQUESTS_FIELD_NUMBER: _ClassVar[int]
    DEPLOYMENT_ID_FIELD_NUMBER: _ClassVar[int]
    HELD_FIELD_NUMBER: _ClassVar[int]
    HELD_BY_FIELD_NUMBER: _ClassVar[int]
    goal: str
    goal_version: str
    state: str
    strategy: str
    slots: _containers.RepeatedCompositeFieldContainer[AdapterSlot]
    step_index: int
    step_requests: int
    deployment_id: str
    held: bool
    held_by: str
    def __init__(self, goal: _Optional[str] = ..., goal_version: _Optional[str] = ..., state: _Optional[str] = ..., strategy: _Optional[str] = ..., slots: _Optional[_Iterable[_Union[AdapterSlot, _Mapping]]] = ..., step_index: _Optional[int] = ..., step_requests: _Optional[int] = ..., deployment_id: _Optional[str] = ..., held: _Optional[bool] = ..., held_by: _Optional[str] = ...) -> None: ...

class ListDeploymentsResponse(_message.Message):
    __slots__ = ("deployments", "unlogged_predictions")
    DEPLOYMENTS_FIELD_NUMBER: _ClassVar[int]
    UNLOGGED_PREDICTIONS_FIELD_NUMBER: _ClassVar[int]
    deployments: _containers.RepeatedCompositeFieldContainer[GoalDeployment]
    unlogged_predictions: int
    def __init__(self, deployments: _Optional[_Iterable[_Union[GoalDeployment, _Mapping]]] = ..., unlogged_predictions: _Optional[int] = ...) -> None: ...

class RollbackRequest(_message.Message):
    __slots__ = ("goal", "reason")
    GOAL_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    goal: str
    reason: str
    def __init__(self, goal: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class ReviewRequest(_message.Message):
    __slots__ = ("goal", "adapter_digest", "reason")
    GOAL_FIELD_NUMBER: _ClassVar[int]
    ADAPTER_DIGEST_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    goal: str
    adapter_digest: str
    reason: str
    def __init__(self, goal: _Optional[str] = ..., adapter_digest: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class ReviewResponse(_message.Message):
    __slots__ = ("deployment_id", "adapter_digest", "state")
    DEPLOYMENT_ID_FIELD_NUMBER: _ClassVar[int]
    ADAPTER_DIGEST_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    deployment_id: str
    adapter_digest: str
    state: str
    def __init__(self, deployment_id: _Optional[str] = ..., adapter_digest: _Optional[str] = ..., state: _Optional[str] = ...) -> None: ...

class RollbackResponse(_message.Message):
    __slots__ = ("deployment_id", "rolled_back_digest", "restored_digest", "decision_to_zero_ms")
    DEPLOYMENT_ID_FIELD_NUMBER: _ClassVar[int]
    ROLLED_BACK_DIGEST_FIELD_NUMBER: _ClassVar[int]
    RESTORED_DIGEST_FIELD_NUMBER: _ClassVar[int]
    DECISION_TO_ZERO_MS_FIELD_NUMBER: _ClassVar[int]
    deployment_id: str
    rolled_back_digest: str
    restored_digest: str
    decision_to_zero_ms: float
    def __init__(self, deployment_id: _Optional[str] = ..., rolled_back_digest: _Optional[str] = ..., restored_digest: _Optional[str] = ..., decision_to_zero_ms: _Optional[float] = ...) -> None: ...
