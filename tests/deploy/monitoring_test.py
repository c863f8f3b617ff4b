"""deploy/monitoring: the alerts pass promtool's checks and unit tests, and every metric that an alert, the Grafana
dashboard, the Prometheus Adapter rules or an autoscaler reads is one that a real worker and router export."""

from __future__ import annotations

import json
import pathlib
import re
import shutil
import subprocess
import sys
import urllib.request

import grpc
import promql_parser
import pytest
import yaml

import deploy_common as dc
from deploy_common import find, harness

sys.path.insert(0, str(dc.REPO / "tests" / "router"))
from fake_worker import FakeWorker  # noqa: E402

HERE = pathlib.Path(__file__).resolve().parent
# Labels Prometheus gives every series it scrapes through the ServiceMonitor.
TARGET_LABELS = {"job", "instance", "namespace", "pod", "service", "container", "endpoint"}
# Series Prometheus makes itself.
SYNTHETIC = {"up": set()}


@pytest.fixture(scope="module")
def exported() -> dict[str, set[str]]:
    """{series name: its label names} scraped from a real worker and a router that has retried a failed attempt."""
    stubs = harness.load_stubs()
    worker_metrics, router_metrics = harness.free_port(), harness.free_port()
    worker = harness.start_process(
        [harness.binary("worker/server/octet-worker"), "--model", str(dc.REPO / "models" / "qwen3_5-code-small"),
         "--max-model-len", "256", "--host", "127.0.0.1", "--port", "0", "--metrics-port", str(worker_metrics)],
        r"octet-worker: serving \S+ on 127\.0\.0\.1:(\d+)", timeout=60)
    failing = FakeWorker(stubs, "failing").start()
    failing.abort_with = (grpc.StatusCode.UNAVAILABLE, "this worker fails every call")
    router = None
    try:
        router = harness.start_process(
            [harness.binary("router/octet-router"), "--workers",
             f"127.0.0.1:{worker.ready_match.group(1)},{failing.address}", "--policy", "round-robin",
             "--host", "127.0.0.1", "--port", "0", "--metrics-port", str(router_metrics)],
            r"listening on 127\.0\.0\.1:(\d+)", timeout=30)
        pb = stubs.generation_pb2
        with grpc.insecure_channel(f"127.0.0.1:{router.ready_match.group(1)}") as channel:
            stub = stubs.generation_pb2_grpc.GenerationStub(channel)
            for i in range(4):  # round-robin: some first go to the failing worker and are retried
                request = pb.GenerateRequest(prompt=f"def f{i}(x):",
                                             sampling=pb.SamplingParams(max_tokens=4, temperature=0))
                list(stub.Generate(request, timeout=60))
        assert failing.calls_of("Generate"), "the router never tried the failing worker"
        series: dict[str, set[str]] = {**SYNTHETIC}
        for port in (worker_metrics, router_metrics):
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
                text = response.read().decode()
            for name, labels in re.findall(r"^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? \S+$", text, re.MULTILINE):
                series.setdefault(name, set()).update(re.findall(r'(\w+)="', labels))
        return series
    finally:
        if router:
            router.stop()
        failing.stop()
        worker.stop()


def _jobs() -> set[str]:
    """The `job` label values the ServiceMonitor gives the Services of the overlays."""
    job_label = find(dc.render(dc.MONITORING), "ServiceMonitor")[0]["spec"]["jobLabel"]
    return {s["metadata"]["labels"][job_label] for path in dc.OVERLAYS for s in find(dc.render(path), "Service")}


def _selectors(expr) -> list:
    """Every vector selector in a parsed PromQL expression."""
    if isinstance(expr, promql_parser.VectorSelector):
        return [expr]
    if isinstance(expr, promql_parser.MatrixSelector):
        return [expr.vector_selector]
    children = []
    for attribute in ("expr", "lhs", "rhs", "param"):
        child = getattr(expr, attribute, None)
        if child is not None and not isinstance(child, (int, float, str)):
            children.append(child)
    children += list(getattr(expr, "args", None) or [])
    return [s for child in children for s in _selectors(child)]


def _check_query(query: str, exported: dict[str, set[str]], where: str) -> list[str]:
    """The metric names a PromQL query reads, after checking each against the exported series."""
    query = re.sub(r"\$__\w*interval", "5m", query)  # Grafana's range variables
    try:
        parsed = promql_parser.parse(query)
    except Exception as e:  # the parser raises plain exceptions
        pytest.fail(f"{where}: {query!r} is not PromQL: {e}")
    names = []
    for selector in _selectors(parsed):
        assert selector.name in exported, f"{where}: {selector.name} is not exported by the worker or the router"
        for matcher in selector.matchers.matchers:
            assert matcher.name in exported[selector.name] | TARGET_LABELS, \
                f"{where}: {selector.name} has no label {matcher.name}"
            if matcher.name == "job":
                assert matcher.value in _jobs(), f"{where}: the ServiceMonitor makes no job {matcher.value}"
        names.append(selector.name)
    assert names, f"{where}: {query!r} reads no metric"
    return names


def test_alert_rules_pass_promtool(tmp_path):
    promtool = shutil.which("promtool")
    assert promtool, "promtool is missing: scripts/setup installs it (Debian package prometheus)"
    rules = find(dc.render(dc.MONITORING), "PrometheusRule")
    assert len(rules) == 1
    (tmp_path / "alerts.rules.yaml").write_text(yaml.safe_dump({"groups": rules[0]["spec"]["groups"]}))
    shutil.copy(HERE / "alerts_test.yaml", tmp_path)
    for command in (["check", "rules", "alerts.rules.yaml"], ["test", "rules", "alerts_test.yaml"]):
        result = subprocess.run([promtool, *command], cwd=tmp_path, capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stdout + result.stderr
    alerts = {r["alert"] for g in rules[0]["spec"]["groups"] for r in g["rules"]}
    tested = set(re.findall(r"alertname: (\w+)", (HERE / "alerts_test.yaml").read_text()))
    assert alerts == tested, f"alerts without a promtool test: {alerts - tested}"


def test_alerts_read_exported_metrics(exported):
    for rule in find(dc.render(dc.MONITORING), "PrometheusRule"):
        for group in rule["spec"]["groups"]:
            for alert in group["rules"]:
                _check_query(alert["expr"], exported, f"alert {alert['alert']}")


def test_dashboard_reads_exported_metrics(exported):
    dashboards = find(dc.render(dc.MONITORING), "ConfigMap", "octet-grafana-dashboard")
    assert dashboards and dashboards[0]["metadata"]["labels"]["grafana_dashboard"] == "1"
    dashboard = json.loads(dashboards[0]["data"]["octet-dashboard.json"])
    panels = [p for top in dashboard["panels"] for p in [top, *top.get("panels", [])]]
    read = set()
    for panel in panels:
        for target in panel.get("targets", []):
            read.update(_check_query(target["expr"], exported, f"panel {panel['title']!r}"))
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            match = re.fullmatch(r"label_values\((.*), *(\w+)\)", variable["definition"])
            assert match, f"variable {variable['name']}: {variable['definition']}"
            for name in _check_query(match.group(1), exported, f"variable {variable['name']}"):
                assert match.group(2) in exported[name] | TARGET_LABELS
    # The panels the issue asks for: memory (weights, KV used and total, per GPU) and throughput.
    for needed in ("octet_memory_bytes", "octet_kv_cache_usage_ratio", "octet_device_memory_total_bytes",
                   "octet_device_memory_free_bytes", "octet_generation_tokens_total",
                   "octet_time_to_first_token_seconds_bucket", "octet_inter_token_latency_seconds_bucket",
                   "octet_requests_waiting"):
        assert needed in read, f"no panel reads {needed}"


def test_autoscalers_read_metrics_the_adapter_publishes(exported):
    values = yaml.safe_load((dc.MONITORING / "prometheus-adapter-values.yaml").read_text())
    published = set()
    for rule in values["rules"]["custom"]:
        names = _check_query(rule["seriesQuery"], exported, "prometheus-adapter rule")
        assert re.fullmatch(rule["name"]["matches"], names[0]), rule["name"]
        assert set(rule["resources"]["overrides"]) <= TARGET_LABELS
        published.add(rule["name"]["as"])
    read = {m["pods"]["metric"]["name"] for path in dc.OVERLAYS
            for hpa in find(dc.render(path), "HorizontalPodAutoscaler") for m in hpa["spec"]["metrics"]}
    assert read and read <= published, f"autoscalers read {read - published}, which no adapter rule publishes"
