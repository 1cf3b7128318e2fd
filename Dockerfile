# LiteMesh container image.
#
#   docker build -t litemesh .
#   docker run --rm -p 8080:8080 -v $PWD/gateway.yaml:/etc/litemesh/gateway.yaml:ro litemesh
#   docker run --rm -v $PWD/gateway.yaml:/etc/litemesh/gateway.yaml:ro litemesh check -c /etc/litemesh/gateway.yaml
#   docker kill --signal HUP <container>      # reload the mounted file (zero downtime)
#
# The image serves /etc/litemesh/gateway.yaml (a sample from deploy/gateway.yaml: listener on
# 0.0.0.0:8080, admin API on 127.0.0.1:9901).  LITEMESH_LISTEN=host:port and the other
# LITEMESH_* variables override it (docs/configuration.md).  It runs as the unprivileged user
# "litemesh"; to listen on a port below 1024 inside the container, publish 8080 as 80 instead
# (-p 80:8080).  The master is PID 1: it handles SIGTERM (drain), SIGINT, SIGHUP and reaps its
# workers itself, so no init is needed.

ARG PYTHON_VERSION=3.12

# -- build: compile the Cython speedups into a venv ----------------------------------------------
FROM python:${PYTHON_VERSION}-slim AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends gcc libc6-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml setup.py README.md LICENSE ./
COPY ext ext
COPY litemesh litemesh
# pip builds the wheel with Cython (pyproject's build requirements) and compiles every extension;
# the check fails the build if the compiled twins did not make it into the venv
RUN python -m venv /opt/litemesh \
 && /opt/litemesh/bin/pip install --no-cache-dir --upgrade pip \
 && /opt/litemesh/bin/pip install --no-cache-dir . \
 && /opt/litemesh/bin/litemesh version --verbose \
 && /opt/litemesh/bin/litemesh version --verbose | grep -q "trie: compiled" \
 && /opt/litemesh/bin/litemesh version --verbose | grep -q "shm: compiled"

# -- runtime: no compiler, a non-root user ---------------------------------------------------------
FROM python:${PYTHON_VERSION}-slim
RUN groupadd --system litemesh \
 && useradd --system --gid litemesh --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin litemesh
COPY --from=build /opt/litemesh /opt/litemesh
COPY LICENSE /opt/litemesh/LICENSE
COPY deploy/gateway.yaml /etc/litemesh/gateway.yaml
ENV PATH=/opt/litemesh/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    LITEMESH_HEALTHCHECK_URL=http://127.0.0.1:9901/ready
USER litemesh
EXPOSE 8080
# The admin API's /ready: 200 once every worker serves, 503 while starting or draining.  It is
# asked from inside the container; point LITEMESH_HEALTHCHECK_URL at another admin address if
# your config moves it (with admin.enabled: false, run the container with --no-healthcheck).
HEALTHCHECK --interval=10s --timeout=3s --start-period=15s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(os.environ['LITEMESH_HEALTHCHECK_URL'], timeout=2)"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["litemesh"]
CMD ["run", "-c", "/etc/litemesh/gateway.yaml"]
