"""deploy/k8s and deploy/monitoring: every kustomization renders into objects that a current Kubernetes accepts,
the objects refer to each other correctly, and every flag they pass is one the built binaries take."""

from __future__ import annotations

import json
import pathlib
import re
import shutil
import subprocess
import tempfile

import jsonschema
import kubernetes_validate
import pytest
import yaml

import deploy_common as dc
from deploy_common import find, pod_templates

# The oldest Kubernetes the manifests are meant for, and the newest kubernetes-validate knows.
KUBERNETES_VERSIONS = ("1.31.0", kubernetes_validate.latest_version())
SCHEMAS = pathlib.Path(__file__).resolve().parent / "schemas"
CRD_SCHEMAS = {("monitoring.coreos.com/v1", "ServiceMonitor"): "servicemonitor_v1.json",
               ("monitoring.coreos.com/v1", "PrometheusRule"): "prometheusrule_v1.json"}
ALL = pytest.mark.parametrize("path", dc.KUSTOMIZATIONS, ids=dc.label)
OVERLAYS = pytest.mark.parametrize("path", dc.OVERLAYS, ids=dc.label)


def test_the_single_gpu_overlay_is_there():
    assert "single-gpu" in [p.name for p in dc.OVERLAYS]


@ALL
def test_every_object_is_valid_for_kubernetes(path):
    objects = dc.render(path)
    assert objects, f"{dc.label(path)} renders nothing"
    keys = [(o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"]) for o in objects]
    assert len(set(keys)) == len(keys), f"duplicate objects: {keys}"
    for obj in objects:
        what = f"{dc.label(path)}: {obj['kind']} {obj['metadata']['name']}"
        schema_file = CRD_SCHEMAS.get((obj["apiVersion"], obj["kind"]))
        if schema_file:
            schema = json.loads((SCHEMAS / schema_file).read_text())
            errors = list(jsonschema.Draft7Validator(schema).iter_errors(obj))
            assert not errors, f"{what}: " + "; ".join(f"{'.'.join(map(str, e.path))}: {e.message}" for e in errors)
            continue
        for version in KUBERNETES_VERSIONS:
            error = None
            try:
                kubernetes_validate.validate(obj, version, strict=True)
            except jsonschema.ValidationError as e:  # kubernetes_validate.ValidationError is one too
                where = ".".join(map(str, e.absolute_path))
                error = f"{what} is invalid for Kubernetes {version}: {where}: {e.message}"
            assert error is None, error


@ALL
def test_kubectl_renders_the_same(path):
    """The renderer used here agrees with Kustomize itself, wherever a kubectl with Kustomize is installed."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("no kubectl here: the manifests are rendered by kustomize_lite alone")
    version = subprocess.run([kubectl, "version", "--client"], capture_output=True, text=True, timeout=60).stdout
    kustomize = re.search(r"Kustomize Version: v(\d+)", version)
    if not kustomize or int(kustomize.group(1)) < 5:
        pytest.skip(f"this kubectl's Kustomize is older than the manifests need (5): {version.strip()}")
    result = subprocess.run([kubectl, "kustomize", str(path)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    key = lambda o: (o["kind"], o["metadata"].get("namespace", ""), o["metadata"]["name"])  # noqa: E731
    theirs = sorted((d for d in yaml.safe_load_all(result.stdout) if d), key=key)
    assert sorted(dc.render(path), key=key) == theirs


def _labels_match(selector: dict, labels: dict) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


@OVERLAYS
def test_objects_refer_to_each_other(path):
    objects = dc.render(path) + dc.render(dc.DEPLOY / "k8s" / "model-download") + dc.render(dc.MONITORING)
    namespaces = {o["metadata"].get("namespace") for o in objects if o["kind"] != "Namespace"}
    assert len(namespaces) == 1, f"the overlay, the download Job and the monitoring differ in namespace: {namespaces}"
    templates = list(pod_templates(objects))
    for workload, template in templates:
        what = f"{workload['kind']} {workload['metadata']['name']}"
        assert _labels_match(workload["spec"].get("selector", {}).get("matchLabels", {}),
                             template["metadata"].get("labels", {})) or workload["kind"] == "Job", what
        volumes = {v["name"]: v for v in template["spec"].get("volumes", [])}
        for container in template["spec"]["containers"]:
            for mount in container.get("volumeMounts", []):
                assert mount["name"] in volumes, f"{what}: volume {mount['name']} is not declared"
        for volume in volumes.values():
            if "configMap" in volume:
                assert find(objects, "ConfigMap", volume["configMap"]["name"]), f"{what}: {volume}"
            if "persistentVolumeClaim" in volume:
                assert find(objects, "PersistentVolumeClaim", volume["persistentVolumeClaim"]["claimName"]), what
    for service in find(objects, "Service"):
        pods = [t for _, t in templates if _labels_match(service["spec"]["selector"], t["metadata"]["labels"])]
        assert pods, f"Service {service['metadata']['name']} selects no pod"
        ports = {p["name"] for t in pods for c in t["spec"]["containers"] for p in c.get("ports", [])}
        for port in service["spec"]["ports"]:
            assert port["targetPort"] in ports, f"Service {service['metadata']['name']}: no port {port['targetPort']}"
    for stateful_set in find(objects, "StatefulSet"):
        headless = find(objects, "Service", stateful_set["spec"]["serviceName"])
        assert headless and headless[0]["spec"].get("clusterIP") == "None"
    for hpa in find(objects, "HorizontalPodAutoscaler"):
        target = hpa["spec"]["scaleTargetRef"]
        assert find(objects, target["kind"], target["name"]), f"HPA {hpa['metadata']['name']}: no {target}"
    for pdb in find(objects, "PodDisruptionBudget"):
        assert any(_labels_match(pdb["spec"]["selector"]["matchLabels"], t["metadata"]["labels"]) for _, t in templates)
    for monitor in find(objects, "ServiceMonitor"):
        services = [s for s in find(objects, "Service")
                    if _labels_match(monitor["spec"]["selector"]["matchLabels"], s["metadata"].get("labels", {}))]
        assert {s["metadata"]["name"] for s in services} == {"octet-router", "octet-worker"}
        for service, endpoint in ((s, e) for s in services for e in monitor["spec"]["endpoints"]):
            assert endpoint["port"] in {p["name"] for p in service["spec"]["ports"]}
            assert service["metadata"]["labels"].get(monitor["spec"]["jobLabel"]), service["metadata"]["name"]


def _octet_containers(objects):
    for workload, template in pod_templates(objects):
        for container in template["spec"]["containers"]:
            binary = dc.binary_of(container)
            if binary:
                yield workload, template["spec"], container, binary


@OVERLAYS
def test_every_flag_is_a_flag_of_the_binary(path):
    objects = dc.render(path)
    seen = set()
    for workload, pod_spec, container, binary in _octet_containers(objects):
        seen.add(binary)
        known = dc.known_flags(binary)
        what = f"{dc.label(path)}: {workload['kind']} {workload['metadata']['name']}"
        namespace = workload["metadata"].get("namespace")
        for arg in container.get("args", []):
            name = re.match(r"--?([^=]+)", arg)
            assert name, f"{what}: argument {arg!r} is not a --flag"
            flag = name.group(1).replace("-", "_")
            assert flag in known or (flag.startswith("no") and flag[2:] in known), f"{what}: {binary} has no {arg}"
        files = dc.flagfiles(container, pod_spec, objects, namespace)
        for file, content in files.items():
            for line in content.splitlines():
                if not line.strip() or line.lstrip().startswith("#"):
                    continue
                # absl reads flagfiles itself: the binaries' dash-to-underscore spelling does not apply there.
                match = re.fullmatch(r"--([a-z0-9_]+)=.*", line.strip())
                assert match, f"{what}: {file}: {line!r} is not --name=value with an underscored name"
                assert match.group(1) in known, f"{what}: {file}: {binary} has no --{match.group(1)}"
        # The binary itself parses the flags (names and values, as in the pod) and must report no error.
        with tempfile.TemporaryDirectory() as tmp:
            local = {}
            for i, (file, content) in enumerate(files.items()):
                local[file] = f"{tmp}/{i}-{pathlib.PurePath(file).name}"
                pathlib.Path(local[file]).write_text(content)
            args = [a if not a.startswith("--flagfile=") else
                    "--flagfile=" + ",".join(local[f] for f in a.split("=", 1)[1].split(","))
                    for a in container.get("args", [])]
            out = subprocess.run([dc.harness.binary(binary), *args, "--help=no-flag-is-named-like-this"],
                                 capture_output=True, text=True, timeout=30)
            errors = [line for line in (out.stdout + out.stderr).splitlines() if line.startswith("ERROR")]
            assert not errors, f"{what}: {binary} rejects its flags: {errors}"
    assert seen == set(dc.BINARIES.values()), f"{dc.label(path)} runs {seen}"


@OVERLAYS
def test_probes_and_grace_periods_fit_the_flags(path):
    objects = dc.render(path)
    flags = {}
    for workload, pod_spec, container, binary in _octet_containers(objects):
        values = dc.flag_values(container, pod_spec, objects, workload["metadata"].get("namespace"))
        flags[binary] = values
        grace = pod_spec["terminationGracePeriodSeconds"]
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            if probe in container:
                port = (container[probe].get("grpc") or container[probe].get("tcpSocket"))["port"]
                assert port == int(values["port"]), f"{binary} {probe} checks port {port}, not --port"
        if binary == dc.BINARIES["octet-worker"]:
            drain = dc.seconds(values["drain_timeout"])
            assert grace > drain + 5, f"worker: grace {grace}s must outlast --drain_timeout {drain}s + 5s of shutdown"
            for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
                assert "grpc" in container[probe], f"worker {probe} is not a gRPC health probe"
            startup = container["startupProbe"]
            assert startup["periodSeconds"] * startup["failureThreshold"] >= 15 * 60, "too short to load a 27B model"
            liveness = container["livenessProbe"]
            assert liveness["periodSeconds"] * liveness["failureThreshold"] > drain, "liveness would end a drain"
            assert container["resources"]["limits"]["nvidia.com/gpu"] >= 1
            shm = [m for m in container["volumeMounts"] if m["mountPath"] == "/dev/shm"]
            assert shm and next(v for v in pod_spec["volumes"] if v["name"] == shm[0]["name"])["emptyDir"][
                "medium"] == "Memory"
        else:
            pre_stop = container.get("lifecycle", {}).get("preStop", {}).get("sleep", {}).get("seconds", 0)
            assert grace > dc.seconds(values["shutdown_grace"]) + pre_stop, "router: grace period too short"
            assert "grpc" in container["readinessProbe"]
    router, worker = flags[dc.BINARIES["octet-router"]], flags[dc.BINARIES["octet-worker"]]
    host, port = router["workers_dns"].rsplit(":", 1)
    service = find(objects, "Service", host)
    assert service and service[0]["spec"]["clusterIP"] == "None", f"--workers_dns {host} is no headless Service"
    assert port == worker["port"], "--workers_dns names another port than the workers' --port"
    for name, binary in dc.BINARIES.items():
        metrics = [p for s in find(objects, "Service", name) for p in s["spec"]["ports"] if p["name"] == "metrics"]
        pods = [c for _, _, c, b in _octet_containers(objects) if b == binary]
        container_port = next(p["containerPort"] for p in pods[0]["ports"] if p["name"] == metrics[0]["targetPort"])
        assert container_port == int(flags[binary]["metrics_port"]), f"{name}: metrics port is not --metrics_port"
