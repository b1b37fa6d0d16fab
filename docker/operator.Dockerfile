# syntax=docker/dockerfile:1.7
# The operator image: `kopf run -m cj_operator.handlers` (default command),
# `cj-operator-migrate` (the chart's migration Job) and `cj-check` (its `helm test` pod).
# Build from the repository root:
#   docker build -f docker/operator.Dockerfile -t cj-operator .
# Multi-stage: uv resolves the locked dependencies (uv.lock, no dev group) into a virtual
# environment in the build stage; the runtime stage holds that environment and nothing else.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm
ARG UV_IMAGE=ghcr.io/astral-sh/uv:0.13.8

FROM ${UV_IMAGE} AS uv

FROM ${PYTHON_IMAGE} AS build
COPY --from=uv /uv /usr/local/bin/uv
# UV_SYSTEM_CERTS: uv trusts the image's CA store (/etc/ssl/certs), not only its built-in roots,
# so a build behind a TLS-inspecting proxy works with the proxy's bundle mounted over it.
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_SYSTEM_CERTS=1 \
    UV_PROJECT_ENVIRONMENT=/app/.venv
WORKDIR /src
# Dependencies first: this layer is reused while only our own code changes. Every workspace
# member's pyproject.toml is needed for uv to read the workspace, even those not installed.
COPY pyproject.toml uv.lock ./
COPY common_core/pyproject.toml common_core/pyproject.toml
COPY plumbing/pyproject.toml plumbing/pyproject.toml
COPY operator/pyproject.toml operator/pyproject.toml
COPY workers/pyproject.toml workers/pyproject.toml
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-install-workspace --package cj-operator
COPY common_core/ common_core/
COPY plumbing/ plumbing/
COPY operator/ operator/
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-editable --package cj-operator

FROM ${PYTHON_IMAGE} AS runtime
LABEL org.opencontainers.image.title="cj-operator" \
      org.opencontainers.image.description="CJBatch operator (kopf): pairs, callbacks, Bradley-Terry scoring"
# A fixed numeric user, so Kubernetes' runAsNonRoot can verify it without /etc/passwd.
RUN groupadd --system --gid 10001 cj \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin cj
COPY --from=build /app/.venv /app/.venv
ENV PATH=/app/.venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /app
USER 10001:10001
# 8080: kopf's liveness endpoint (--liveness); 9090: Prometheus /metrics (operator settings).
EXPOSE 8080 9090
CMD ["kopf", "run", "--standalone", "--all-namespaces", "--liveness=http://0.0.0.0:8080/healthz", "-m", "cj_operator.handlers"]
