# syntax=docker/dockerfile:1
# etcdgate container image: build with the full toolchain, run with production
# dependencies only, as the unprivileged "node" user.
#
#   docker build -t etcdgate .
#   docker run --rm -p 2379:2379 -p 9091:9091 \
#     -v /path/to/etc:/etc/etcdgate:ro etcdgate
#
# Mount a directory holding etcdgate.yaml, the policy and the certificates at
# /etc/etcdgate; paths inside the config are relative to that file. Set
# server.listen and admin.listen to 0.0.0.0:<port> so they are reachable from
# outside the container.

FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY protos ./protos
RUN npm run build

FROM node:20-bookworm-slim AS runtime
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev && npm cache clean --force
COPY --from=build /app/dist ./dist
COPY protos ./protos
USER node
EXPOSE 2379 9091
ENTRYPOINT ["node", "dist/src/main.js"]
CMD ["--config", "/etc/etcdgate/etcdgate.yaml"]
