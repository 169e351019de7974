# syntax=docker/dockerfile:1
# Build:  docker build -t sip-rtmp-bridge .
# Run:    docker run --network host -v /etc/sip-rtmp-bridge:/etc/sip-rtmp-bridge:ro \
#             -v sip-rtmp-bridge-state:/var/lib/sip-rtmp-bridge sip-rtmp-bridge
# Without host networking publish REST 9091/tcp, SIP 5060/udp and the whole rtp.port_range/udp,
# and set BRIDGE_SIP__PUBLIC_ADDRESS to the host's address (it goes into Via, Contact and SDP).

FROM python:3.11-slim-bookworm AS build
# A C compiler for the media's compiled fast path (rtp/_fast.c); the image it builds keeps none.
# hadolint ignore=DL3008
RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml setup.py README.md ./
COPY bridge ./bridge
COPY rtp ./rtp
COPY rest ./rest
RUN python -m venv /opt/venv && /opt/venv/bin/pip install --no-cache-dir '.[azure]'

FROM python:3.11-slim-bookworm
RUN groupadd --system --gid 10001 bridge \
    && useradd --system --uid 10001 --gid 10001 --home-dir /nonexistent --shell /usr/sbin/nologin bridge \
    && install -d -m 0700 -o 10001 -g 10001 /var/lib/sip-rtmp-bridge
COPY --from=build /opt/venv /opt/venv
COPY conf/bridge.toml /etc/sip-rtmp-bridge/bridge.toml
# REST stays on loopback (reachable with --network host). To publish it, set
# BRIDGE_REST__LISTEN=0.0.0.0:9091 and keep it behind a proxy that authenticates.
ENV PATH=/opt/venv/bin:$PATH
# The call history and recordings/ (private to the service: 0700, files 0600).
ENV STATE_DIRECTORY=/var/lib/sip-rtmp-bridge
VOLUME ["/var/lib/sip-rtmp-bridge"]
USER 10001:10001
EXPOSE 9091/tcp 5060/udp
# /healthz answers 200 while the event loop runs; a failed request makes the check fail.
HEALTHCHECK --interval=30s --timeout=3s CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:9091/healthz', timeout=2)"]
ENTRYPOINT ["sip-rtmp-bridge"]
CMD ["serve", "--config", "/etc/sip-rtmp-bridge/bridge.toml"]
