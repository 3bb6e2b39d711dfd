# One image for the platform. Targets:
#   runtime (default, last stage): licensing service, replicator, deployer — production dependencies only
#   chain:  a local EVM chain (`hardhat node`; Hardhat is a development dependency)
# Build: docker build -t license-platform .   and   docker build --target chain -t license-platform-chain .
# Without registry access: --build-arg NODE_IMAGE=license-platform/node:24 (a local stand-in made by
# scripts/compose-images) and --network host (npm install reaches the npm registry). docker-compose.yml
# passes both (NODE_IMAGE from the environment). No `# syntax=` line: BuildKit would pull its frontend.
ARG NODE_IMAGE=node:24-bookworm-slim

# ---- all dependencies (build tools, Hardhat) -------------------------------------------------------
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# `npm install --no-save` installs the locked versions (see scripts/lib/env.sh for why not `npm ci`).
RUN npm install --no-save --no-audit --no-fund

# ---- compile: contracts (offline solc from npm) and TypeScript to JavaScript -----------------------
FROM deps AS build
COPY . .
RUN npx hardhat build --quiet && npx tsc -p tsconfig.build.json

# ---- production dependencies only ------------------------------------------------------------------
FROM ${NODE_IMAGE} AS prod-deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm install --omit=dev --no-save --no-audit --no-fund

# ---- a local EVM chain -----------------------------------------------------------------------------
FROM deps AS chain
COPY hardhat.config.ts tsconfig.json ./
USER node
EXPOSE 8545
# The chain id comes from the command (docker-compose.yml sets one per chain).
CMD ["npx", "hardhat", "node", "--hostname", "0.0.0.0", "--port", "8545", "--chain-id", "31337"]

# ---- runtime (final stage) -------------------------------------------------------------------------
FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production
WORKDIR /app
COPY --from=prod-deps /app/node_modules ./node_modules
COPY package.json ./
# dist/ mirrors the source tree, so the code finds artifacts/ and launchers/ where it does in a checkout.
COPY --from=build /app/dist/ ./
COPY --from=build /app/artifacts/contracts/LicenseToken.sol/ ./artifacts/contracts/LicenseToken.sol/
COPY launchers/kafka/ ./launchers/kafka/
# the browser pages (/docs, /dashboard) are plain HTML, JS and CSS next to the compiled server
COPY server/pages/ ./server/pages/
RUN mkdir -p /data /deployments && chown node:node /data /deployments
USER node
VOLUME ["/data", "/deployments"]
CMD ["node", "server/main.js", "--help"]
