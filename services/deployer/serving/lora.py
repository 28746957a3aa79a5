"""LoRA adapters applied by forward hooks on one shared base encoder.

Why not PEFT's multi-adapter switching: PeftModel.load_adapter injects modules into the live model
(~150 ms for MiniLM on this CPU), so every batch must wait while an adapter loads. Here an adapter is
only its tensors: loading reads them outside any lock, and one hook per target Linear adds
scaling * B(A(x)) for whichever adapter the current batch uses (the same arithmetic as PEFT's LoRA
Linear in eval mode, checked against the kernel's PEFT-loaded classifier in the tests). Anything but
plain LoRA (DoRA, biases, rank patterns, extra trained modules) is refused rather than half-applied.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from services.kernel.errors import InvalidInput

_PREFIX = "base_model.model."
# adapter_config.json keys that change what LoRA computes; any of them set means "not plain LoRA".
_UNSUPPORTED = ("use_dora", "lora_bias", "modules_to_save", "rank_pattern", "alpha_pattern", "layer_replication",
                "trainable_token_indices", "target_parameters", "fan_in_fan_out", "use_qalora", "use_bdlora")


@dataclass(frozen=True)
class LoraWeights:
    """One adapter: per target module (name in the base), A (r, in) and B (out, r), and the scaling."""

    scaling: float
    layers: dict[str, tuple[torch.Tensor, torch.Tensor]]


def read_lora(folder: Path, linears: dict[str, torch.nn.Linear], device: str) -> LoraWeights:
    """Read a PEFT LoRA adapter's tensors (safetensors only) and check them against the base's Linears."""
    from safetensors.torch import load_file

    config = json.loads((folder / "adapter_config.json").read_text(encoding="utf-8"))
    if config.get("peft_type") != "LORA" or config.get("bias", "none") != "none":
        raise InvalidInput(f"adapter {folder.name}: only plain LoRA adapters (bias none) are served")
    unsupported = [k for k in _UNSUPPORTED if config.get(k)]
    if unsupported:
        raise InvalidInput(f"adapter {folder.name} uses {', '.join(unsupported)}, which this server does not apply")
    r, alpha = int(config["r"]), float(config["lora_alpha"])
    scaling = alpha / math.sqrt(r) if config.get("use_rslora") else alpha / r
    tensors = load_file(str(folder / "adapter_model.safetensors"), device=device)
    return LoraWeights(scaling, _pairs(folder, tensors, linears, r))


def _pairs(folder: Path, tensors: dict[str, torch.Tensor], linears: dict[str, torch.nn.Linear],
           r: int) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    modules = {k.removeprefix(_PREFIX).rsplit(".lora_", 1)[0] for k in tensors}
    layers = {}
    for name in sorted(modules):
        a, b = tensors.get(f"{_PREFIX}{name}.lora_A.weight"), tensors.get(f"{_PREFIX}{name}.lora_B.weight")
        linear = linears.get(name)
        if a is None or b is None or linear is None or len(tensors) != 2 * len(modules):
            raise InvalidInput(f"adapter {folder.name}: tensors do not match the base model's layers (at {name!r})")
        if a.shape != (r, linear.in_features) or b.shape != (linear.out_features, r):
            raise InvalidInput(f"adapter {folder.name}: {name} has shapes {tuple(a.shape)}/{tuple(b.shape)}")
        layers[name] = (a.float(), b.float())
    if not layers:
        raise InvalidInput(f"adapter {folder.name} holds no LoRA weights")
    return layers


class LoraSwitch:
    """Hooks on the base's Linears; `use(weights)` chooses the adapter the next forward passes apply."""

    def __init__(self, base: torch.nn.Module) -> None:
        self.linears = {name: m for name, m in base.named_modules() if isinstance(m, torch.nn.Linear)}
        self._hooked: set[str] = set()
        self._active: LoraWeights | None = None

    def prepare(self, weights: LoraWeights) -> None:
        """Hook the modules this adapter targets (call with the model lock held: hooks must not change mid-forward)."""
        for name in weights.layers.keys() - self._hooked:
            self.linears[name].register_forward_hook(self._hook(name))
            self._hooked.add(name)

    def use(self, weights: LoraWeights | None) -> None:
        """The adapter the following forward passes apply (None: the bare base)."""
        self._active = weights

    def _hook(self, name: str) -> Callable[[torch.nn.Module, tuple[torch.Tensor, ...], torch.Tensor], torch.Tensor]:
        def add_lora(_module: torch.nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> torch.Tensor:
            weights = self._active
            pair = weights.layers.get(name) if weights is not None else None
            if weights is None or pair is None:
                return output
            a, b = pair
            return output + (inputs[0] @ a.T @ b.T) * weights.scaling
        return add_lora
