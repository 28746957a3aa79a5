"""Rendering deploy/: a minimal kustomize, the compose file, and the environment a container would see.

`kustomize` is not part of the project's toolchain, so `render` implements the subset of kustomize that
deploy/k8s uses: `resources` (files and kustomization folders), `configMapGenerator`/`secretGenerator`
(literals and files, fixed names only), `patches` (strategic merge by kind and name, or by `target`; JSON 6902
lists with a `target`) and `namespace`. Strategic merge is simplified: maps merge, `null` deletes, lists of
named items merge by `name` in built-in kinds and are replaced in custom resources (as kustomize does for
kinds it has no schema for). Where `kubectl` is installed, test_manifests compares this renderer with
`kubectl kustomize`, so the simplification cannot drift from the real thing unnoticed.
"""

from __future__ import annotations

import base64
import copy
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeGuard, cast

import pytest
import yaml

REPO = Path(__file__).resolve().parents[3]
DEPLOY = REPO / "deploy"
K8S = DEPLOY / "k8s"
BUILTIN_API_VERSIONS = {"v1", "apps/v1", "batch/v1"}

Doc = dict[str, Any]  # a Kubernetes object (or a part of one) as parsed YAML


def load_docs(path: Path) -> list[Doc]:
    """Every non-empty YAML document in a file."""
    return [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d is not None]


def render(root: Path) -> list[Doc]:
    """The objects `kustomize build root` would emit (for the subset described above)."""
    k = yaml.safe_load((root / "kustomization.yaml").read_text(encoding="utf-8"))
    docs: list[Doc] = []
    for entry in k.get("resources", []):
        path = (root / entry).resolve()
        docs += render(path) if path.is_dir() else load_docs(path)
    docs += _generated(root, k)
    for patch in k.get("patches", []):
        _apply_patch(docs, root, patch)
    if namespace := k.get("namespace"):
        for d in docs:
            if d["kind"] != "Namespace":
                d["metadata"]["namespace"] = namespace
    return docs


def _generated(root: Path, k: Doc) -> list[Doc]:
    if not k.get("generatorOptions", {}).get("disableNameSuffixHash"):
        # Hash suffixes would need kustomize's name-reference rewriting, which this renderer does not do.
        if k.get("configMapGenerator") or k.get("secretGenerator"):
            raise NotImplementedError("generators must set generatorOptions.disableNameSuffixHash")
    out = [_generate("ConfigMap", root, g) for g in k.get("configMapGenerator", [])]
    return out + [_generate("Secret", root, g) for g in k.get("secretGenerator", [])]


def _generate(kind: str, root: Path, gen: Doc) -> Doc:
    data = dict(line.split("=", 1) for line in gen.get("literals", []))
    for spec in gen.get("files", []):
        key, _, rel = spec.rpartition("=")
        data[key or Path(rel).name] = (root / rel).read_text(encoding="utf-8")
    meta = {"name": gen["name"]}
    if labels := gen.get("options", {}).get("labels"):
        meta["labels"] = labels
    if kind == "Secret":
        encoded = {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}
        return {"apiVersion": "v1", "kind": "Secret", "metadata": meta, "type": "Opaque", "data": encoded}
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": data}


def _apply_patch(docs: list[Doc], root: Path, patch: Doc) -> None:
    body = yaml.safe_load((root / patch["path"]).read_text(encoding="utf-8"))
    target = patch.get("target") or {"kind": body["kind"], "name": body["metadata"]["name"]}
    matched = [i for i, d in enumerate(docs) if _matches(d, target)]
    if not matched:
        raise AssertionError(f"patch {patch['path']} matches no resource")
    for i in matched:
        if isinstance(body, list):
            docs[i] = _json_patch(docs[i], body)
        else:
            builtin = docs[i]["apiVersion"] in BUILTIN_API_VERSIONS
            spec = {k: v for k, v in body.items() if k not in ("apiVersion", "kind", "metadata")}
            docs[i] = cast(Doc, _merge(docs[i], spec, builtin))  # a map merged with a map is a map


def _matches(doc: Doc, target: Doc) -> bool:
    labels = doc["metadata"].get("labels", {})
    if "kind" in target and doc["kind"] != target["kind"]:
        return False
    if "name" in target and doc["metadata"]["name"] != target["name"]:
        return False
    for term in filter(None, target.get("labelSelector", "").split(",")):
        key, _, value = term.partition("=")
        if key not in labels or (value and labels[key] != value):
            return False
    return True


def _merge(base: object, patch: object, builtin: bool) -> object:
    if isinstance(base, dict) and isinstance(patch, dict):
        out = dict(base)
        for key, value in patch.items():
            if value is None:
                out.pop(key, None)
            else:
                out[key] = _merge(out[key], value, builtin) if key in out else copy.deepcopy(value)
        return out
    if builtin and _named(base) and _named(patch):
        by_name: dict[str, object] = {item["name"]: item for item in base}
        for item in patch:
            by_name[item["name"]] = _merge(by_name[item["name"]], item, builtin) if item["name"] in by_name else item
        return list(by_name.values())
    return copy.deepcopy(patch)


def _named(value: object) -> TypeGuard[list[Doc]]:
    return isinstance(value, list) and bool(value) and all(isinstance(i, dict) and "name" in i for i in value)


def _json_patch(doc: Doc, ops: list[Doc]) -> Doc:
    doc = copy.deepcopy(doc)
    for op in ops:
        *parents, last = [p.replace("~1", "/").replace("~0", "~") for p in op["path"].split("/")[1:]]
        node: Any = doc  # a map or a list of the parsed YAML
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        if op["op"] == "remove":
            del node[int(last) if isinstance(node, list) else last]
        elif isinstance(node, list) and last == "-":
            node.append(copy.deepcopy(op["value"]))
        elif isinstance(node, list) and op["op"] == "add":
            node.insert(int(last), copy.deepcopy(op["value"]))
        else:
            node[int(last) if isinstance(node, list) else last] = copy.deepcopy(op["value"])
    return doc


def interpolate(text: str, env: dict[str, str]) -> str:
    """Compose's `${VAR}`, `${VAR:-default}` and `${VAR:?error}` (and `$$` as a literal `$`)."""

    def one(m: re.Match[str]) -> str:
        name, op, arg = m.group(1), m.group(2) or "", m.group(3) or ""
        if env.get(name):
            return env[name]
        if op == ":?":
            raise KeyError(f"{name}: {arg}")
        return arg

    text = re.sub(r"\$\{(\w+)(:-|:\?)?([^}]*)\}", one, text)
    return text.replace("$$", "$")


@pytest.fixture(scope="session")
def base() -> list[Doc]:
    """The rendered base."""
    return render(K8S / "base")


@pytest.fixture(scope="session")
def dev() -> list[Doc]:
    """The rendered dev overlay."""
    return render(K8S / "overlays" / "dev")


@pytest.fixture(scope="session")
def renderer() -> Callable[[Path], list[Doc]]:
    """The minimal kustomize itself, for tests that render a folder of their own."""
    return render


@pytest.fixture(scope="session")
def interpolator() -> Callable[[str, dict[str, str]], str]:
    """Compose's variable interpolation, for tests that choose the environment."""
    return interpolate


@pytest.fixture(scope="session")
def compose_text() -> str:
    """deploy/compose.yaml as written."""
    return (DEPLOY / "compose.yaml").read_text(encoding="utf-8")


@pytest.fixture(scope="session")
def compose(compose_text: str) -> Doc:
    """deploy/compose.yaml after interpolation, with a test token set as a user would."""
    env = {"TUNELINE_GRPC_TOKENS": '["compose-test-token"]'}
    return cast(Doc, _interpolate_values(yaml.safe_load(compose_text), env))  # the file is a map


def _interpolate_values(node: object, env: dict[str, str]) -> object:
    # Compose interpolates the parsed values, so a substituted '["x"]' stays a string, not a YAML list.
    if isinstance(node, dict):
        return {k: _interpolate_values(v, env) for k, v in node.items()}
    if isinstance(node, list):
        return [_interpolate_values(v, env) for v in node]
    return interpolate(node, env) if isinstance(node, str) else node
