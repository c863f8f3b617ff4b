"""deploy/docker: each Dockerfile names only paths, scripts, presets and build outputs that exist, and its runtime
stage holds exactly the shared libraries the built binary links (checked with ldd through deploy/docker/bundle-libs,
the script the image build itself runs)."""

from __future__ import annotations

import fnmatch
import json
import re
import shlex
import subprocess

import pytest

import deploy_common as dc

DOCKER = dc.DEPLOY / "docker"
DOCKERFILES = sorted(DOCKER.glob("*.Dockerfile"))
BUNDLE_LIBS = DOCKER / "bundle-libs"


def parse(dockerfile) -> list[list[tuple[str, str]]]:
    """Stages, each a list of (INSTRUCTION, arguments) with continuation lines joined and ARG defaults applied."""
    text = re.sub(r"\\\n\s*", " ", dockerfile.read_text())
    args, stages = {}, []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        instruction, _, rest = line.partition(" ")
        instruction = instruction.upper()
        if instruction == "ARG" and not stages:
            name, _, default = rest.partition("=")
            args[name] = default
            continue
        rest = re.sub(r"\$\{(\w+)\}", lambda m: args.get(m.group(1), m.group(0)), rest)
        if instruction == "FROM":
            stages.append([])
        stages[-1].append((instruction, rest))
    return stages


def build_outputs(stages) -> list[str]:
    """Paths under build/PRESET/ that the build stage's RUN lines name (the binaries it builds)."""
    return sorted({p for stage in stages[:-1] for i, rest in stage if i == "RUN"
                   for p in re.findall(r"\bbuild/\w+/[\w/.+-]+", rest)})


def local_binary(build_path: str) -> str:
    """The binary a build/PRESET/... path names, as built here (the CMake layout is the same in every preset)."""
    return dc.harness.binary(build_path.split("/", 2)[2])


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_dockerfile_names_what_exists(dockerfile):
    stages = parse(dockerfile)
    assert len(stages) >= 2, "a multi-stage build: build, then runtime"
    presets = json.loads((dc.REPO / "CMakePresets.json").read_text())
    configure_presets = {p["name"] for p in presets["configurePresets"]}
    build_presets = {p["name"] for p in presets["buildPresets"]}
    ignored = [line.strip() for line in (DOCKER / f"{dockerfile.name}.dockerignore").read_text().splitlines()
               if line.strip() and not line.startswith("#")]
    assert {"build", ".venv", ".git"} <= set(ignored), "local builds and virtualenvs stay out of the build context"
    for stage in stages:
        image = stage[0][1].split()[0]
        assert re.fullmatch(r"nvidia/cuda:13\.0\.\d+-(devel|runtime|base)-ubuntu24\.04|debian:12", image), image
    for stage in stages[:-1]:
        for instruction, rest in stage:
            words = shlex.split(rest)
            if instruction == "COPY" and not rest.startswith("--from"):
                for source in words[:-1]:
                    assert (dc.REPO / source).exists(), f"COPY {source}: not in the repository"
                    assert not any(fnmatch.fnmatch(source.rstrip("/"), i) for i in ignored if i != "."), source
            if instruction == "RUN":
                for script in re.findall(r"(?<![\w/])((?:scripts|deploy)/[\w/.-]+)", rest):
                    assert (dc.REPO / script).is_file(), f"RUN names {script}, which is not in the repository"
                for preset in re.findall(r"cmake --preset (\w+)", rest):
                    assert preset in configure_presets, f"no configure preset {preset}"
                for preset in re.findall(r"cmake --build --preset (\w+)", rest):
                    assert preset in build_presets, f"no build preset {preset}"
                for target in re.findall(r"--target ([\w-]+)", rest):
                    assert any(p.endswith("/" + target) for p in build_outputs(stages)), f"target {target} unused"
    outputs = build_outputs(stages)
    assert outputs, "the build stage names no binary"
    for output in outputs:
        local_binary(output)  # raises with the command that builds it


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_runtime_stage_holds_the_binary_and_its_libraries_only(dockerfile):
    stages = parse(dockerfile)
    runtime = stages[-1]
    binary_name = dockerfile.name.split(".")[0]
    copies = [shlex.split(rest) for i, rest in runtime if i == "COPY"]
    assert copies and all(c[0].startswith("--from=") for c in copies), "the runtime stage copies from the build only"
    destinations = {c[-1].rstrip("/") for c in copies}
    bundle_runs = [rest for stage in stages[:-1] for i, rest in stage if i == "RUN" and "bundle-libs" in rest]
    assert len(bundle_runs) == 1
    lib_dir = shlex.split(bundle_runs[0])[1]
    assert lib_dir.rstrip("/") in destinations, f"the runtime stage does not copy {lib_dir}"
    env = " ".join(rest for i, rest in runtime if i == "ENV")
    assert re.search(rf"LD_LIBRARY_PATH={re.escape(lib_dir)}(:|$| )", env), "the bundled libraries come first"
    entrypoint = json.loads(next(rest for i, rest in runtime if i == "ENTRYPOINT"))
    assert entrypoint[0] in destinations and entrypoint[0].endswith(f"/octet-{binary_name}"), entrypoint
    assert len(copies) == 2, "the runtime stage holds the binary and its libraries, nothing else"
    sources = {c[1] for c in copies}
    assert any(s.endswith("/" + o) for s in sources for o in build_outputs(stages)), "it copies no built binary"
    user = next(rest for i, rest in runtime if i == "USER").split(":")[0]
    assert user not in ("root", "0"), "the image runs as a non-root user"
    exposed = {int(p) for i, rest in runtime if i == "EXPOSE" for p in rest.split()}
    for path in dc.OVERLAYS:
        for _, template in dc.pod_templates(dc.render(path)):
            for container in template["spec"]["containers"]:
                if dc.binary_of(container) == dc.BINARIES[f"octet-{binary_name}"]:
                    assert {p["containerPort"] for p in container["ports"]} == exposed, f"{path}: ports differ"


def test_bundled_libraries_are_the_linked_ones():
    """bundle-libs refuses a library runtime-libs.txt does not name; every library it bundles is one a binary links."""
    linked = {}
    for dockerfile in DOCKERFILES:
        for output in build_outputs(parse(dockerfile)):
            binary = local_binary(output)
            result = subprocess.run([str(BUNDLE_LIBS), "--list", binary], capture_output=True, text=True, timeout=60)
            assert result.returncode == 0, f"{dockerfile.name}: {result.stderr}"
            listed = dict(line.split() for line in result.stdout.splitlines())
            ldd = subprocess.run(["ldd", binary], capture_output=True, text=True, timeout=60).stdout
            sonames = {line.split()[0].rsplit("/", 1)[-1] for line in ldd.splitlines() if line.strip()}
            assert sonames == set(listed), f"bundle-libs --list and ldd differ on {binary}"
            linked.update(listed)
    assert "bundle" in linked.values() and "image" in linked.values()
    for line in (DOCKER / "runtime-libs.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#") and line.split()[1] == "bundle":
            pattern = line.split()[0]
            assert any(fnmatch.fnmatch(s.split(".so")[0], pattern) for s in linked), \
                f"runtime-libs.txt bundles {pattern}, which no binary links"
