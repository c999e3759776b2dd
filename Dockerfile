# ozfig, CPU, model-less: the model is fetched into the Hugging Face cache (a volume) at first start.
#   docker build -t ozfig .
#   docker run -d -p 80:8080 -v ozfig-hf:/data/hf ozfig
# The CUDA image is Dockerfile.cuda. Works with Docker's classic builder (no BuildKit needed).
#   --build-arg BASE=IMAGE        a Debian bookworm image (default debian:bookworm-slim)
#   --build-arg CMAKE_ARGS=...    llama.cpp build options (default: portable, GGML_NATIVE=OFF)
# Wheels put in docker/wheels/ are used instead of building (CI reuses its llama-cpp-python wheel);
# CA certificates put in docker/certs/ are trusted by the build stage (not by the image).
ARG BASE=debian:bookworm-slim

# --- build: compilers, llama.cpp, a virtual environment ----------------------------------------
FROM ${BASE} AS build
ENV DEBIAN_FRONTEND=noninteractive PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential cmake python3 python3-dev python3-venv ca-certificates \
 && rm -rf /var/lib/apt/lists/*
RUN python3 -m venv /opt/ozfig
ARG CMAKE_ARGS="-DGGML_NATIVE=OFF"
WORKDIR /src
COPY . /src
# CA certificates the build must trust (a TLS-inspecting proxy's) from docker/certs/: build stage only
RUN if ls /src/docker/certs/*.crt >/dev/null 2>&1; then \
      cp /src/docker/certs/*.crt /usr/local/share/ca-certificates/ && update-ca-certificates >/dev/null; fi
# exactly as the README installs it
RUN CMAKE_ARGS="${CMAKE_ARGS}" PIP_CERT=/etc/ssl/certs/ca-certificates.crt \
    /opt/ozfig/bin/pip install --find-links /src/docker/wheels /src \
 && /opt/ozfig/bin/ozfig serve --help >/dev/null

# --- image: Python and the environment, no compilers ---------------------------------------------
FROM ${BASE}
ENV DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 libgomp1 ca-certificates \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /opt/ozfig /opt/ozfig
RUN useradd --uid 1000 --create-home ozfig && mkdir -p /data/hf && chown -R 1000:1000 /data
ENV PATH=/opt/ozfig/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    HF_HOME=/data/hf \
    OZFIG_HOST=0.0.0.0 \
    OZFIG_PORT=8080
USER 1000
VOLUME ["/data/hf"]
EXPOSE 8080
# /health is 503 while the model downloads and loads (and while draining), 200 once it answers
HEALTHCHECK --interval=30s --timeout=5s --start-period=30m --retries=3 \
  CMD ["python3", "-c", "import os,sys,urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:%s/health' % os.environ.get('OZFIG_PORT', '8080'), timeout=4).status == 200 else 1)"]
# SIGTERM drains: running answers finish (up to OZFIG_DRAIN_TIMEOUT), then exit 0
STOPSIGNAL SIGTERM
CMD ["ozfig", "serve"]
