"""values.schema.json of the chart, generated from typed Python so it stays in step with the code.

Every `*.settings` map of the chart (extra environment variables of a process) admits exactly
the variables of that process's pydantic-settings class, minus those the chart sets itself,
so a misspelt setting is refused at `helm install` naming the key. The LLM provider names come
from `common_core.LLMProviderType`. Helm validates values against the schema (JSON Schema
draft 7) before rendering; refusals read like "at '/worker/concurrency': minimum: got 0,
want 1".

    .venv/bin/python -m deploy.values_schema          # writes the file
    .venv/bin/python -m deploy.values_schema --check  # exit 1 when the file is stale
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from pydantic import AliasChoices
from pydantic_settings import BaseSettings

from cj_operator.settings import OperatorSettings
from cj_workers.settings import ProviderApiSettings, WorkerSettings
from common_core import KAFKA_TOPIC_PATTERN, LLMProviderType

REPO_ROOT = Path(__file__).resolve().parents[1]
SCHEMA_PATH = REPO_ROOT / "charts" / "cj-operator" / "values.schema.json"

Schema = dict[str, Any]

# Set by the chart for both the provider API and the workers (one image, cj_workers.settings).
_PROVIDER_SHARED = frozenset(
    {
        "REDIS_URL",
        "KAFKA_BOOTSTRAP_SERVERS",
        "CJ_REDIS_KEY_PREFIX",
        "CJ_STREAM_CONSUMER_GROUP",
        "CJ_LOG_LEVEL",
        "CJ_LOG_FORMAT",
        "CJ_BOOTSTRAP_TOPICS_ON_START",
        "CJ_KAFKA_TOPICS",
        "CJ_KAFKA_TOPIC_PARTITIONS",
        "CJ_KAFKA_TOPIC_REPLICATION_FACTOR",
        "CJ_KAFKA_TOPIC_MIN_INSYNC_REPLICAS",
        "CJ_ENABLED_PROVIDERS",
    }
)

# Variables the chart's templates set for each process (a `settings` entry may not repeat
# them: Kubernetes would keep the last of two entries with one name, silently).
CHART_SET: dict[str, frozenset[str]] = {
    "operator": frozenset(
        {
            "DATABASE_URL",
            "KAFKA_BOOTSTRAP_SERVERS",
            "KUBECONFIG",
            "CJ_OPERATOR_LOG_LEVEL",
            "CJ_OPERATOR_LOG_FORMAT",
            "CJ_OPERATOR_PROVIDER_API_URL",
            "CJ_OPERATOR_PROVIDER_API_TOKEN",
            "CJ_OPERATOR_METRICS_HOST",
            "CJ_OPERATOR_METRICS_PORT",
            "CJ_OPERATOR_MIGRATE_ON_START",
            "CJ_OPERATOR_QUEUE_REQUEST_TTL_SECONDS",
            "CJ_OPERATOR_CREATE_TOPICS",
            "CJ_OPERATOR_TOPIC_PARTITIONS",
            "CJ_OPERATOR_TOPIC_REPLICATION_FACTOR",
            "CJ_OPERATOR_PEERING_NAME",
            "POD_ID",
        }
    ),
    "providerApi": _PROVIDER_SHARED
    | frozenset(
        {
            "CJ_API_HOST",
            "CJ_API_PORT",
            "CJ_API_QUEUE_HIGH_WATER",
            "CJ_API_QUEUE_LOW_WATER",
            "CJ_API_REQUEST_TTL_SECONDS",
            "CJ_API_AUTH_TOKEN",
            "CJ_API_CALLBACK_TOPICS",
            "CJ_API_REFUSED_CALLBACK_TOPICS",
        }
    ),
    "worker": _PROVIDER_SHARED
    | frozenset(
        {
            "CJ_WORKER_CONSUMER_NAME",
            "CJ_WORKER_METRICS_HOST",
            "CJ_WORKER_METRICS_PORT",
            "CJ_WORKER_CONCURRENCY",
            "CJ_WORKER_DEFAULT_PROVIDER",
            "CJ_WORKER_DEFAULT_MODELS",
            "CJ_WORKER_SHUTDOWN_DEADLINE_SECONDS",
            "ANTHROPIC_API_KEY",
            "OPENAI_API_KEY",
            "CJ_WORKER_OPENAI_COMPATIBLE_BASE_URL",
            "CJ_WORKER_OPENAI_COMPATIBLE_API_KEY",
        }
    ),
}
SETTINGS_CLASS: dict[str, type[BaseSettings]] = {
    "operator": OperatorSettings,
    "providerApi": ProviderApiSettings,
    "worker": WorkerSettings,
}


def env_names(settings: type[BaseSettings]) -> set[str]:
    """The environment variable of every field of a pydantic-settings class (its alias)."""
    names: set[str] = set()
    for name, field in settings.model_fields.items():
        alias = field.validation_alias
        if not isinstance(alias, AliasChoices):
            raise TypeError(f"{settings.__name__}.{name} has no explicit environment variable")
        names.update(str(choice) for choice in alias.choices)
    return names


def settable(component: str) -> list[str]:
    """Variables a user may set through `<component>.settings`, sorted."""
    return sorted(env_names(SETTINGS_CLASS[component]) - CHART_SET[component])


# --- small builders -------------------------------------------------------------------------


def string(**kw: Any) -> Schema:
    return {"type": "string", **kw}


def integer(**kw: Any) -> Schema:
    return {"type": "integer", **kw}


def obj(props: dict[str, Schema], required: list[str] | None = None) -> Schema:
    """A closed object: unknown keys are refused (typos are named in the error)."""
    schema: Schema = {"type": "object", "additionalProperties": False, "properties": props}
    if required:
        schema["required"] = required
    return schema


BOOL: Schema = {"type": "boolean"}
ANY_OBJECT: Schema = {"type": "object"}
STRING_MAP: Schema = {"type": "object", "additionalProperties": {"type": "string"}}
ARRAY: Schema = {"type": "array"}
DNS_LABEL = string(pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", maxLength=63)
OPTIONAL_NAME = string(pattern=r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?)?$", maxLength=253)
SECRET_KEY = string(pattern=r"^[-._a-zA-Z0-9]+$", minLength=1)
PORT = integer(minimum=1, maximum=65535)
DURATION = string(pattern=r"^(0|(([0-9]+)(ms|s|m|h|d|w|y))+)$")
HTTP_URL_OR_EMPTY = string(pattern=r"^(https?://\S+)?$")
RESOURCES = obj({"requests": ANY_OBJECT, "limits": ANY_OBJECT, "claims": ARRAY})
SEVERITY = string(minLength=1)
TOPOLOGY_SPREAD: Schema = {
    "type": "object",
    "required": ["maxSkew", "topologyKey", "whenUnsatisfiable"],
    "properties": {
        "maxSkew": integer(minimum=1),
        "topologyKey": string(minLength=1),
        "whenUnsatisfiable": string(enum=["DoNotSchedule", "ScheduleAnyway"]),
        "labelSelector": ANY_OBJECT,
    },
}
"""A TopologySpreadConstraint: its required fields checked, the others passed through."""
TOPIC_LIST: Schema = {
    "type": "array",
    "items": string(pattern=KAFKA_TOPIC_PATTERN),
    "uniqueItems": True,
}


def secret_ref(what: str) -> Schema:
    """`existingSecret` (a Secret name, empty: none) + `key`."""
    return obj({"existingSecret": {**OPTIONAL_NAME, "description": what}, "key": SECRET_KEY})


def image() -> Schema:
    return obj(
        {
            "repository": string(minLength=1),
            "tag": string(pattern=r"^([\w][\w.-]{0,127})?$"),
            "digest": string(pattern=r"^(sha256:[a-f0-9]{64})?$"),
        },
        ["repository"],
    )


def settings_map(component: str) -> Schema:
    """Extra env vars of one process: only its settings-class variables the chart leaves free."""
    value: Schema = {"type": ["string", "number", "boolean"]}
    return {
        "type": "object",
        "additionalProperties": False,
        "properties": {name: value for name in settable(component)},
    }


def pod_fields() -> dict[str, Schema]:
    return {
        "podAnnotations": STRING_MAP,
        "podLabels": STRING_MAP,
        "nodeSelector": STRING_MAP,
        "tolerations": ARRAY,
        "affinity": ANY_OBJECT,
        "topologySpreadConstraints": {"type": "array", "items": TOPOLOGY_SPREAD},
        "priorityClassName": string(),
        "serviceAccount": obj({"create": BOOL, "name": OPTIONAL_NAME, "annotations": STRING_MAP}),
    }


def const_enabled(value: bool) -> Schema:
    """`{enabled: <value>}` as a condition."""
    return {"properties": {"enabled": {"const": value}}, "required": ["enabled"]}


def build_schema() -> Schema:
    """The whole values schema."""
    providers = [p.value for p in LLMProviderType]
    operator = obj(
        {
            "image": image(),
            "replicas": integer(minimum=0),
            "peering": obj({"enabled": BOOL, "name": DNS_LABEL}),
            "watchNamespaces": {"type": "array", "items": DNS_LABEL, "uniqueItems": True},
            "livenessPort": PORT,
            "metricsPort": PORT,
            "providerApiUrl": HTTP_URL_OR_EMPTY,
            "settings": settings_map("operator"),
            "extraEnv": ARRAY,
            "resources": RESOURCES,
            "terminationGracePeriodSeconds": integer(minimum=0),
            **pod_fields(),
        }
    )
    # More than one replica only as peering standbys.
    operator["if"] = {"properties": {"replicas": {"minimum": 2}}, "required": ["replicas"]}
    operator["then"] = {"properties": {"peering": const_enabled(True)}, "required": ["peering"]}
    autoscaling = obj(
        {
            "hpa": obj(
                {
                    "enabled": BOOL,
                    "minReplicas": integer(minimum=1),
                    "maxReplicas": integer(minimum=1),
                    "targetCPUUtilizationPercentage": integer(minimum=1, maximum=100),
                }
            ),
            "keda": obj(
                {
                    "enabled": BOOL,
                    "minReplicaCount": integer(minimum=0),
                    "maxReplicaCount": integer(minimum=1),
                    "pollingInterval": integer(minimum=1),
                    "cooldownPeriod": integer(minimum=0),
                    "lagCount": integer(minimum=1),
                    "activationLagCount": integer(minimum=0),
                }
            ),
        }
    )
    # KEDA creates its own HPA: with KEDA on, the chart's HPA must be off.
    autoscaling["if"] = {"properties": {"keda": const_enabled(True)}, "required": ["keda"]}
    autoscaling["then"] = {"properties": {"hpa": {"properties": {"enabled": {"const": False}}}}}
    database = obj(
        {
            "host": string(minLength=1),
            "port": PORT,
            "name": string(minLength=1),
            "user": string(minLength=1),
            "parameters": string(pattern=r"^[^?\s]*$"),
            "password": secret_ref("Secret with the database password"),
            "urlSecret": secret_ref("Secret with the whole DATABASE_URL"),
        }
    )
    named = {"properties": {"existingSecret": {"minLength": 1}}, "required": ["existingSecret"]}
    database["anyOf"] = [
        {"properties": {"password": named}, "required": ["password"]},
        {"properties": {"urlSecret": named}, "required": ["urlSecret"]},
    ]
    monitor = obj(
        {"enabled": BOOL, "interval": DURATION, "scrapeTimeout": DURATION, "labels": STRING_MAP}
    )
    return {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "title": "cj-operator chart values (generated by deploy/values_schema.py)",
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "global": ANY_OBJECT,
            "nameOverride": string(maxLength=40),
            "fullnameOverride": string(maxLength=40),
            "commonLabels": STRING_MAP,
            "image": obj(
                {
                    "registry": string(),
                    "pullPolicy": string(enum=["Always", "IfNotPresent", "Never"]),
                    "pullSecrets": {"type": "array", "items": DNS_LABEL},
                }
            ),
            "crds": obj({"install": BOOL, "keep": BOOL}),
            "rbac": obj({"create": BOOL, "aggregatedRoles": BOOL}),
            "logging": obj(
                {
                    "level": string(enum=["DEBUG", "INFO", "WARNING", "ERROR"]),
                    "format": string(enum=["auto", "json", "console"]),
                }
            ),
            "kafka": obj(
                {
                    "bootstrapServers": string(pattern=r"^[^\s,]+:[0-9]+(,[^\s,]+:[0-9]+)*$"),
                    "topics": obj(
                        {
                            "names": {
                                "type": "array",
                                "items": string(pattern=r"^[A-Za-z0-9._-]{1,249}$"),
                            },
                            "partitions": integer(minimum=1),
                            "replicationFactor": integer(minimum=1),
                            "minInsyncReplicas": {"type": ["integer", "null"], "minimum": 1},
                            "bootstrapOnStart": BOOL,
                            "bootstrapJob": obj(
                                {
                                    "enabled": BOOL,
                                    "ttlSecondsAfterFinished": integer(minimum=0),
                                    "backoffLimit": integer(minimum=0),
                                }
                            ),
                        }
                    ),
                },
                ["bootstrapServers"],
            ),
            "redis": obj(
                {
                    "host": string(minLength=1),
                    "port": PORT,
                    "database": integer(minimum=0, maximum=15),
                    "tls": BOOL,
                    "password": secret_ref("Secret with the Redis password"),
                    "keyPrefix": string(),
                    "consumerGroup": string(minLength=1),
                },
                ["host", "port"],
            ),
            "queue": obj({"requestTtlSeconds": integer(minimum=1)}, ["requestTtlSeconds"]),
            "database": database,
            "migrations": obj(
                {
                    "mode": string(enum=["job", "operatorStart", "none"]),
                    "job": obj(
                        {
                            "ttlSecondsAfterFinished": integer(minimum=0),
                            "backoffLimit": integer(minimum=0),
                            "resources": RESOURCES,
                        }
                    ),
                }
            ),
            "podSecurityContext": ANY_OBJECT,
            "containerSecurityContext": ANY_OBJECT,
            "operator": operator,
            "providerApi": obj(
                {
                    "image": image(),
                    "replicas": integer(minimum=0),
                    "port": PORT,
                    "service": obj(
                        {
                            "type": string(enum=["ClusterIP", "NodePort", "LoadBalancer"]),
                            "port": PORT,
                            "annotations": STRING_MAP,
                        }
                    ),
                    "authToken": obj(
                        {
                            "enabled": BOOL,
                            "existingSecret": {
                                **OPTIONAL_NAME,
                                "description": "Secret with the API bearer token (empty: "
                                "generated)",
                            },
                            "key": SECRET_KEY,
                        }
                    ),
                    "queueHighWater": integer(minimum=1),
                    "queueLowWater": integer(minimum=0),
                    "callbackTopics": TOPIC_LIST,
                    "refusedCallbackTopics": TOPIC_LIST,
                    "settings": settings_map("providerApi"),
                    "extraEnv": ARRAY,
                    "resources": RESOURCES,
                    "podDisruptionBudget": obj(
                        {"enabled": BOOL, "minAvailable": {"type": ["integer", "string"]}}
                    ),
                    **pod_fields(),
                }
            ),
            "enabledProviders": {
                "type": "array",
                "items": string(enum=providers),
                "minItems": 1,
                "uniqueItems": True,
            },
            "worker": obj(
                {
                    "replicas": integer(minimum=0),
                    "metricsPort": PORT,
                    "concurrency": integer(minimum=1, maximum=1000),
                    "defaultProvider": string(enum=providers),
                    "defaultModels": obj({p: string(minLength=1) for p in providers}),
                    "providers": obj(
                        {
                            "anthropic": secret_ref("Secret with the Anthropic API key"),
                            "openai": secret_ref("Secret with the OpenAI API key"),
                            "openaiCompatible": obj(
                                {
                                    "baseUrl": HTTP_URL_OR_EMPTY,
                                    "existingSecret": OPTIONAL_NAME,
                                    "key": SECRET_KEY,
                                }
                            ),
                        }
                    ),
                    "settings": settings_map("worker"),
                    "extraEnv": ARRAY,
                    "terminationGracePeriodSeconds": integer(minimum=5),
                    "resources": RESOURCES,
                    "autoscaling": autoscaling,
                    "podDisruptionBudget": obj(
                        {"enabled": BOOL, "maxUnavailable": {"type": ["integer", "string"]}}
                    ),
                    **pod_fields(),
                }
            ),
            "metrics": obj(
                {
                    "podAnnotations": BOOL,
                    "serviceMonitor": monitor,
                    "podMonitor": monitor,
                    "prometheusRule": obj(
                        {
                            "enabled": BOOL,
                            "labels": STRING_MAP,
                            "alertLabels": STRING_MAP,
                            "runbookBaseUrl": HTTP_URL_OR_EMPTY,
                            "alerts": obj(
                                {
                                    "stuckBatch": obj(
                                        {
                                            "seconds": integer(minimum=1),
                                            "for": DURATION,
                                            "severity": SEVERITY,
                                        }
                                    ),
                                    "callbackLag": obj(
                                        {
                                            "p99Seconds": {"type": "number", "exclusiveMinimum": 0},
                                            "for": DURATION,
                                            "severity": SEVERITY,
                                        }
                                    ),
                                    "publishFailures": obj(
                                        {
                                            "perSecond": {"type": "number", "minimum": 0},
                                            "for": DURATION,
                                            "severity": SEVERITY,
                                        }
                                    ),
                                    "queueDepth": obj(
                                        {
                                            "entries": integer(minimum=0),
                                            "for": DURATION,
                                            "severity": SEVERITY,
                                        }
                                    ),
                                    "callbackDeadLetters": obj(
                                        {
                                            "entries": integer(minimum=0),
                                            "window": DURATION,
                                            "for": DURATION,
                                            "severity": SEVERITY,
                                        }
                                    ),
                                    "deadLetters": obj(
                                        {
                                            "entries": integer(minimum=0),
                                            "window": DURATION,
                                            "for": DURATION,
                                            "severity": SEVERITY,
                                        }
                                    ),
                                }
                            ),
                        }
                    ),
                }
            ),
            "grafana": obj(
                {
                    "dashboard": obj(
                        {
                            "enabled": BOOL,
                            "namespace": OPTIONAL_NAME,
                            "labels": STRING_MAP,
                            "annotations": STRING_MAP,
                        }
                    )
                }
            ),
            "tests": obj(
                {
                    "enabled": BOOL,
                    "timeoutSeconds": {"type": "number", "exclusiveMinimum": 0, "maximum": 300},
                    "resources": RESOURCES,
                }
            ),
            "extraObjects": {"type": "array", "items": {"type": ["object", "string"]}},
            "networkPolicy": obj({"enabled": BOOL, "apiFrom": ARRAY, "metricsFrom": ARRAY}),
        },
    }


def render() -> str:
    """The schema as the chart ships it: two-space indent, final newline."""
    return json.dumps(build_schema(), indent=2) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Write (or with --check, compare) the chart's values.schema.json; the exit code."""
    parser = argparse.ArgumentParser(prog="python -m deploy.values_schema", description=__doc__)
    parser.add_argument("--check", action="store_true", help="exit 1 if the file is stale")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        if not SCHEMA_PATH.exists() or SCHEMA_PATH.read_text() != text:
            print(f"{SCHEMA_PATH} is stale: run python -m deploy.values_schema", file=sys.stderr)
            return 1
        return 0
    SCHEMA_PATH.write_text(text)
    print(f"wrote {SCHEMA_PATH}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
