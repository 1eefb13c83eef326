# syntax=docker/dockerfile:1
# ksm-scorer container image: built with the Makefile's commands (npm ci, npm run build), run with
# production dependencies only, as the image's non-root user `node`. `make test` does not build it
# (no Docker there); test/deploy/manifests.test.ts checks what it copies, exposes and runs.
ARG NODE_IMAGE=node:20-bookworm-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY proto ./proto
COPY src ./src
RUN npm run build

FROM ${NODE_IMAGE}
ENV NODE_ENV=production
# tini as PID 1: PID 1 ignores any signal it has no handler for, and node installs ksm-scorer's only
# once it has loaded, so a `docker stop` right after start would be lost without it.
RUN apt-get update && apt-get install -y --no-install-recommends tini && rm -rf /var/lib/apt/lists/*
WORKDIR /opt/ksm-scorer
COPY package.json package-lock.json ./
# No install scripts: no production dependency needs one (all plain JavaScript).
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force
COPY --from=build /src/dist ./dist
COPY proto ./proto
RUN chmod 755 dist/cli.js && ln -s /opt/ksm-scorer/dist/cli.js /usr/local/bin/ksm-scorer
USER node
# gRPC, and /metrics for Prometheus.
EXPOSE 50051 9464
# No HEALTHCHECK: the image has no gRPC health client. Kubernetes probes grpc.health.v1 natively
# (deploy/kubernetes); elsewhere use grpc-health-probe or grpcurl (docs/deployment.md).
ENTRYPOINT ["tini", "--", "ksm-scorer", "serve"]
