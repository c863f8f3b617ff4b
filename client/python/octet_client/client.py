"""A thin typed wrapper over octet.v1.Generation: Client.generate, Client.stream, Client.tokenize, Client.model_info.

Requests are built from keyword arguments named as in SamplingParams (proto/octet/v1/generation.proto); answers come
back as frozen dataclasses; a failed call raises OctetError with the gRPC status code's name.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Iterator, List, Optional, Sequence, Tuple, Union

import grpc

from octet_client._proto.octet.v1 import generation_pb2 as pb
from octet_client._proto.octet.v1 import generation_pb2_grpc as pb_grpc

# A text prompt (tokenized by the server) or already tokenized prompt ids.
Prompt = Union[str, Sequence[int]]

_FINISH_REASONS = {
    pb.FINISH_REASON_STOP: "stop",
    pb.FINISH_REASON_LENGTH: "length",
    pb.FINISH_REASON_CANCELLED: "cancelled",
    pb.FINISH_REASON_ERROR: "error",
}


class OctetError(Exception):
    """A failed call: `code` is the gRPC status code's name (e.g. "INVALID_ARGUMENT", "UNAVAILABLE")."""

    def __init__(self, code: str, message: str):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message

    @classmethod
    def from_rpc_error(cls, error: grpc.RpcError) -> "OctetError":
        code = error.code() if hasattr(error, "code") else None
        details = error.details() if hasattr(error, "details") else None
        return cls(code.name if code is not None else "UNKNOWN", details or str(error))


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int


@dataclass(frozen=True)
class TokenLogprob:
    token_id: int
    logprob: float
    # The token's text (a partial UTF-8 sequence shows as replacement characters).
    text: str


@dataclass(frozen=True)
class Logprobs:
    """Log-probabilities for one generated token: the chosen one and the most likely ones, best first."""

    chosen: TokenLogprob
    top: List[TokenLogprob] = field(default_factory=list)


@dataclass(frozen=True)
class Chunk:
    """One streamed message: the text and tokens added since the previous one."""

    request_id: str
    text: str
    token_ids: List[int]
    # None while streaming; "stop", "length", "cancelled" or "error" on the last message.
    finish_reason: Optional[str] = None
    # Set on the last message.
    usage: Optional[Usage] = None
    # One entry per token in token_ids, when logprobs > 0 was asked for.
    logprobs: List[Logprobs] = field(default_factory=list)


@dataclass(frozen=True)
class Completion:
    """A whole completion: the streamed chunks put together."""

    request_id: str
    text: str
    token_ids: List[int]
    # "stop" (end of sequence, stop token or stop string) or "length" (max_tokens or the context was reached).
    finish_reason: str
    usage: Usage
    logprobs: List[Logprobs] = field(default_factory=list)


@dataclass(frozen=True)
class MemoryReport:
    """What the worker planned at start-up, in bytes (device memory on a GPU, host memory on the CPU)."""

    weights_bytes: int
    kv_cache_bytes: int
    state_bytes: int
    workspace_bytes: int
    device_total_bytes: int
    kv_cache_tokens: int
    kv_cache_tokens_fp8: int
    kv_cache_tokens_bf16: int


@dataclass(frozen=True)
class ModelInfo:
    model_name: str
    # Hugging Face model_type, e.g. "qwen3" or "qwen3_5_text".
    architecture: str
    # Maximum tokens of prompt + completion.
    context_length: int
    weight_dtype: str
    compute_dtype: str
    kv_cache_dtype: str
    vocab_size: int
    # "cpu" or "cuda".
    backend: str
    prefix_caching: bool
    memory: MemoryReport


class Client:
    """A connection to an octet router (or a worker: both serve octet.v1.Generation).

        with Client("127.0.0.1:50051") as client:
            for chunk in client.stream("def fibonacci(n):", max_tokens=64, temperature=0):
                print(chunk.text, end="", flush=True)

    `timeout` (seconds) is every call's deadline unless a call passes its own; for stream() it bounds the whole
    stream. `api_key` is sent as `authorization: Bearer <key>` on every call. `tls_ca` (a PEM file) connects over TLS
    and checks the server against those certificates; `tls=True` does so against the system's CA certificates.
    """

    def __init__(self, address: str, *, timeout: Optional[float] = None, api_key: Optional[str] = None,
                 tls_ca: Optional[Union[str, os.PathLike]] = None, tls: bool = False):
        self.address = address
        self.timeout = timeout
        self._metadata: Tuple[Tuple[str, str], ...] = (("authorization", f"Bearer {api_key}"),) if api_key else ()
        if tls_ca is not None or tls:
            root_certificates = None
            if tls_ca is not None:
                with open(tls_ca, "rb") as f:
                    root_certificates = f.read()
            credentials = grpc.ssl_channel_credentials(root_certificates=root_certificates)
            self._channel = grpc.secure_channel(address, credentials)
        else:
            self._channel = grpc.insecure_channel(address)
        self._stub = pb_grpc.GenerationStub(self._channel)

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def generate(self, prompt: Prompt, *, max_tokens: Optional[int] = None, temperature: Optional[float] = None,
                 top_p: Optional[float] = None, top_k: int = 0, seed: int = 0, stop: Sequence[str] = (),
                 stop_token_ids: Sequence[int] = (), ignore_eos: bool = False, logprobs: int = 0,
                 priority: int = 0, request_id: str = "", timeout: Optional[float] = None) -> Completion:
        """Generates a completion for `prompt` (text, or a sequence of token ids) and returns it whole.

        Sampling arguments are SamplingParams' fields; None (or the zero default) leaves the server's default
        (max_tokens: up to the end of the context; temperature: 1, 0 is greedy; top_p: 1; top_k 0: no limit;
        seed 0: derived from the request)."""
        text: List[str] = []
        token_ids: List[int] = []
        all_logprobs: List[Logprobs] = []
        last: Optional[Chunk] = None
        for chunk in self.stream(prompt, max_tokens=max_tokens, temperature=temperature, top_p=top_p, top_k=top_k,
                                 seed=seed, stop=stop, stop_token_ids=stop_token_ids, ignore_eos=ignore_eos,
                                 logprobs=logprobs, priority=priority, request_id=request_id, timeout=timeout):
            text.append(chunk.text)
            token_ids.extend(chunk.token_ids)
            all_logprobs.extend(chunk.logprobs)
            last = chunk
        if last is None or last.finish_reason is None or last.usage is None:
            raise OctetError("INTERNAL", "the Generate stream ended without a finish reason and usage")
        return Completion(request_id=last.request_id, text="".join(text), token_ids=token_ids,
                          finish_reason=last.finish_reason, usage=last.usage, logprobs=all_logprobs)

    def stream(self, prompt: Prompt, *, max_tokens: Optional[int] = None, temperature: Optional[float] = None,
               top_p: Optional[float] = None, top_k: int = 0, seed: int = 0, stop: Sequence[str] = (),
               stop_token_ids: Sequence[int] = (), ignore_eos: bool = False, logprobs: int = 0, priority: int = 0,
               request_id: str = "", timeout: Optional[float] = None) -> Iterator[Chunk]:
        """Generates a completion for `prompt` and yields it as it is produced, one Chunk per streamed message; the
        last one carries finish_reason and usage. Arguments as generate(). Leaving the loop early (or closing the
        iterator) cancels the call; a failed call raises OctetError from the iteration."""
        stop = [stop] if isinstance(stop, str) else list(stop)  # one stop string, or several
        sampling = pb.SamplingParams(top_k=top_k, seed=seed, stop=stop, stop_token_ids=list(stop_token_ids),
                                     ignore_eos=ignore_eos, logprobs=logprobs)
        # Optional fields: unset (the server's default) unless given.
        if max_tokens is not None:
            sampling.max_tokens = max_tokens
        if temperature is not None:
            sampling.temperature = temperature
        if top_p is not None:
            sampling.top_p = top_p
        request = pb.GenerateRequest(request_id=request_id, priority=priority, sampling=sampling)
        if isinstance(prompt, str):
            request.prompt = prompt
        elif isinstance(prompt, (bytes, bytearray)):
            raise TypeError("prompt must be a str or a sequence of token ids, not bytes")
        else:
            request.prompt_token_ids.ids.extend(int(t) for t in prompt)
        call = self._stub.Generate(request, timeout=self._timeout(timeout), metadata=self._metadata)
        return self._chunks(call)

    def tokenize(self, text: str, *, add_special_tokens: bool = False, timeout: Optional[float] = None) -> List[int]:
        """The served model's token ids for `text` (with its beginning-of-sequence token if asked and it has one)."""
        try:
            response = self._stub.Tokenize(pb.TokenizeRequest(text=text, add_special_tokens=add_special_tokens),
                                           timeout=self._timeout(timeout), metadata=self._metadata)
        except grpc.RpcError as e:
            raise OctetError.from_rpc_error(e) from None
        return list(response.token_ids)

    def model_info(self, *, timeout: Optional[float] = None) -> ModelInfo:
        """Describes the served model."""
        try:
            m = self._stub.GetModelInfo(pb.GetModelInfoRequest(), timeout=self._timeout(timeout),
                                        metadata=self._metadata)
        except grpc.RpcError as e:
            raise OctetError.from_rpc_error(e) from None
        memory = m.memory
        return ModelInfo(
            model_name=m.model_name, architecture=m.architecture, context_length=m.context_length,
            weight_dtype=m.weight_dtype, compute_dtype=m.compute_dtype, kv_cache_dtype=m.kv_cache_dtype,
            vocab_size=m.vocab_size, backend=m.backend, prefix_caching=m.prefix_caching,
            memory=MemoryReport(
                weights_bytes=memory.weights_bytes, kv_cache_bytes=memory.kv_cache_bytes,
                state_bytes=memory.state_bytes, workspace_bytes=memory.workspace_bytes,
                device_total_bytes=memory.device_total_bytes, kv_cache_tokens=memory.kv_cache_tokens,
                kv_cache_tokens_fp8=memory.kv_cache_tokens_fp8, kv_cache_tokens_bf16=memory.kv_cache_tokens_bf16))

    def _timeout(self, timeout: Optional[float]) -> Optional[float]:
        return timeout if timeout is not None else self.timeout

    @staticmethod
    def _chunks(call: Any) -> Iterator[Chunk]:  # call: grpc's streaming call, an iterator and a grpc.Call
        finished = False
        try:
            for message in call:
                yield _chunk(message)
            finished = True
        except grpc.RpcError as e:
            finished = True
            raise OctetError.from_rpc_error(e) from None
        finally:
            if not finished:  # the caller left the loop early: stop the generation
                call.cancel()


def _token_logprob(t: pb.TokenLogprob) -> TokenLogprob:
    return TokenLogprob(token_id=t.token_id, logprob=t.logprob, text=t.text)


def _chunk(message: pb.GenerateResponse) -> Chunk:
    return Chunk(
        request_id=message.request_id, text=message.text, token_ids=list(message.token_ids),
        finish_reason=_FINISH_REASONS.get(message.finish_reason),
        usage=(Usage(prompt_tokens=message.usage.prompt_tokens, completion_tokens=message.usage.completion_tokens)
               if message.HasField("usage") else None),
        logprobs=[Logprobs(chosen=_token_logprob(entry.chosen), top=[_token_logprob(t) for t in entry.top])
                  for entry in message.logprobs])
