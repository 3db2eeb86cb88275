# syntax=docker/dockerfile:1
# The operator image: `moectl run` on CPython 3.11 (slim Debian), as a non-root user, with only the runtime
# dependencies (no matplotlib, no Grafana SDK, no test tools). No container engine runs where this project is
# developed; build it where one does:
#   docker build -t ghcr.io/moe-operator/moe-operator:0.1.0 .
# The base is pinned to an exact CPython and Debian release. For a reproducible production build, pin its
# digest as well (docker buildx imagetools inspect python:3.11.14-slim-bookworm):
#   docker build --build-arg PYTHON_IMAGE=python:3.11.14-slim-bookworm@sha256:<digest> .
# Checked by BuildKit's own rules (deploy/local/tools/dockerfile-lint) and tests/unit/test_dockerfile.py.
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY operator ./operator
# A virtual environment holding the package and its runtime dependencies only; the runtime stage copies it.
RUN python -m venv /opt/moe-operator \
    && /opt/moe-operator/bin/pip install --no-cache-dir . \
    && /opt/moe-operator/bin/moectl --help > /dev/null

FROM ${PYTHON_IMAGE} AS runtime
LABEL org.opencontainers.image.title="moe-operator" \
      org.opencontainers.image.description="Kubernetes operator for Mixture-of-Experts LLM inference" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="https://github.com/moe-operator/moe-operator"
COPY --from=build /opt/moe-operator /opt/moe-operator
# No bytecode written at run time: the chart mounts the root filesystem read-only (only /tmp is writable).
ENV PATH=/opt/moe-operator/bin:$PATH PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
# The chart's runAsUser; a numeric user lets Kubernetes verify runAsNonRoot.
USER 65532:65532
WORKDIR /tmp
EXPOSE 9443 8080 8081
ENTRYPOINT ["moectl"]
CMD ["run", "--all-namespaces"]
