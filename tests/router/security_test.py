"""octet-router's security end to end: API keys on the gRPC and HTTP ports, TLS on both, mutual TLS to a real
octet-worker, request size limits, and the `octet` CLI's TLS and key flags.

Certificates are made for each run with the `openssl` command in a temporary folder (no key is ever committed):
a test CA, a server certificate for 127.0.0.1/localhost, a client certificate from the same CA, and one from a
second, untrusted CA."""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import ssl
import subprocess
import sys
import urllib.error
import urllib.request

import grpc
import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "integration"))
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

import harness  # noqa: E402
from fake_worker import FakeWorker  # noqa: E402

MODEL_DIR = harness.REPO_ROOT / "models" / "qwen3_5-code-small"
GRPC_READY = r"octet-router listening on 127\.0\.0\.1:(\d+)"
HTTP_READY = r"octet-router http listening on 127\.0\.0\.1:(\d+)"
TIMEOUT = 30.0
KEYS = ("sk-alpha-6f1c2e", "sk-beta-93ad07")
WRONG_KEYS = ("sk-alpha-6f1c2", "sk-alpha-6f1c2e0", "SK-ALPHA-6F1C2E", "sk-gamma-000000")

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")


# --- certificates ------------------------------------------------------------------------------------------------


def _openssl(*args: str, cwd: pathlib.Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def _make_ca(folder: pathlib.Path, name: str) -> None:
    (folder / f"{name}.cnf").write_text(
        "[req]\ndistinguished_name = dn\nprompt = no\n[dn]\nCN = octet test " + name + "\n"
        "[v3_ca]\nbasicConstraints = critical,CA:TRUE\nkeyUsage = critical,keyCertSign,cRLSign\n"
        "subjectKeyIdentifier = hash\n")
    _openssl("req", "-x509", "-config", f"{name}.cnf", "-extensions", "v3_ca", "-newkey", "ec", "-pkeyopt",
             "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.pem", "-days", "2",
             cwd=folder)


def _make_leaf(folder: pathlib.Path, name: str, ca: str, extensions: str) -> None:
    (folder / f"{name}.cnf").write_text(
        "[req]\ndistinguished_name = dn\nprompt = no\n[dn]\nCN = " + name + "\n[ext]\n" + extensions)
    _openssl("req", "-new", "-config", f"{name}.cnf", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
             "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr", cwd=folder)
    _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}.key", "-CAcreateserial",
             "-out", f"{name}.pem", "-days", "2", "-extfile", f"{name}.cnf", "-extensions", "ext", cwd=folder)


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> pathlib.Path:
    folder = tmp_path_factory.mktemp("pki")
    _make_ca(folder, "ca")
    _make_ca(folder, "rogue_ca")
    _make_leaf(folder, "server", "ca",
               "basicConstraints = CA:FALSE\nextendedKeyUsage = serverAuth\n"
               "subjectAltName = IP:127.0.0.1,DNS:localhost\n")
    _make_leaf(folder, "client", "ca", "basicConstraints = CA:FALSE\nextendedKeyUsage = clientAuth\n")
    _make_leaf(folder, "rogue_client", "rogue_ca",
               "basicConstraints = CA:FALSE\nextendedKeyUsage = clientAuth\n")
    for key in folder.glob("*.key"):
        key.chmod(0o600)
    return folder


@pytest.fixture(scope="module")
def key_file(tmp_path_factory) -> pathlib.Path:
    path = tmp_path_factory.mktemp("keys") / "api_keys"
    path.write_text("# octet-router API keys\n\n" + KEYS[0] + "\n   " + KEYS[1] + "  \n# retired: sk-old\n")
    path.chmod(0o600)
    return path


# --- processes ---------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def stubs():
    return harness.load_stubs()


@pytest.fixture
def fake_worker(stubs):
    worker = FakeWorker(stubs, "a").start()
    yield worker
    worker.stop()


@pytest.fixture
def start_router():
    routers = []

    def start(workers: str, *flags: str, ready: str = GRPC_READY) -> harness.Process:
        router = harness.start_process(
            [harness.binary("router/octet-router"), "--workers", workers, "--host", "127.0.0.1", "--port", "0",
             "--health-check-interval", "200ms", *flags], ready, timeout=30)
        routers.append(router)
        return router

    yield start
    for router in routers:
        output = router.output()
        assert router.stop(timeout=20) == 0, output
        for key in KEYS + WRONG_KEYS:
            assert key not in output, "a key reached the router's log"


def _grpc_port(router: harness.Process) -> int:
    return int(router.wait_for_line(GRPC_READY, 5).group(1))


def _http_base(router: harness.Process, scheme: str = "http") -> str:
    return f"{scheme}://127.0.0.1:{router.wait_for_line(HTTP_READY, 5).group(1)}"


def _generate(stubs, channel, metadata=(), prompt="hello there") -> list:
    stub = stubs.generation_pb2_grpc.GenerationStub(channel)
    request = stubs.generation_pb2.GenerateRequest(prompt=prompt)
    return list(stub.Generate(request, timeout=TIMEOUT, metadata=metadata))


def _bearer(key: str):
    return (("authorization", f"Bearer {key}"),)


def _http(base: str, method: str, path: str, body: dict | None = None, key: str | None = None,
          context: ssl.SSLContext | None = None) -> tuple[int, dict, bytes]:
    headers = {"Content-Type": "application/json"}
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(base + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT, context=context) as response:
            return response.status, {k.lower(): v for k, v in response.headers.items()}, response.read()
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()


def _assert_invalid_api_key(status: int, headers: dict, body: bytes) -> None:
    assert status == 401, body
    assert headers.get("www-authenticate") == "Bearer"
    assert json.loads(body) == {"error": {"message": "missing or invalid API key", "type": "invalid_request_error",
                                          "param": None, "code": "invalid_api_key"}}


# --- API keys ----------------------------------------------------------------------------------------------------


def test_grpc_refuses_a_missing_or_wrong_key_and_serves_the_right_one(stubs, fake_worker, start_router, key_file):
    router = start_router(fake_worker.address, "--api-key-file", str(key_file))
    channel = grpc.insecure_channel(f"127.0.0.1:{_grpc_port(router)}")
    pb, grpc_pb = stubs.generation_pb2, stubs.generation_pb2_grpc
    stub = grpc_pb.GenerationStub(channel)
    refused = [(), _bearer(""), (("authorization", KEYS[0]),), (("authorization", f"Basic {KEYS[0]}"),)]
    refused += [_bearer(key) for key in WRONG_KEYS]
    for metadata in refused:
        for call in (lambda: _generate(stubs, channel, metadata),
                     lambda: stub.Tokenize(pb.TokenizeRequest(text="hi"), timeout=TIMEOUT, metadata=metadata),
                     lambda: stub.GetModelInfo(pb.GetModelInfoRequest(), timeout=TIMEOUT, metadata=metadata)):
            with pytest.raises(grpc.RpcError) as error:
                call()
            assert error.value.code() == grpc.StatusCode.UNAUTHENTICATED, metadata
            assert error.value.details() == "missing or invalid API key"
    assert fake_worker.calls == []  # nothing refused reached the worker

    for key in KEYS:
        assert [r.text for r in _generate(stubs, channel, _bearer(key))] == ["t0 ", "t1 ", "t2 ", "t3 ", "t4 ", ""]
        assert stub.GetModelInfo(pb.GetModelInfoRequest(), timeout=TIMEOUT, metadata=_bearer(key)).model_name == \
            "fake-a"
    assert len(fake_worker.calls_of("Generate")) == 2
    assert all("authorization" not in call.metadata for call in fake_worker.calls)  # keys stay at the router
    # Health stays open for load balancers and probes.
    health = stubs.health_pb2_grpc.HealthStub(channel)
    assert health.Check(stubs.health_pb2.HealthCheckRequest(), timeout=TIMEOUT).status == \
        stubs.health_pb2.HealthCheckResponse.SERVING
    channel.close()


def test_http_refuses_a_missing_or_wrong_key_with_openai_401_and_serves_the_right_one(fake_worker, start_router,
                                                                                    key_file):
    router = start_router(fake_worker.address, "--api-key-file", str(key_file), "--http-port", "0",
                          ready=HTTP_READY)
    base = _http_base(router)
    completion = {"prompt": "hello", "max_tokens": 5}
    for key in (None, "", *WRONG_KEYS):
        _assert_invalid_api_key(*_http(base, "POST", "/v1/completions", completion, key=key))
        _assert_invalid_api_key(*_http(base, "POST", "/v1/chat/completions",
                                       {"messages": [{"role": "user", "content": "hi"}]}, key=key))
        _assert_invalid_api_key(*_http(base, "GET", "/v1/models", key=key))
    assert fake_worker.calls == []

    status, _, body = _http(base, "GET", "/health")  # open without a key
    assert status == 200, body
    status, _, body = _http(base, "GET", "/v1/models", key=KEYS[1])
    assert status == 200, body
    assert [m["id"] for m in json.loads(body)["data"]] == ["fake-a"]
    status, _, body = _http(base, "POST", "/v1/completions", completion, key=KEYS[0])
    assert status == 200, body
    assert json.loads(body)["choices"][0]["text"] == "t0 t1 t2 t3 t4 "
    assert len(fake_worker.calls_of("Generate")) == 1
    # The key the HTTP client sent is not what reached the worker: the router's own gRPC check let the call through.
    assert "authorization" not in fake_worker.calls_of("Generate")[0].metadata

    openai = pytest.importorskip("openai")
    client = openai.OpenAI(base_url=base + "/v1", api_key=WRONG_KEYS[0], max_retries=0, timeout=TIMEOUT)
    with pytest.raises(openai.AuthenticationError) as error:
        client.completions.create(model="fake-a", prompt="hello", max_tokens=5)
    assert error.value.status_code == 401
    assert error.value.code == "invalid_api_key"
    client = openai.OpenAI(base_url=base + "/v1", api_key=KEYS[0], max_retries=0, timeout=TIMEOUT)
    assert client.completions.create(model="fake-a", prompt="hello", max_tokens=5).choices[0].text == \
        "t0 t1 t2 t3 t4 "


def test_start_up_refuses_bad_security_flags(pki, key_file, tmp_path):
    empty_keys = tmp_path / "empty"
    empty_keys.write_text("# none yet\n")
    bad_line = tmp_path / "bad"
    bad_line.write_text("sk-ok\nsk-has a-space\n")
    cases = [
        (["--tls-cert", str(pki / "server.pem")], "--tls-cert and --tls-key go together"),
        (["--tls-cert", str(pki / "server.pem"), "--tls-key", str(pki / "client.key")], "is not the key of"),
        (["--tls-cert", str(pki / "server.key"), "--tls-key", str(pki / "server.key")], "holds no PEM certificate"),
        (["--api-key-file", str(tmp_path / "missing")], "cannot read the API key file"),
        (["--api-key-file", str(empty_keys)], "holds no API key"),
        (["--api-key-file", str(bad_line)], "line 2: a key must not contain whitespace"),
        (["--worker-tls-cert", str(pki / "client.pem")], "--worker-tls-cert and --worker-tls-key go together"),
        (["--worker-tls-server-name", "localhost"], "--worker-tls-server-name needs --worker-tls-ca"),
        (["--max-request-bytes", "0"], "--max-request-bytes must be at least 1"),
    ]
    for flags, message in cases:
        result = subprocess.run([harness.binary("router/octet-router"), "--workers", "127.0.0.1:1", "--host",
                                 "127.0.0.1", "--port", "0", *flags], capture_output=True, text=True, timeout=30)
        assert result.returncode != 0, flags
        assert message in result.stderr, (flags, result.stderr)
        assert "has a-space" not in result.stderr and "sk-ok" not in result.stderr


# --- TLS on the router -------------------------------------------------------------------------------------------


def test_tls_on_grpc_and_https_works_with_the_ca_and_fails_without_it(stubs, fake_worker, start_router, pki,
                                                                      key_file):
    router = start_router(fake_worker.address, "--tls-cert", str(pki / "server.pem"), "--tls-key",
                          str(pki / "server.key"), "--api-key-file", str(key_file), "--http-port", "0",
                          ready=HTTP_READY)
    address = f"127.0.0.1:{_grpc_port(router)}"
    trusted = grpc.secure_channel(address, grpc.ssl_channel_credentials((pki / "ca.pem").read_bytes()))
    assert [r.text for r in _generate(stubs, trusted, _bearer(KEYS[0]))][-2:] == ["t4 ", ""]
    with pytest.raises(grpc.RpcError) as error:
        _generate(stubs, trusted)  # TLS does not replace the key
    assert error.value.code() == grpc.StatusCode.UNAUTHENTICATED
    trusted.close()
    for channel in (grpc.secure_channel(address, grpc.ssl_channel_credentials()),  # the system's CAs
                    grpc.secure_channel(address, grpc.ssl_channel_credentials((pki / "rogue_ca.pem").read_bytes())),
                    grpc.insecure_channel(address)):
        with pytest.raises(grpc.RpcError) as error:
            _generate(stubs, channel, _bearer(KEYS[0]))
        assert error.value.code() == grpc.StatusCode.UNAVAILABLE
        channel.close()
    assert len(fake_worker.calls_of("Generate")) == 1

    base = _http_base(router, "https")
    with_ca = ssl.create_default_context(cafile=str(pki / "ca.pem"))
    status, _, body = _http(base, "GET", "/health", context=with_ca)
    assert status == 200, body
    status, _, body = _http(base, "POST", "/v1/completions", {"prompt": "hi", "max_tokens": 5}, key=KEYS[1],
                            context=with_ca)
    assert status == 200, body
    assert json.loads(body)["choices"][0]["text"] == "t0 t1 t2 t3 t4 "
    _assert_invalid_api_key(*_http(base, "GET", "/v1/models", context=with_ca))
    with pytest.raises(urllib.error.URLError) as error:
        _http(base, "GET", "/health")  # the system's CAs do not know the test CA
    assert isinstance(error.value.reason, ssl.SSLCertVerificationError)
    with pytest.raises((OSError, urllib.error.URLError)):
        _http(base.replace("https://", "http://"), "GET", "/health")  # plain HTTP to the TLS port
    # The router still answers after the failed handshakes.
    assert _http(base, "GET", "/health", context=with_ca)[0] == 200


def test_octet_cli_uses_tls_ca_and_api_key(fake_worker, start_router, pki, key_file, tmp_path):
    router = start_router(fake_worker.address, "--tls-cert", str(pki / "server.pem"), "--tls-key",
                          str(pki / "server.key"), "--api-key-file", str(key_file))
    address = f"127.0.0.1:{_grpc_port(router)}"
    client_key = tmp_path / "client_key"
    client_key.write_text("# my key\n" + KEYS[1] + "\n")

    def octet(*flags: str, env: dict | None = None) -> subprocess.CompletedProcess:
        full_env = {k: v for k, v in os.environ.items() if k != "OCTET_API_KEY"}
        full_env.update(env or {})
        return subprocess.run([harness.binary("client/octet"), "model-info", "--addr", address,
                               "--connect-timeout", "3s", *flags], capture_output=True, text=True, timeout=60,
                              env=full_env)

    ok = octet("--tls-ca", str(pki / "ca.pem"), "--api-key-file", str(client_key))
    assert ok.returncode == 0, ok.stderr
    assert "fake-a" in ok.stdout
    from_env = octet("--tls-ca", str(pki / "ca.pem"), env={"OCTET_API_KEY": KEYS[0]})
    assert from_env.returncode == 0, from_env.stderr
    wrong = octet("--tls-ca", str(pki / "ca.pem"), env={"OCTET_API_KEY": WRONG_KEYS[0]})
    assert wrong.returncode == 1
    assert "UNAUTHENTICATED: missing or invalid API key" in wrong.stderr
    assert WRONG_KEYS[0] not in wrong.stderr + wrong.stdout
    no_ca = octet("--api-key-file", str(client_key))  # plaintext to a TLS port
    assert no_ca.returncode == 1
    assert "UNAVAILABLE" in no_ca.stderr


# --- request size --------------------------------------------------------------------------------------------------


def test_a_request_over_max_request_bytes_is_resource_exhausted(stubs, fake_worker, start_router):
    router = start_router(fake_worker.address, "--max-request-bytes", "4096")
    channel = grpc.insecure_channel(f"127.0.0.1:{_grpc_port(router)}")
    with pytest.raises(grpc.RpcError) as error:
        _generate(stubs, channel, prompt="x" * 8192)
    assert error.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert fake_worker.calls == []
    assert _generate(stubs, channel, prompt="x" * 1024)[-1].finish_reason == stubs.generation_pb2.FINISH_REASON_STOP
    channel.close()


# --- mutual TLS to a real worker -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tls_worker(pki):
    """A real octet-worker on the bundled CPU model that requires client certificates from the test CA."""
    worker = harness.start_process(
        [harness.binary("worker/server/octet-worker"), "--model", str(MODEL_DIR), "--host", "127.0.0.1", "--port",
         "0", "--max-model-len", "256", "--tls-cert", str(pki / "server.pem"), "--tls-key", str(pki / "server.key"),
         "--tls-client-ca", str(pki / "ca.pem"), "--max-request-bytes", "65536"],
        r"octet-worker: serving \S+ on 127\.0\.0\.1:(\d+)", timeout=120)
    yield f"127.0.0.1:{worker.ready_match.group(1)}"
    worker.stop()


def _mtls_channel(address: str, pki: pathlib.Path, client: str | None = "client") -> grpc.Channel:
    credentials = grpc.ssl_channel_credentials(
        root_certificates=(pki / "ca.pem").read_bytes(),
        private_key=(pki / f"{client}.key").read_bytes() if client else None,
        certificate_chain=(pki / f"{client}.pem").read_bytes() if client else None)
    return grpc.secure_channel(address, credentials)


def test_router_reaches_a_worker_over_mutual_tls(stubs, tls_worker, start_router, pki):
    for extra in ([], ["--worker-tls-server-name", "localhost"]):
        router = start_router(tls_worker, "--worker-tls-ca", str(pki / "ca.pem"), "--worker-tls-cert",
                              str(pki / "client.pem"), "--worker-tls-key", str(pki / "client.key"), *extra)
        router.wait_for_line(r"worker 127\.0\.0\.1:\d+ is healthy", 10)
        channel = grpc.insecure_channel(f"127.0.0.1:{_grpc_port(router)}")
        pb = stubs.generation_pb2
        stub = stubs.generation_pb2_grpc.GenerationStub(channel)
        responses = list(stub.Generate(pb.GenerateRequest(prompt="def add(a, b):",
                                                          sampling=pb.SamplingParams(max_tokens=8, temperature=0,
                                                                                    ignore_eos=True)),
                                       timeout=120))
        assert responses[-1].usage.completion_tokens == 8
        assert stub.GetModelInfo(pb.GetModelInfoRequest(), timeout=TIMEOUT).model_name == "qwen3_5-code-small"
        channel.close()


def test_a_worker_requiring_client_certificates_refuses_routers_without_good_ones(stubs, tls_worker, start_router,
                                                                                 pki):
    refused = {
        "no client certificate": ["--worker-tls-ca", str(pki / "ca.pem")],
        "a certificate of another CA": ["--worker-tls-ca", str(pki / "ca.pem"), "--worker-tls-cert",
                                        str(pki / "rogue_client.pem"), "--worker-tls-key",
                                        str(pki / "rogue_client.key")],
        "plaintext": [],
        "the wrong server name": ["--worker-tls-ca", str(pki / "ca.pem"), "--worker-tls-cert",
                                  str(pki / "client.pem"), "--worker-tls-key", str(pki / "client.key"),
                                  "--worker-tls-server-name", "octet-worker.invalid"],
    }
    for why, flags in refused.items():
        router = start_router(tls_worker, *flags)
        router.wait_for_line(r"worker 127\.0\.0\.1:\d+ is unhealthy", 10)
        channel = grpc.insecure_channel(f"127.0.0.1:{_grpc_port(router)}")
        with pytest.raises(grpc.RpcError) as error:
            _generate(stubs, channel)
        assert error.value.code() == grpc.StatusCode.UNAVAILABLE, why
        assert "no healthy worker" in error.value.details(), why
        channel.close()


def test_the_worker_checks_client_certificates_and_request_size_itself(stubs, tls_worker, pki):
    pb = stubs.generation_pb2
    for client in (None, "rogue_client"):
        channel = _mtls_channel(tls_worker, pki, client)
        with pytest.raises(grpc.RpcError) as error:
            stubs.generation_pb2_grpc.GenerationStub(channel).GetModelInfo(pb.GetModelInfoRequest(), timeout=TIMEOUT)
        assert error.value.code() == grpc.StatusCode.UNAVAILABLE, client
        channel.close()
    channel = _mtls_channel(tls_worker, pki)
    stub = stubs.generation_pb2_grpc.GenerationStub(channel)
    assert stub.GetModelInfo(pb.GetModelInfoRequest(), timeout=TIMEOUT).context_length == 256
    with pytest.raises(grpc.RpcError) as error:
        list(stub.Generate(pb.GenerateRequest(prompt="x" * 100_000), timeout=TIMEOUT))
    assert error.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    channel.close()
