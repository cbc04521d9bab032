# A thin mirror of the README: `pip install .[redis]`, then `mock-server serve` on the default world.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    MOCK_SERVER_HOST=0.0.0.0 \
    MOCK_SERVER_PORT=8080

RUN useradd --create-home --uid 10001 sandbox
WORKDIR /app
COPY pyproject.toml README.md ./
COPY mock_server ./mock_server
COPY openapi ./openapi
COPY scenarios ./scenarios
# the redis extra: --store redis://... (README, "State and scale")
RUN pip install --no-cache-dir '.[redis]' && rm -rf /app/*

USER sandbox
EXPOSE 8080
# python's own urllib probes /__admin/health: no curl in the image
HEALTHCHECK --interval=5s --timeout=3s --start-period=5s --retries=3 \
    CMD ["python", "-m", "mock_server.healthcheck"]
CMD ["mock-server", "serve"]
