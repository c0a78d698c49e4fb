# syntax=docker/dockerfile:1
#
# emissary — renders secrets into files and reloads the services that read them.
# One image for three uses: a LinuxKit `services` entry (the org.mobyproject.config label below
# carries the capabilities and binds, so a LinuxKit yml needs only name + image), a container
# beside Consul/Nomad (docker run, compose, a Nomad task), and a base for images with custom
# backend modules.
#
#   docker build -t emissaryd/emissary:0.1.0 .      (the tag the examples use: the package version)
#   linuxkit pkg build -hash=0.1.0 .                (build.yml holds the same config as the label)
#
# Runs as root by default: in LinuxKit it chowns rendered files and restarts host services.
# To run unprivileged: `docker run --user node …` (uid 1000) with template and destination
# directories that user can read and write; docs/deployment.md has the details.

# Node 24 LTS on Alpine, pinned by digest: the multi-arch index (amd64, arm64, s390x) that
# node:24-alpine and node:24.20.0-alpine3.24 named on 27 Aug 2026 (docker-library/repo-info,
# repos/node/remote/24-alpine.md). The tag is for people; the digest is what is pulled.
# To update: `docker buildx imagetools inspect node:24-alpine` (or `crane digest node:24-alpine`)
# prints the current index digest and `docker run --rm node:24-alpine node --version` the Node
# version; put both here, rebuild, and run the tests. A one-off build on another base:
# `docker build --build-arg NODE_IMAGE=node:24-alpine …`.
ARG NODE_IMAGE=node:24.20.0-alpine3.24@sha256:e67514e5d0f6c46656005e1b693b2ec9d52e80b641307de684d4a015ba7a4eaf

# ---- build: compile TypeScript and pack the npm tarball exactly as it is published ----------
FROM ${NODE_IMAGE} AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json README.md LICENSE ./
COPY src ./src
COPY backends ./backends
COPY scripts/bundle-cli.mjs ./scripts/
# `npm pack` runs the prepack script (a clean tsc build into dist/, then the CLI bundle: see
# scripts/bundle-cli.mjs) and packs what npm publishes;
# the tarball is unpacked into /pkg/package for the runtime stage.
RUN mkdir /pkg \
 && npm pack --pack-destination /pkg \
 && tar -xzf /pkg/emissaryd-*.tgz -C /pkg

# ---- runtime: Node 24 LTS, the published package with its locked production dependencies ---
FROM ${NODE_IMAGE}

# tini is PID 1: it forwards SIGTERM/SIGINT/SIGHUP to emissary and reaps orphans that reload
# commands leave behind. Pinned to its 0.19 series (~ matches 0.19.x, whatever the Alpine
# release). /bin/sh (busybox) stays for reload scripts. TLS roots: Node carries its own; Alpine's
# ca-certificates-bundle is in the base image for wget and friends. Private CAs: VAULT_CACERT,
# or NODE_EXTRA_CA_CERTS=/path/to/ca.pem for every backend.
RUN apk add --no-cache tini~0.19

# The same steps test/integration/packaging-image.test.ts performs without a container engine:
# the unpacked package plus the repository's package-lock.json, and `npm ci --omit=dev`, which
# installs exactly the locked versions of the production dependencies (and fails if the lockfile
# and package.json disagree).
# - `emissary` is linked into /usr/local/bin, which is on the default PATH even when LinuxKit's
#   `env:` replaces the image's environment (PATH included).
# - /node_modules/emissaryd lets a custom backend module anywhere in the filesystem
#   `import … from "emissaryd"` from the package the CLI runs (errors are matched by their code,
#   so a backend's SecretNotFoundError classifies the same in the bundled CLI).
# - npm, npx, corepack and yarn are removed: nothing needs them at run time.
WORKDIR /opt/emissary
COPY --from=build /pkg/package ./
COPY --from=build /src/package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund \
 && chmod 0755 dist/src/cli.js \
 && ln -s /opt/emissary/dist/src/cli.js /usr/local/bin/emissary \
 && mkdir -p /node_modules \
 && ln -s /opt/emissary /node_modules/emissaryd \
 && npm cache clean --force \
 && rm -rf /root/.npm /usr/local/lib/node_modules/npm /usr/local/lib/node_modules/corepack \
      /usr/local/bin/npm /usr/local/bin/npx /usr/local/bin/corepack \
      /usr/local/bin/yarn /usr/local/bin/yarnpkg /opt/yarn-*

# Restart helper for LinuxKit services (`command: linuxkit-restart consul` in a template).
COPY examples/linuxkit/linuxkit-restart.sh /usr/local/bin/linuxkit-restart

ENV NODE_ENV=production \
    EMISSARY_TPL_DIR=/run/config/emissary

LABEL org.opencontainers.image.title="emissary" \
      org.opencontainers.image.description="Renders secrets from AWS Secrets Manager, Vault, files, HTTP and env into files atomically and reloads services" \
      org.opencontainers.image.source="https://github.com/emissaryd/emissary" \
      org.opencontainers.image.licenses="MIT"

# LinuxKit reads this label (same as `config:` in build.yml): file ownership and mode changes
# on rendered files, signals to reload commands, host networking to reach AWS/Vault, /run for
# /run/config and containerd's socket; for linuxkit-restart, read-only, the host's `service` and
# `ctr` and /containers/services, the service specs `service start` reads (without them
# `service restart` stops a service and cannot start it again).
LABEL org.mobyproject.config='{"capabilities":["CAP_CHOWN","CAP_DAC_OVERRIDE","CAP_FOWNER","CAP_FSETID","CAP_KILL"],"binds":["/etc/resolv.conf:/etc/resolv.conf:ro","/run:/run","/containers/services:/containers/services:ro","/usr/bin/ctr:/usr/bin/ctr:ro","/usr/bin/service:/usr/bin/service:ro"],"net":"host","runtime":{"mkdir":["/run/config/emissary"]}}'

WORKDIR /
ENTRYPOINT ["/sbin/tini", "--", "emissary"]
CMD ["run"]
