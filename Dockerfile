# syntax=docker/dockerfile:1
# One image for every service; the first argument picks which one runs:
#   docker build -t iaas .
#   docker run --rm iaas power            (or: gateway, vm-lifecycle, lease-keeper, remediation, vcenter-proxy,
#                                           veba-bridge; `bootstrap` creates the NATS streams as admin)
# `--build-arg SERVICE=power` bakes a default, for registries that want one image per service.
# deploy/compose.yaml and deploy/k8s/ run it; docs/operations.md explains the configuration.

ARG NODE_IMAGE=node:20-bookworm-slim

FROM ${NODE_IMAGE} AS build
ENV CI=true PNPM_HOME=/pnpm
RUN npm install -g pnpm@12.4.2 && pnpm --version
WORKDIR /src
# Dependencies first, from the lockfile alone, so this layer is reused while only sources change.
COPY pnpm-lock.yaml pnpm-workspace.yaml package.json ./
RUN --mount=type=cache,id=pnpm-store,target=/pnpm/store pnpm config set store-dir /pnpm/store && pnpm fetch
COPY . .
RUN --mount=type=cache,id=pnpm-store,target=/pnpm/store pnpm config set store-dir /pnpm/store \
 && pnpm install --frozen-lockfile --offline \
 && pnpm exec tsc -b tsconfig.json
# The runtime tree: manifests and built output of each workspace package (no sources, tests,
# tools or test kit), then a production-only install of what the services need, from the same
# lockfile. `pnpm install --prod` in /src would leave dev packages in the virtual store (165 MB
# against 50 MB here).
RUN --mount=type=cache,id=pnpm-store,target=/pnpm/store set -eu; \
    mkdir -p /out/deploy/nats /out/deploy/docker; \
    cp package.json pnpm-lock.yaml pnpm-workspace.yaml /out/; \
    for d in packages/* services/*; do \
      [ "$d" = packages/testkit ] && continue; \
      [ -d "$d/dist" ] || continue; \
      mkdir -p "/out/$d"; cp -a "$d/package.json" "$d/dist" "/out/$d/"; \
      rm -f "/out/$d/dist/.tsbuildinfo"; \
    done; \
    cp deploy/nats/bootstrap.mjs /out/deploy/nats/; \
    cp deploy/docker/entrypoint.sh deploy/node-options /out/deploy/docker/; \
    if [ -f deploy/policy.example.yaml ]; then cp deploy/policy.example.yaml /out/deploy/; fi; \
    cd /out && pnpm install --prod --frozen-lockfile --offline --filter "{./services/*}..."; \
    rm -f /out/pnpm-lock.yaml /out/pnpm-workspace.yaml

FROM ${NODE_IMAGE} AS runtime
ARG SERVICE=""
ENV NODE_ENV=production \
    SERVICE=${SERVICE} \
    HEALTH_HOST=0.0.0.0 \
    NODE_OPTIONS=--enable-source-maps
WORKDIR /app
COPY --from=build --chown=root:root /out/ /app/
# The `node` user (uid 1000) of the official image; nothing under /app is writable by it.
USER 1000:1000
ENTRYPOINT ["/bin/sh", "/app/deploy/docker/entrypoint.sh"]
