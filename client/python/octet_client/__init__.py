"""Python client for octet's gRPC generation API (octet.v1.Generation, served by octet-router and octet-worker).

    from octet_client import Client
    with Client("127.0.0.1:50051") as client:
        print(client.generate("def fibonacci(n):", max_tokens=64, temperature=0).text)
"""

from octet_client.client import (
    Chunk,
    Client,
    Completion,
    Logprobs,
    MemoryReport,
    ModelInfo,
    OctetError,
    Prompt,
    TokenLogprob,
    Usage,
)

__all__ = ["Chunk", "Client", "Completion", "Logprobs", "MemoryReport", "ModelInfo", "OctetError", "Prompt",
           "TokenLogprob", "Usage"]
