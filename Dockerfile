# syntax=docker/dockerfile:1
# Writ in a container: OPA's compiler built from the version pinned in adapters/opa/go.mod, the
# TypeScript compiled once at build time, and a slim runtime that runs as a dedicated user with
# the data directory on a volume. See docs/deploy/README.md.

# 1. OPA, built the way adapters/opa/build.js builds it: `go build` of the module's `tool`
#    dependency, static (CGO off), so it runs on any base image.
FROM golang:1.26 AS opa
WORKDIR /src/adapters/opa
COPY adapters/opa/go.mod adapters/opa/go.sum ./
RUN CGO_ENABLED=0 go build -trimpath -ldflags=-s -o /out/opa github.com/open-policy-agent/opa \
 && /out/opa version

# 2. The build: every dependency (TypeScript is a dev dependency), then dist/. Scripts are skipped
#    at install because `prepare` builds, and the sources are not copied yet.
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts
COPY tsconfig.json tsconfig.build.json ./
COPY src src
COPY bot bot
# The receipt claims and the verifier the server and CLI share with writ-verify.
COPY packages/writ-verify/src packages/writ-verify/src
COPY dashboard dashboard
RUN npx tsc -p tsconfig.build.json
# The dashboard's script, worker and stylesheet (esbuild), into dist/dashboard.
RUN node dashboard/build.mjs

# 3. The runtime: production dependencies only, the compiled dist/, the default policies, and OPA
#    where Writ looks for it (adapters/opa/bin/opa under the package root, see src/policy/opa.ts).
FROM node:20-bookworm-slim AS runtime
ENV NODE_ENV=production
WORKDIR /opt/writ
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts && npm cache clean --force
COPY bin bin
COPY policies policies
COPY --from=build /app/dist dist
COPY --from=opa /out/opa adapters/opa/bin/opa

# A dedicated user owns the data directory; Writ keeps it 0700 and every file in it 0600.
RUN groupadd --system writ \
 && useradd --system --gid writ --home-dir /data --no-create-home --shell /usr/sbin/nologin writ \
 && mkdir -p /data \
 && chown writ:writ /data \
 && chmod 0700 /data
VOLUME /data

# glibc keeps a malloc arena per thread (the event loop, the policy and signing workers, LevelDB's
# and libuv's threads), and each holds on to what it freed: two arenas keep the server's resident
# memory about 60 MB lower under load (npm run bench measures both).
ENV MALLOC_ARENA_MAX=2 \
    WRIT_DATA=/data \
    WRIT_POLICIES=/opt/writ/policies \
    WRIT_HOST=0.0.0.0 \
    WRIT_PORT=8080
EXPOSE 8080
USER writ

# The slim image has no curl: Node asks /healthz (liveness and storage) on the configured port.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch(`http://127.0.0.1:${process.env.WRIT_PORT || 8080}/healthz`).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]

# Exec form: node is PID 1 and gets SIGTERM itself, finishes in-flight requests and flushes the log.
STOPSIGNAL SIGTERM
ENTRYPOINT ["node", "bin/writ.js", "serve"]
