"""Renders a Kustomize folder with the part of Kustomize that deploy/ uses, so that CI needs no kubectl.

Supported: resources (YAML files and folders holding a kustomization.yaml), namespace, images,
configMapGenerator (files and literals, per-generator options) and generatorOptions (labels, disableNameSuffixHash).
Generated ConfigMaps get Kustomize's name suffix hash, and the volumes, env and envFrom entries of pod templates that
name them are renamed to match. Any other field is an error, so a manifest never relies on a feature that is
silently skipped here; manifests_test.py compares the output with `kubectl kustomize` wherever one is installed.
"""

from __future__ import annotations

import hashlib
import json
import pathlib
from typing import Any

import yaml

_SUPPORTED = {"apiVersion", "kind", "resources", "namespace", "images", "configMapGenerator", "generatorOptions"}
_CLUSTER_SCOPED = {"Namespace", "PersistentVolume", "StorageClass", "ClusterRole", "ClusterRoleBinding",
                   "CustomResourceDefinition", "PriorityClass", "IngressClass", "RuntimeClass",
                   "ValidatingWebhookConfiguration", "MutatingWebhookConfiguration", "APIService"}


class KustomizeError(Exception):
    pass


def render(folder: str | pathlib.Path) -> list[dict[str, Any]]:
    """The objects `kubectl kustomize folder` prints, in the order they are declared."""
    objects, generated = _build(pathlib.Path(folder))
    renames = {}
    for obj in objects:
        key = (obj["metadata"].get("namespace"), obj["metadata"]["name"])
        if generated.get(id(obj)):
            new_name = f"{obj['metadata']['name']}-{config_map_hash(obj)}"
            renames[key] = new_name
            obj["metadata"]["name"] = new_name
    for obj in objects:
        for spec in _pod_specs(obj):
            _rename_config_maps(spec, obj["metadata"].get("namespace"), renames)
    return objects


def config_map_hash(config_map: dict[str, Any]) -> str:
    """Kustomize's name suffix for a ConfigMap: the sha256 of {"data", "kind", "name": ""} as Go's json.Marshal
    writes it (Kustomize 5 hashes with the name left empty), 10 hex digits with 0, 1, 3, a, e replaced."""
    fields: dict[str, Any] = {"kind": "ConfigMap", "name": "",
                              "data": config_map.get("data") or {}}
    if config_map.get("binaryData"):
        fields["binaryData"] = config_map["binaryData"]
    text = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    for char, escape in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"), ("\u2028", "\\u2028"),
                         ("\u2029", "\\u2029")):
        text = text.replace(char, escape)
    digest = hashlib.sha256(text.encode()).hexdigest()[:10]
    return digest.translate(str.maketrans({"0": "g", "1": "h", "3": "k", "a": "m", "e": "t"}))


def _build(folder: pathlib.Path) -> tuple[list[dict[str, Any]], dict[int, bool]]:
    path = folder / "kustomization.yaml"
    if not path.is_file():
        raise KustomizeError(f"{folder}: no kustomization.yaml")
    spec = yaml.safe_load(path.read_text()) or {}
    unsupported = set(spec) - _SUPPORTED
    if unsupported:
        raise KustomizeError(f"{path}: fields this renderer does not implement: {sorted(unsupported)}")
    objects: list[dict[str, Any]] = []
    generated: dict[int, bool] = {}  # id(object) -> gets a name suffix hash
    for entry in spec.get("resources") or []:
        target = (folder / entry).resolve()
        if target.is_dir():
            sub_objects, sub_generated = _build(target)
            objects += sub_objects
            generated.update(sub_generated)
        elif target.is_file():
            objects += [d for d in yaml.safe_load_all(target.read_text()) if d]
        else:
            raise KustomizeError(f"{path}: resource {entry} does not exist")
    options = spec.get("generatorOptions") or {}
    for generator in spec.get("configMapGenerator") or []:
        if generator.get("behavior", "create") != "create":
            raise KustomizeError(f"{path}: configMapGenerator behavior {generator['behavior']} is not implemented")
        config_map, hashed = _generate_config_map(folder, generator, options)
        objects.append(config_map)
        generated[id(config_map)] = hashed
    if "namespace" in spec:
        for obj in objects:
            if obj["kind"] not in _CLUSTER_SCOPED:
                obj["metadata"]["namespace"] = spec["namespace"]
    for image in spec.get("images") or []:
        for obj in objects:
            for pod_spec in _pod_specs(obj):
                for container in pod_spec.get("containers", []) + pod_spec.get("initContainers", []):
                    container["image"] = _set_image(container["image"], image)
    return objects, generated


def _generate_config_map(folder: pathlib.Path, generator: dict, options: dict) -> tuple[dict[str, Any], bool]:
    data: dict[str, str] = {}
    for entry in generator.get("files") or []:
        key, _, file_name = entry.rpartition("=") if "=" in entry else (pathlib.PurePath(entry).name, "", entry)
        data[key] = (folder / file_name).read_text()
    for literal in generator.get("literals") or []:
        key, _, value = literal.partition("=")
        data[key] = value
    own = generator.get("options") or {}
    labels = {**(options.get("labels") or {}), **(own.get("labels") or {})}
    metadata: dict[str, Any] = {"name": generator["name"]}
    if labels:
        metadata["labels"] = labels
    config_map = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata, "data": data}
    hashed = not own.get("disableNameSuffixHash", options.get("disableNameSuffixHash", False))
    return config_map, hashed


def _set_image(image: str, rule: dict) -> str:
    name, digest = (image.split("@", 1) + [""])[:2]
    tag = ""
    if ":" in name.rsplit("/", 1)[-1]:
        name, tag = name.rsplit(":", 1)
    if name != rule["name"]:
        return image
    name = rule.get("newName", name)
    if "digest" in rule:
        return f"{name}@{rule['digest']}"
    if "newTag" in rule:
        return f"{name}:{rule['newTag']}"
    return name + (f":{tag}" if tag else "") + (f"@{digest}" if digest else "")


def _pod_specs(obj: dict[str, Any]) -> list[dict[str, Any]]:
    if obj.get("kind") == "Pod":
        return [obj["spec"]]
    spec = obj.get("spec") or {}
    if obj.get("kind") == "CronJob":
        spec = spec.get("jobTemplate", {}).get("spec", {})
    template = spec.get("template") or {}
    return [template["spec"]] if "spec" in template else []


def _rename_config_maps(pod_spec: dict[str, Any], namespace: str | None, renames: dict) -> None:
    def rename(holder: dict | None) -> None:
        if holder and (namespace, holder.get("name")) in renames:
            holder["name"] = renames[(namespace, holder["name"])]

    for volume in pod_spec.get("volumes", []):
        rename(volume.get("configMap"))
        for source in (volume.get("projected") or {}).get("sources", []):
            rename(source.get("configMap"))
    for container in pod_spec.get("containers", []) + pod_spec.get("initContainers", []):
        for env in container.get("env", []):
            rename((env.get("valueFrom") or {}).get("configMapKeyRef"))
        for env_from in container.get("envFrom", []):
            rename(env_from.get("configMapRef"))
