# Moodboard Realtime, production image: PostgreSQL + Redis given by the environment.
# Build: docker build -t moodboard .
# Run:   docker run -e DATABASE_URL=postgresql://... -e REDIS_URL=redis://... \
#                   -e MOODBOARD_SECRET_KEY=... -e MOODBOARD_HOST=0.0.0.0 -p 8000:8000 moodboard

# --- build stage: compile wheels for the locked dependencies and our package ---
FROM python:3.11-slim-bookworm AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY requirements/base.lock requirements/base.lock
RUN python -m venv /opt/venv \
 && /opt/venv/bin/pip install -r requirements/base.lock
COPY pyproject.toml README.md ./
COPY server server
COPY piccolo_migrations piccolo_migrations
RUN /opt/venv/bin/pip install --no-deps .

# --- runtime stage: the virtual environment only, run as an unprivileged user ---
FROM python:3.11-slim-bookworm
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    MOODBOARD_HOST=0.0.0.0 \
    MOODBOARD_PORT=8000 \
    MOODBOARD_LOG_FORMAT=json
# pg_dump / pg_restore (PostgreSQL 15, Debian 12) for `moodboard backup` and `restore`.
RUN apt-get update \
 && apt-get install -y --no-install-recommends postgresql-client \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --create-home --uid 10001 moodboard
COPY --from=build /opt/venv /opt/venv
USER moodboard
WORKDIR /home/moodboard
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD python -c "import os, urllib.request; urllib.request.urlopen(f'http://127.0.0.1:{os.environ.get(\"MOODBOARD_PORT\", \"8000\")}/healthz', timeout=2)" || exit 1
# serve applies pending migrations first (advisory lock: safe with N replicas),
# and on SIGTERM drains and exits 0.
ENTRYPOINT ["moodboard"]
CMD ["serve"]
