"""Builds octet_client, generating its gRPC stubs from the repository's proto/ with grpcio-tools.

The stubs land in octet_client/_proto/octet/v1/<name>_pb2.py, <name>_pb2.pyi and <name>_pb2_grpc.py, with their
imports of each other rewritten to point inside the package (protoc writes `from octet.v1 import ...`). They are
written into the build folder for a regular install and into the source tree for an editable one (`pip install -e`),
and are never committed. The rest of the metadata is in pyproject.toml.
"""

from __future__ import annotations

import importlib.metadata
import pathlib
import re

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = pathlib.Path(__file__).resolve().parent
PROTO_ROOT = HERE.parent.parent / "proto"
PROTO_GLOB = "octet/v1/*.proto"
# Where the generated tree goes, relative to a folder on sys.path: octet_client/_proto/octet/v1/...
STUB_DIR = pathlib.PurePath("octet_client", "_proto")
STUB_MODULE = "octet_client._proto"


def generate_stubs(root: pathlib.Path) -> list[pathlib.Path]:
    """Runs grpc_tools.protoc over proto/octet/v1/*.proto into root/octet_client/_proto; returns the files written."""
    import grpc_tools
    from grpc_tools import protoc

    protos = sorted(str(p.relative_to(PROTO_ROOT)) for p in PROTO_ROOT.glob(PROTO_GLOB))
    if not protos:
        raise RuntimeError(f"no {PROTO_GLOB} under {PROTO_ROOT}: octet_client builds from a checkout of the octet "
                           "repository (client/python, next to proto/)")
    out = root / STUB_DIR
    out.mkdir(parents=True, exist_ok=True)
    well_known = pathlib.Path(grpc_tools.__file__).parent / "_proto"
    code = protoc.main(["grpc_tools.protoc", f"-I{PROTO_ROOT}", f"-I{well_known}", f"--python_out={out}",
                        f"--pyi_out={out}", f"--grpc_python_out={out}", *protos])
    if code != 0:
        raise RuntimeError(f"grpc_tools.protoc failed ({code}) on {protos}")

    written = []
    for proto in protos:
        package_dir = out / pathlib.PurePath(proto).parent
        # Every folder from the .proto's own up to _proto is a package.
        folder = package_dir
        while True:
            (folder / "__init__.py").touch()
            written.append(folder / "__init__.py")
            if folder == out:
                break
            folder = folder.parent
        stem = pathlib.PurePath(proto).stem
        for name in (f"{stem}_pb2.py", f"{stem}_pb2.pyi", f"{stem}_pb2_grpc.py"):
            path = package_dir / name
            text = path.read_text()
            # `from octet.v1 import x_pb2 as ...` -> `from octet_client._proto.octet.v1 import x_pb2 as ...`
            path.write_text(re.sub(r"^from octet([.\s])", rf"from {STUB_MODULE}.octet\1", text, flags=re.M))
            written.append(path)
    return sorted(set(written))


def runtime_requirements() -> list[str]:
    """grpcio and protobuf as the grpcio-tools doing the generating requires them: generated code needs a runtime at
    least as new as its generator, of the same major version."""
    try:
        tools_requirements = importlib.metadata.requires("grpcio-tools") or []
    except importlib.metadata.PackageNotFoundError:
        raise RuntimeError("building octet_client needs grpcio-tools: install it first when building with "
                           "--no-build-isolation (scripts/setup does)") from None
    wanted = {"grpcio", "protobuf"}
    found = []
    for requirement in tools_requirements:
        # "protobuf (<5.0dev,>=4.21.6)" or "protobuf<6.0dev,>=5.26.1"; environment markers are dropped.
        match = re.match(r"^\s*([A-Za-z0-9_.-]+)\s*\(?([^;()]*)\)?", requirement)
        if match and match.group(1).lower() in wanted:
            found.append(match.group(1).lower() + match.group(2).replace(" ", ""))
    names = {re.match(r"[a-z]+", r).group(0) for r in found}
    return found + sorted(wanted - names)


class BuildPyWithStubs(build_py):
    """build_py that also generates the gRPC stubs (into the source tree in editable mode)."""

    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            generate_stubs(HERE)
        else:
            generate_stubs(pathlib.Path(self.build_lib))


setup(cmdclass={"build_py": BuildPyWithStubs}, install_requires=runtime_requirements())
