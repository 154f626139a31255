"""deploy/ cannot be built here (no image registry): these tests read its files and check that every command,
option, path and name they use exists, so the recipes cannot rot."""

from __future__ import annotations

import shlex
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.locust_process import ROOT

DEPLOY = ROOT / "deploy"
DOCKERFILE = (DEPLOY / "Dockerfile").read_text()
COMPOSE = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
KUBERNETES = [
    document
    for path in sorted((DEPLOY / "kubernetes").glob("*.yaml"))
    for document in yaml.safe_load_all(path.read_text())
    if document
]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
RESULTS_DIR = "/home/locust/results"  # where the image's user writes the verdict files


def _locust_parser() -> Any:
    """Locust's parser with the pack's options on it, as `flap` builds it."""
    from locust.argument_parser import get_parser

    import flapping_pack  # noqa: F401  registers the pack's options

    return get_parser()


def _known_flags(parser: Any) -> set[str]:
    return {flag for action in parser._actions for flag in action.option_strings}


def _known_env_vars(parser: Any) -> set[str]:
    return {action.env_var for action in parser._actions if getattr(action, "env_var", None)}


def _check_arguments(program: list[str], args: list[str]) -> None:
    """Every --option in `args` exists for `program` (flap, or python -m refserver)."""
    if program == ["flap"]:
        known = _known_flags(_locust_parser())
    elif program == ["python", "-m", "refserver"]:
        from refserver.cli import build_parser

        known = _known_flags(build_parser())
        build_parser().parse_args(args)  # simple values: parse them too
    else:
        raise AssertionError(f"unknown program {program}")
    for arg in args:
        if arg.startswith("-"):
            flag = arg.split("=", 1)[0]
            assert flag in known, f"{' '.join(program)}: no option {flag}"


def _interpolated(value: str) -> str:
    """A compose value with each ${NAME:-default} replaced by its default."""
    import re

    return re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", value)


# --- Dockerfile -----------------------------------------------------------------------------------


def _dockerfile_lines() -> list[tuple[str, str]]:
    """(instruction, rest) for each instruction, continuation lines joined."""
    joined = DOCKERFILE.replace("\\\n", " ")
    lines = [line.strip() for line in joined.splitlines() if line.strip() and not line.strip().startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines]


def test_the_image_is_the_official_locust_image_of_the_pinned_version() -> None:
    """FROM locustio/locust:<the locust version pinned in requirements.txt>."""
    pinned = next(
        line.split("==")[1].strip()
        for line in (ROOT / "requirements.txt").read_text().splitlines()
        if line.startswith("locust==")
    )
    froms = [rest for instruction, rest in _dockerfile_lines() if instruction == "FROM"]
    assert froms == [f"locustio/locust:{pinned}"]


def test_the_image_copies_the_whole_package_and_runs_flap() -> None:
    """COPY brings every file the package build needs, each of which exists; pip installs it; flap is the entry."""
    copied: set[str] = set()
    for instruction, rest in _dockerfile_lines():
        if instruction == "COPY":
            sources = [word for word in shlex.split(rest) if not word.startswith("--")][:-1]
            for source in sources:
                assert (ROOT / source).exists(), source
            copied.update(sources)
    setuptools = PYPROJECT["tool"]["setuptools"]
    needed = {package.split(".")[0] for package in setuptools["packages"]}
    needed |= {f"{module}.py" for module in setuptools["py-modules"]}
    needed |= {"pyproject.toml", "requirements.txt", PYPROJECT["project"]["readme"]}
    assert needed <= copied, needed - copied
    runs = " ".join(rest for instruction, rest in _dockerfile_lines() if instruction == "RUN")
    assert "pip install --no-cache-dir ." in runs and RESULTS_DIR in runs
    entrypoints = [rest for instruction, rest in _dockerfile_lines() if instruction == "ENTRYPOINT"]
    assert entrypoints == ['["flap"]'] and "flap" in PYPROJECT["project"]["scripts"]


# --- compose --------------------------------------------------------------------------------------


def _compose_program(service: dict[str, Any]) -> list[str]:
    return list(service.get("entrypoint", ["flap"]))


def test_every_compose_command_uses_options_that_exist() -> None:
    """Each service's command: flap's options (Locust's and the pack's) or the bundled server's; env vars too."""
    parser = _locust_parser()
    for name, service in COMPOSE["services"].items():
        args = [_interpolated(str(arg)) for arg in service["command"]]
        _check_arguments(_compose_program(service), args)
        for variable in service.get("environment", {}):
            assert variable in _known_env_vars(parser), f"{name}: {variable}"


def test_compose_has_a_master_scalable_workers_and_an_optional_bundled_server() -> None:
    """Workers find the master by its service name and set no port; the server is behind a profile, at the
    master's default --host, and serves the metrics the master reads."""
    services = COMPOSE["services"]
    assert set(services) == {"master", "worker", "server"}
    assert "--master" in services["master"]["command"]
    worker = services["worker"]
    assert "--master-host=master" in worker["command"] and "ports" not in worker and "container_name" not in worker
    assert services["server"]["profiles"] == ["bundled-server"]
    master_args = [_interpolated(str(arg)) for arg in services["master"]["command"]]
    server_args = services["server"]["command"]
    port = server_args[server_args.index("--port") + 1]
    assert f"--host=ws://server:{port}/" in master_args
    assert f"--server-metrics-url=http://server:{port}/metrics" in master_args
    outputs = [arg for arg in master_args if arg.startswith(("--verdict-json", "--junit-xml", "--resource-csv"))]
    assert len(outputs) == 3 and all(f"={RESULTS_DIR}/" in arg for arg in outputs)
    assert f"results:{RESULTS_DIR}" in services["master"]["volumes"]


def test_the_agents_metric_of_the_compose_file_is_the_bundled_servers() -> None:
    """The master's default --agents-metric is a gauge the bundled server exports."""
    command = [_interpolated(str(arg)) for arg in COMPOSE["services"]["master"]["command"]]
    metric = next(arg.split("=", 1)[1] for arg in command if arg.startswith("--agents-metric="))
    assert f'"{metric}"' in (ROOT / "refserver" / "server.py").read_text()


# --- Kubernetes -----------------------------------------------------------------------------------


def _resource(kind: str, name: str) -> dict[str, Any]:
    matches = [d for d in KUBERNETES if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(matches) == 1, f"{kind}/{name}"
    return matches[0]


def _container(deployment: dict[str, Any]) -> dict[str, Any]:
    containers = deployment["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]


MASTER = "flapping-pack-master"
WORKER = "flapping-pack-worker"


def test_every_kubernetes_container_uses_options_that_exist() -> None:
    """Each container's args are flap's options (the image's entry point); its env vars are options' too."""
    parser = _locust_parser()
    for document in KUBERNETES:
        if document["kind"] != "Deployment":
            continue
        container = _container(document)
        assert "command" not in container  # the image's entry point: flap
        _check_arguments(["flap"], container["args"])
        for variable in container.get("env", []):
            assert variable["name"] in _known_env_vars(parser), variable["name"]


def test_the_workers_reach_the_master_through_its_service() -> None:
    """The worker Deployment's --master-host is the master Service, which selects the master's pods and ports."""
    service = _resource("Service", MASTER)
    master = _resource("Deployment", MASTER)
    worker = _resource("Deployment", WORKER)
    assert f"--master-host={MASTER}" in _container(worker)["args"]
    assert service["spec"]["selector"].items() <= master["spec"]["template"]["metadata"]["labels"].items()
    assert master["spec"]["selector"]["matchLabels"] == master["spec"]["template"]["metadata"]["labels"]
    assert worker["spec"]["selector"]["matchLabels"] == worker["spec"]["template"]["metadata"]["labels"]
    container_ports = {port["name"]: port["containerPort"] for port in _container(master)["ports"]}
    assert container_ports == {"web-ui": 8089, "workers": 5557}  # Locust's defaults, which the workers dial
    assert {port["targetPort"] for port in service["spec"]["ports"]} == set(container_ports)
    assert master["spec"]["replicas"] == 1
    sysctls = worker["spec"]["template"]["spec"]["securityContext"]["sysctls"]
    assert {"name": "net.ipv4.ip_local_port_range", "value": "1024 65000"} in sysctls


def _mounted_path(deployment: dict[str, Any], volume_name: str) -> str:
    mounts = {mount["name"]: mount["mountPath"] for mount in _container(deployment).get("volumeMounts", [])}
    return mounts[volume_name]


def test_the_conversation_configmap_parses_and_is_mounted_where_the_master_reads_it() -> None:
    """The ConfigMap's conversation is a valid conversation; the master's --ws-conversation is its mounted file."""
    from scenarios.protocols import load_conversation_text

    configmap = _resource("ConfigMap", "flapping-pack-conversation")
    master = _resource("Deployment", MASTER)
    volumes = {volume["name"]: volume for volume in master["spec"]["template"]["spec"]["volumes"]}
    assert volumes["conversation"]["configMap"]["name"] == "flapping-pack-conversation"
    ((key, text),) = configmap["data"].items()
    conversation = load_conversation_text(text, key)
    assert conversation.open and conversation.hold
    assert f"--ws-conversation={_mounted_path(master, 'conversation')}/{key}" in _container(master)["args"]
    assert "volumes" not in _resource("Deployment", WORKER)["spec"]["template"]["spec"]  # the master sends it


def test_the_verdict_files_go_to_the_results_volume() -> None:
    """The master writes its three files under the mounted claim, and the claim exists."""
    master = _resource("Deployment", MASTER)
    claim = next(v for v in master["spec"]["template"]["spec"]["volumes"] if v["name"] == "results")
    _resource("PersistentVolumeClaim", claim["persistentVolumeClaim"]["claimName"])
    results = _mounted_path(master, "results")
    assert results == RESULTS_DIR
    outputs = [arg for arg in _container(master)["args"] if arg.startswith(("--verdict-json", "--junit-xml"))]
    assert len(outputs) == 2 and all(arg.split("=", 1)[1].startswith(results + "/") for arg in outputs)


def test_kustomization_lists_every_manifest_and_names_the_image() -> None:
    """kubectl apply -k applies every file of deploy/kubernetes/; its image entry names the containers' image."""
    kustomization = next(d for d in KUBERNETES if d["kind"] == "Kustomization")
    files = {path.name for path in (DEPLOY / "kubernetes").glob("*.yaml")} - {"kustomization.yaml"}
    assert set(kustomization["resources"]) == files
    images = {image["name"] for image in kustomization["images"]}
    for document in KUBERNETES:
        if document["kind"] == "Deployment":
            assert _container(document)["image"] in images


@pytest.mark.parametrize("path", ["deploy/Dockerfile", "deploy/compose.yaml", "deploy/kubernetes"])
def test_the_readme_points_at_each_recipe(path: str) -> None:
    """The README's "Scaling out" names each recipe, which exists."""
    section = (ROOT / "README.md").read_text().split("## Scaling out", 1)[1].split("\n## ", 1)[0]
    assert path in section and Path(ROOT, path).exists()
