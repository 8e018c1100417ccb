# One image for all four services; a Deployment picks the service and the action with its command:
#   python -m services.<registry|household|referral|reporting> serve    (HTTP on $PORT)
#   python -m services.<name> migrate                                  (Alembic, then exit)
# Build: docker build -t ghcr.io/posyandu-spm/posyandu-spm:<git sha> .   (deploy/README.md)

# ---- build: install the project and its dependencies into a virtualenv
FROM python:3.11-slim-trixie AS build

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

WORKDIR /src
# Only what the package build needs (pyproject packages: shared*, services*, deploy*);
# .dockerignore keeps tests, caches, local data and the k8s manifests out of the context.
COPY pyproject.toml ./
COPY shared ./shared
COPY services ./services
COPY deploy ./deploy
RUN pip install --no-cache-dir .

# ---- runtime: the virtualenv on a clean base, run as an unprivileged user
FROM python:3.11-slim-trixie AS runtime

# HOST: the services listen on loopback by default; in a container they must listen on its own network namespace.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOST=0.0.0.0

# uid/gid 10001 match the pods' runAsUser/runAsGroup; no home, no login shell.
RUN groupadd --system --gid 10001 posyandu \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin posyandu

COPY --from=build /opt/venv /opt/venv

WORKDIR /app
# Numeric, so that Kubernetes can verify runAsNonRoot without reading /etc/passwd.
USER 10001:10001

EXPOSE 8001 8002 8003 8004
# Exec form, no shell: the Python process is PID 1 and receives SIGTERM directly.
CMD ["python", "-m", "services.registry", "serve"]
