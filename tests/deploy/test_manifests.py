"""deploy/: the Kubernetes manifests render with kustomize and validate against Kubernetes'
schemas (kubernetes-validate); the compose file passes `docker-compose config`; the HAProxy
configuration passes `haproxy -c`. KEDA's ScaledObject has no schema in kubernetes-validate:
it is skipped there by name and its fields are checked here.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
KUBERNETES = ROOT / "deploy" / "kubernetes"
COMPOSE = ROOT / "deploy" / "compose"
CUSTOM_KINDS = {"ScaledObject"}  # CRDs: not in Kubernetes' own schemas


def kustomize_build() -> list[dict[str, Any]]:
    if shutil.which("kustomize"):
        cmd = ["kustomize", "build", str(KUBERNETES)]
    elif shutil.which("kubectl"):
        cmd = ["kubectl", "kustomize", str(KUBERNETES)]
    else:
        pytest.skip("neither kustomize nor kubectl is installed")
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=True).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


@pytest.fixture(scope="module")
def resources() -> dict[str, dict[str, Any]]:
    return {doc["kind"]: doc for doc in kustomize_build()}


def test_manifests_validate_against_kubernetes_schemas(resources) -> None:
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    version = kubernetes_validate.latest_version()
    for kind, doc in resources.items():
        if kind in CUSTOM_KINDS:
            continue
        kubernetes_validate.validate(doc, version, strict=True)


def test_deployment_probes_drain_and_read_only_cache(resources) -> None:
    pod = resources["Deployment"]["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["startupProbe"]["httpGet"]["path"] == "/health"
    assert container["readinessProbe"]["httpGet"]["path"] == "/health"
    assert container["livenessProbe"]["httpGet"]["path"] == "/livez"
    assert container["lifecycle"]["preStop"]
    settings = resources["ConfigMap"]["data"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["HF_HUB_OFFLINE"] == "1"
    secrets = {
        e["name"]: e["valueFrom"]["secretKeyRef"]["name"] for e in container["env"] if "valueFrom" in e
    }
    assert secrets["OZFIG_ADMIN_KEY"] != secrets["OZFIG_API_KEY"]  # the operator's key, apart
    # threads follow the cgroup quota: a CPU limit, equal to the request (or OZFIG_THREADS set)
    resources_ = container["resources"]
    assert resources_["limits"]["cpu"] == resources_["requests"]["cpu"] or "OZFIG_THREADS" in env
    pre_stop = int(container["lifecycle"]["preStop"]["exec"]["command"][-1])
    assert pod["terminationGracePeriodSeconds"] >= float(settings["OZFIG_DRAIN_TIMEOUT"]) + pre_stop
    mount = next(m for m in container["volumeMounts"] if m["name"] == "model-cache")
    assert mount["readOnly"] is True
    volume = next(v for v in pod["volumes"] if v["name"] == "model-cache")
    assert volume["persistentVolumeClaim"]["readOnly"] is True
    job = resources["Job"]["spec"]["template"]["spec"]
    assert (
        job["volumes"][0]["persistentVolumeClaim"]["claimName"]
        == volume["persistentVolumeClaim"]["claimName"]
    )
    assert resources["PodDisruptionBudget"]["spec"]["maxUnavailable"] == 1
    assert (
        resources["Service"]["spec"]["selector"] == resources["Deployment"]["spec"]["selector"]["matchLabels"]
    )


def test_keda_scales_on_the_waiting_queue(resources) -> None:
    scaled = resources["ScaledObject"]
    assert scaled["apiVersion"] == "keda.sh/v1alpha1"
    assert scaled["spec"]["scaleTargetRef"]["name"] == resources["Deployment"]["metadata"]["name"]
    trigger = scaled["spec"]["triggers"][0]
    assert trigger["type"] == "prometheus"
    assert trigger["metadata"]["query"].startswith("sum(ozfig_requests_waiting")


@pytest.mark.skipif(shutil.which("docker-compose") is None, reason="docker-compose is not installed")
def test_compose_file_is_valid() -> None:
    proc = subprocess.run(
        ["docker-compose", "-f", str(COMPOSE / "docker-compose.yml"), "config", "-q"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr


@pytest.mark.skipif(shutil.which("haproxy") is None, reason="haproxy is not installed")
def test_haproxy_config_is_valid_and_matches_the_slots() -> None:
    proc = subprocess.run(
        ["haproxy", "-c", "-f", str(COMPOSE / "haproxy.cfg")], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    compose = yaml.safe_load((COMPOSE / "docker-compose.yml").read_text())
    slots = compose["services"]["ozfig"]["environment"]["OZFIG_SLOTS"]
    cfg = (COMPOSE / "haproxy.cfg").read_text()
    assert re.search(rf"(?m)^    default-server .*\bmaxconn {slots}\b", cfg)
    assert f"server-template ozfig- {compose['services']['ozfig']['scale']} " in cfg
    assert "balance leastconn" in cfg and "retry-on" in cfg and "option redispatch" in cfg


def test_compose_replicas_drain_after_haproxy_has_taken_them_out() -> None:
    service = yaml.safe_load((COMPOSE / "docker-compose.yml").read_text())["services"]["ozfig"]
    env = service["environment"]
    cfg = (COMPOSE / "haproxy.cfg").read_text()
    match = re.search(r"(?m)^    default-server .*\binter (\d+)s\b.*\bfall (\d+)", cfg)
    assert match
    grace, timeout = float(env["OZFIG_DRAIN_GRACE"]), float(env["OZFIG_DRAIN_TIMEOUT"])
    assert grace > int(match.group(1)) * int(match.group(2))  # out of rotation before it refuses
    assert float(service["stop_grace_period"].rstrip("s")) >= grace + timeout + 5  # + the flush
