# Moodboard Realtime, production image: PostgreSQL + Redis given by the environment.
# Build: docker build -t moodboard .
# Run:   docker run -e DATABASE_URL=postgresql://... -e REDIS_URL=redis://... \
#                   -e MOODBOARD_SECRET_KEY=... -e MOODBOARD_PUBLIC_URL=https://mood.example.com \
#                   -v moodboard-files:/data/files -p 8000:8000 moodboard
# tests/test_dockerfile.py checks the properties below (Docker is not needed to run it).

# The base image, pinned by digest: a rebuild starts from the same bytes until the digest is
# changed on purpose (the tag alone moves with every Debian and Python patch release).
# Refresh it monthly, and for a Debian or Python security fix:
#   scripts/refresh-base-image.sh          (docker buildx imagetools, crane or skopeo)
# which resolves the tag below to its current multi-platform digest and rewrites this line.
# PLACEHOLDER: Docker Hub was not reachable where this line was written: the all-zero digest
# PLACEHOLDER: makes `docker build` fail loudly until the script has run (it drops these lines).
ARG PYTHON_IMAGE=python:3.11-slim-bookworm@sha256:0000000000000000000000000000000000000000000000000000000000000000

# --- build stage: the locked dependencies, hash-checked, and our package's wheel ---
FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY requirements/base.lock requirements/build.lock requirements/
# Every file pip fetches must match a sha256 of the lock (python3 dev.py lock writes them).
RUN python -m venv /opt/venv \
 && /opt/venv/bin/pip install --require-hashes --no-deps -r requirements/base.lock \
 && python -m venv /opt/build \
 && /opt/build/bin/pip install --require-hashes --no-deps -r requirements/build.lock
COPY pyproject.toml README.md ./
COPY server server
COPY piccolo_migrations piccolo_migrations
# Built with the locked setuptools (no build isolation: nothing unpinned is fetched).
RUN /opt/build/bin/pip wheel --no-deps --no-build-isolation --wheel-dir /wheels . \
 && /opt/venv/bin/pip install --no-deps /wheels/*.whl

# --- runtime stage: the virtual environment only, run as an unprivileged user ---
FROM ${PYTHON_IMAGE}
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    MOODBOARD_HOST=0.0.0.0 \
    MOODBOARD_PORT=8000 \
    MOODBOARD_LOG_FORMAT=json \
    MOODBOARD_STORAGE_DIR=/data/files \
    MOODBOARD_BACKUP_DIR=/data/backups
# pg_dump / pg_restore (PostgreSQL 15, Debian 12) for `moodboard backup` and `restore`;
# curl for the HEALTHCHECK (a Python interpreter every 10 s costs ~30 ms of CPU and 10 MB).
RUN apt-get update \
 && apt-get install -y --no-install-recommends postgresql-client curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --create-home --uid 10001 moodboard \
 && mkdir -p /data/files /data/backups \
 && chown moodboard:moodboard /data/files /data/backups \
 && chmod 0700 /data/backups
COPY --from=build /opt/venv /opt/venv
USER moodboard
WORKDIR /home/moodboard
# Generated pictures (MOODBOARD_STORAGE_DIR): every instance must see the same files, so
# mount one shared volume (NFS, EFS, a volume of a single host) on all of them.
# Backups (MOODBOARD_BACKUP_DIR): `docker run ... moodboard backup` writes there; mount a
# volume and copy it off the machine (docs/operations.md "Backups").
VOLUME ["/data/files", "/data/backups"]
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD curl --fail --silent --show-error --max-time 2 "http://127.0.0.1:${MOODBOARD_PORT}/healthz" >/dev/null || exit 1
# serve applies pending migrations first (advisory lock: safe with N replicas),
# and on SIGTERM leaves rotation (/readyz 503), drains its sockets and exits 0.
ENTRYPOINT ["moodboard"]
CMD ["serve"]
