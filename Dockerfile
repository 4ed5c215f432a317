# The exposure daemon. Build: docker build -t exposure .   Run: see docker-compose.yml.
# The build stage compiles the native fast path (exposure/dumps/_fastscan.c: a C compiler and
# OpenSSL's headers); the image itself only needs libcrypto, which the base image has.
FROM python:3.11-slim AS build
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc libc6-dev libssl-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml README.md ./
COPY exposure ./exposure
COPY connectors ./connectors
COPY migrations ./migrations
RUN pip wheel --no-deps --wheel-dir /wheels .

FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

COPY --from=build /wheels /wheels
RUN pip install /wheels/*.whl && rm -rf /wheels

# An unprivileged user; its home holds the inbox and the reports (mount volumes there). The
# compose file runs the container as the host user instead, who owns the mounted folders.
RUN useradd --system --create-home --home-dir /var/lib/exposure exposure \
    && mkdir -p /var/lib/exposure/inbox /var/lib/exposure/reports \
    && chown -R exposure:exposure /var/lib/exposure
USER exposure
WORKDIR /var/lib/exposure

# A container's .env is lost with the container: never generate a pepper here, refuse to start
# without one (docs/decisions/pepper-in-containers.md).
ENV EXPOSURE_API_LISTEN=0.0.0.0:8080 \
    EXPOSURE_FOLDER_PATH=/var/lib/exposure/inbox \
    EXPOSURE_REPORT_DIR=/var/lib/exposure/reports \
    EXPOSURE_GENERATE_PEPPER=false
EXPOSE 8080
# /readyz on the port EXPOSURE_API_LISTEN names, whatever it is set to.
HEALTHCHECK --interval=30s --timeout=5s --retries=3 \
    CMD ["python", "-m", "exposure.runtime.healthcheck"]
STOPSIGNAL SIGTERM
CMD ["exposure", "run"]
