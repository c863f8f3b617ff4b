"""What the deploy/ tests share: the kustomizations, their rendered objects, and the flags the manifests pass."""

from __future__ import annotations

import functools
import pathlib
import re
import subprocess
import sys
from typing import Any, Iterator

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "integration"))
import harness  # noqa: E402
import kustomize_lite  # noqa: E402

REPO = harness.REPO_ROOT
DEPLOY = REPO / "deploy"
OVERLAYS = sorted(p for p in (DEPLOY / "k8s" / "overlays").iterdir() if (p / "kustomization.yaml").is_file())
MONITORING = DEPLOY / "monitoring"
KUSTOMIZATIONS = [*OVERLAYS, DEPLOY / "k8s" / "model-download", MONITORING]
# The binary each image runs (its ENTRYPOINT), relative to the build folder.
BINARIES = {"octet-worker": "worker/server/octet-worker", "octet-router": "router/octet-router"}


def label(path: pathlib.Path) -> str:
    return str(path.relative_to(DEPLOY))


@functools.cache
def _render(path: pathlib.Path) -> tuple:
    return tuple(kustomize_lite.render(path))


def render(path: pathlib.Path) -> list[dict[str, Any]]:
    return list(_render(path))


def find(objects: list[dict], kind: str, name: str | None = None) -> list[dict]:
    return [o for o in objects if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]


def pod_templates(objects: list[dict]) -> Iterator[tuple[dict, dict]]:
    """(workload, pod template) for every object that has one."""
    for obj in objects:
        spec = obj.get("spec") or {}
        if "template" in spec and "spec" in spec["template"]:
            yield obj, spec["template"]


def binary_of(container: dict) -> str | None:
    """The octet binary an octet image runs, or None for other images."""
    repository = container["image"].split("@")[0].rsplit("/", 1)[-1]
    return BINARIES.get(repository.split(":")[0])


@functools.cache
def known_flags(binary: str) -> frozenset[str]:
    """Flag names (with underscores) that `binary --helpfull` lists."""
    out = subprocess.run([harness.binary(binary), "--helpfull"], capture_output=True, text=True, timeout=30)
    names = frozenset(re.findall(r"^\s+--(\w+) \(", out.stdout + out.stderr, re.MULTILINE))
    assert "flagfile" in names and len(names) > 10, f"cannot read the flags of {binary}:\n{out.stdout}{out.stderr}"
    return names


def flagfiles(container: dict, pod_spec: dict, objects: list[dict], namespace: str | None) -> dict[str, str]:
    """{path in the container: content} of every --flagfile the container's args name, read from its ConfigMaps."""
    files = {}
    for arg in container.get("args", []):
        if not arg.startswith("--flagfile="):
            continue
        for path in arg.split("=", 1)[1].split(","):
            mount = next((m for m in container.get("volumeMounts", [])
                          if path.startswith(m["mountPath"].rstrip("/") + "/")), None)
            assert mount, f"{container['name']}: no volume is mounted where --flagfile {path} is"
            volume = next(v for v in pod_spec["volumes"] if v["name"] == mount["name"])
            assert "configMap" in volume, f"{container['name']}: {path} is not in a ConfigMap volume"
            config_maps = [c for c in find(objects, "ConfigMap", volume["configMap"]["name"])
                           if c["metadata"].get("namespace") == namespace]
            assert config_maps, f"{container['name']}: ConfigMap {volume['configMap']['name']} is not rendered"
            key = path[len(mount["mountPath"].rstrip("/")) + 1:]
            assert key in config_maps[0]["data"], f"ConfigMap {volume['configMap']['name']} has no key {key}"
            files[path] = config_maps[0]["data"][key]
    return files


def flag_values(container: dict, pod_spec: dict, objects: list[dict], namespace: str | None) -> dict[str, str]:
    """{flag name with underscores: value} as the binary sees them: flagfiles in order, then the other args."""
    values = {}
    for content in flagfiles(container, pod_spec, objects, namespace).values():
        for line in content.splitlines():
            match = re.fullmatch(r"--(\w+)=(.*)", line.strip())
            if match:
                values[match.group(1)] = match.group(2)
    for arg in container.get("args", []):
        name, _, value = arg[2:].partition("=")
        if name != "flagfile":
            values[name.replace("-", "_")] = value or "true"
    return values


def seconds(value: str) -> float:
    """An absl duration ("10s", "1m30s", "250ms") or a plain number of seconds."""
    if re.fullmatch(r"[0-9.]+", value):
        return float(value)
    units = {"h": 3600, "m": 60, "s": 1, "ms": 1e-3, "us": 1e-6, "ns": 1e-9}
    parts = re.findall(r"([0-9.]+)(h|ms|m|s|us|ns)", value)
    assert parts and "".join(n + u for n, u in parts) == value, f"not a duration: {value}"
    return sum(float(n) * units[u] for n, u in parts)
