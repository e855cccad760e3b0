# Taskloom: one image for every service. The argument picks the process:
#   docker run taskloom serve gateway|orchestrator|constructor|context
#   docker run taskloom agents run --agents core-services,technical-writer
#   docker run taskloom migrate

# --- builder: compile wheels for taskloom and every dependency -------------------------------
FROM python:3.11-slim AS builder
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml setup.py README.md ./
COPY libs/ libs/
COPY services/ services/
RUN pip wheel --wheel-dir /wheels .

# --- runtime: no compiler, no sources, a non-root user ---------------------------------------
FROM python:3.11-slim AS runtime
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    TASKLOOM_HTTP_HOST=0.0.0.0 \
    TASKLOOM_HTTP_PORT=8000 \
    TASKLOOM_LOG_FORMAT=json \
    TASKLOOM_ENVIRONMENT=production
RUN groupadd --system --gid 10001 taskloom \
 && useradd --system --uid 10001 --gid taskloom --home-dir /app --no-create-home \
      --shell /usr/sbin/nologin taskloom \
 && mkdir -p /app /workspace \
 && chown taskloom:taskloom /app /workspace
COPY --from=builder /wheels /wheels
RUN pip install --no-index --find-links=/wheels taskloom \
 && rm -rf /wheels
WORKDIR /app
USER 10001:10001
EXPOSE 8000
# every service answers /health on TASKLOOM_HTTP_PORT; the image has no curl, python is enough
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
  CMD python -c "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('TASKLOOM_HTTP_PORT', '8000') + '/health', timeout=4)"
ENTRYPOINT ["taskloom"]
CMD ["serve", "gateway"]
