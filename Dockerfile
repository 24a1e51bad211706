# syntax=docker/dockerfile:1
# etcdgate container image: built with the full toolchain, run with production
# dependencies only, as an unprivileged user (uid/gid 10001, numeric so that
# Kubernetes' runAsNonRoot can check it).
#
#   docker build -t etcdgate .
#   docker run --rm -p 2379:2379 -p 9091:9091 \
#     -v /srv/etcdgate/config:/etc/etcdgate:ro \
#     -v /srv/etcdgate/certs:/etc/etcdgate/certs:ro \
#     -v /srv/etcdgate/audit:/var/log/etcdgate \
#     etcdgate
#
# Volumes (see README, "Running in a container"):
#   /etc/etcdgate         etcdgate.yaml and the policy (read-only; paths in the config are
#                         relative to it, so `policy: policy.yaml` is /etc/etcdgate/policy.yaml)
#   /etc/etcdgate/certs   certificates and keys (read-only; replace files in place to rotate:
#                         etcdgate reloads them)
#   /var/log/etcdgate     the audit file, with `audit.sink: file:/var/log/etcdgate/audit.jsonl`
#                         (writable by uid 10001); not needed with the stdout or syslog sinks
#
# In a container the config must listen on all interfaces: `server.listen: 0.0.0.0:2379`
# and `admin.listen: 0.0.0.0:9091` (the defaults are loopback only, unreachable from
# outside the container). The HEALTHCHECK asks /readyz on the admin port; if admin.listen
# uses another port or HTTPS, set ETCDGATE_READYZ_URL (e.g. https://127.0.0.1:9443/readyz;
# the check does not verify the admin certificate).
#
# Node.js 24 is a maintained LTS line until 2028-04-30 (Node.js Release schedule); Node 20,
# the previous base, reached end of life on 2026-04-30. Node 26 (LTS from 2026-10) also
# works as a base: ARG NODE_VERSION=26.

ARG NODE_VERSION=24

FROM node:${NODE_VERSION}-trixie-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY protos ./protos
RUN npm run build

FROM node:${NODE_VERSION}-trixie-slim AS runtime
ENV NODE_ENV=production \
    ETCDGATE_READYZ_URL=http://127.0.0.1:9091/readyz
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/dist ./dist
COPY protos ./protos
COPY LICENSE ./
RUN groupadd --system --gid 10001 etcdgate \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin etcdgate \
 && mkdir -p /etc/etcdgate/certs /var/log/etcdgate \
 && chown 10001:10001 /var/log/etcdgate \
 && chmod 0750 /var/log/etcdgate
VOLUME ["/var/log/etcdgate"]
USER 10001:10001
EXPOSE 2379 9091
# /readyz: 200 only while etcdgate listens, has its policy, reaches etcd, etcd serves
# linearizable reads and the audit sink accepts records. No curl in the slim image: Node asks.
HEALTHCHECK --interval=10s --timeout=3s --start-period=15s --retries=3 \
  CMD ["node", "-e", "process.env.NODE_TLS_REJECT_UNAUTHORIZED='0';fetch(process.env.ETCDGATE_READYZ_URL).then((r)=>process.exit(r.ok?0:1),()=>process.exit(1))"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["node", "dist/src/main.js"]
CMD ["--config", "/etc/etcdgate/etcdgate.yaml"]
