# Legation in a container: `legation serve` on 0.0.0.0:8000, configured by DATABASE_URL.

FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app
RUN python -m venv /opt/venv
COPY pyproject.toml README.md ./
COPY service ./service
COPY migrations ./migrations
COPY sql ./sql
COPY examples ./examples
COPY schemas ./schemas
# Editable, so the package finds migrations/, sql/, examples/ and schemas/ beside it in /app.
RUN /opt/venv/bin/pip install --no-cache-dir -e .

FROM python:3.11-slim
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    LEGATION_HOST=0.0.0.0 \
    LEGATION_PORT=8000
RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin legation
COPY --from=build /opt/venv /opt/venv
COPY --from=build /app /app
WORKDIR /app
USER 10001
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=2).status != 200)"]
CMD ["legation", "serve"]
