# ozfig, CPU, model-less: the model is fetched into the Hugging Face cache (a volume) at first start.
#   docker build -t ozfig .
#   docker run -d -p 80:8080 -v ozfig-hf:/data/hf ozfig
# For CUDA, build from an nvidia/cuda devel image with --build-arg CMAKE_ARGS=-DGGML_CUDA=on (see README).
FROM python:3.11-slim

ARG CMAKE_ARGS=""
ENV PIP_NO_CACHE_DIR=1 \
    PYTHONUNBUFFERED=1 \
    HF_HOME=/data/hf \
    OZFIG_HOST=0.0.0.0 \
    OZFIG_PORT=8080

RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential cmake libgomp1 \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY pyproject.toml README.md ./
COPY ozfig ./ozfig
COPY server ./server
COPY convert ./convert
# exactly as the README installs it
RUN CMAKE_ARGS="${CMAKE_ARGS}" pip install . \
 && apt-get purge -y build-essential cmake && apt-get autoremove -y

RUN useradd --uid 1000 --create-home ozfig && mkdir -p /data/hf && chown -R ozfig /data
USER 1000
VOLUME ["/data/hf"]
EXPOSE 8080

# /health is 503 while the model downloads and loads, 200 once it answers
HEALTHCHECK --interval=30s --timeout=5s --start-period=30m --retries=3 \
  CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8080/health', timeout=4).status == 200 else 1)"

CMD ["ozfig", "serve"]
