# shellcheck shell=bash
# Local stand-ins for the base images of docker-compose.yml (scripts/compose-images, the compose test).
# Sourced after scripts/lib/env.sh and scripts/lib/kafka.sh (lp_ensure_node and lp_ensure_kafka done).
#   lp_compose_images [force]   builds what is missing or out of date; exports LP_NODE_IMAGE, LP_KAFKA_IMAGE
# Every image has the label org.license-platform.inputs = sha256 of what it was built from (files,
# versions, the image it was built on), so an unchanged input reuses the image. Build logs go to
# $LP_CACHE_DIR/compose-images/*.log; a failure prints the log's tail.

LP_BASE_IMAGE="${LP_BASE_IMAGE:-license-platform/debian:bookworm}"
LP_DEBIAN_MIRROR="${LP_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
LP_NPM_PACKAGE="npm@11"
LP_IMAGES_LABEL="org.license-platform.inputs"
LP_NODE_IMAGE="${LP_NODE_IMAGE:-license-platform/node:24}"

lp_image_inputs() { docker image inspect -f "{{ index .Config.Labels \"$LP_IMAGES_LABEL\" }}" "$1" 2>/dev/null || true; }
lp_image_id() { docker image inspect -f '{{ .Id }}' "$1"; }

# lp_logged LOGFILE WHAT COMMAND...: runs the command with its output in LOGFILE; tail on failure.
lp_logged() {
  local log=$1 what=$2
  shift 2
  local t=$SECONDS
  if "$@" >"$log" 2>&1; then
    lp_log "$what: done in $((SECONDS - t)) s"
  else
    local status=$?
    lp_log "$what: FAILED (exit $status) after $((SECONDS - t)) s; last lines of $log:"
    tail -n 30 "$log" | sed 's/^/    /' >&2
    return "$status"
  fi
}

lp_build_base_image() {
  local work=$1 want=$2 dir
  command -v debootstrap >/dev/null 2>&1 || { lp_log "the Debian base image needs debootstrap (apt-get install debootstrap)"; return 1; }
  [ "$(id -u)" = 0 ] || { lp_log "debootstrap needs root"; return 1; }
  dir="$work/rootfs"
  rm -rf "$dir"
  lp_logged "$work/debian.log" "debootstrap --variant=minbase bookworm ($LP_DEBIAN_MIRROR)" \
    timeout 900 debootstrap --variant=minbase bookworm "$dir" "$LP_DEBIAN_MIRROR" || return 1
  # The image keeps the mirror in sources.list (the Kafka image installs its JDK from it at build time).
  rm -rf "$dir"/var/cache/apt/archives/*.deb "$dir"/var/lib/apt/lists/*
  lp_logged "$work/debian-import.log" "docker import $LP_BASE_IMAGE" \
    bash -c 'tar -C "$1" -c . | timeout 600 docker import --change "LABEL $2=$3" --change "CMD [\"bash\"]" - "$4"' \
    _ "$dir" "$LP_IMAGES_LABEL" "$want" "$LP_BASE_IMAGE" || return 1
  rm -rf "$dir"
}

# lp_build_image NAME CONTEXT WANT: docker build (host network for the package mirrors) with the label.
lp_build_image() {
  local name=$1 context=$2 want=$3 log
  log="$LP_CACHE_DIR/compose-images/$(echo "$name" | tr '/:' '__').log"
  DOCKER_BUILDKIT=0 lp_logged "$log" "docker build $name" \
    timeout 1200 docker build --network host --pull=false --build-arg "BASE_IMAGE=$LP_BASE_IMAGE" \
    --label "$LP_IMAGES_LABEL=$want" -t "$name" "$context"
}

lp_compose_images() {
  local force=${1:-0}
  local work="$LP_CACHE_DIR/compose-images"
  local src="$LP_ROOT/deploy/compose/images"
  LP_KAFKA_IMAGE="${LP_KAFKA_IMAGE:-license-platform/kafka:${LP_KAFKA_VERSION:?lp_ensure_kafka first}}"
  command -v docker >/dev/null 2>&1 || { lp_log "no docker command (apt-get install docker.io)"; return 1; }
  timeout 20 docker info >/dev/null 2>&1 || { lp_log "no Docker engine answers (start it: dockerd --iptables=false &)"; return 1; }
  mkdir -p "$work"
  (
    if command -v flock >/dev/null 2>&1; then flock 9; fi
    set -euo pipefail
    local want ctx node_bin node_version npm_dir jars tools_jar

    # ---- Debian base
    want=$(printf 'debootstrap minbase bookworm %s v1' "$LP_DEBIAN_MIRROR" | sha256sum | cut -c1-64)
    if [ "$force" = 1 ] || [ "$(lp_image_inputs "$LP_BASE_IMAGE")" != "$want" ]; then
      lp_build_base_image "$work" "$want"
    else
      lp_log "$LP_BASE_IMAGE: up to date"
    fi
    local base_id
    base_id=$(lp_image_id "$LP_BASE_IMAGE")

    # ---- Node 24: the node binary lp_ensure_node uses, npm from the npm registry
    node_bin=$(command -v node)
    node_version=$(node -v)
    case "$node_version" in v24.*) ;; *) lp_log "need Node 24 for the image, have $node_version"; exit 1 ;; esac
    npm_dir="$work/npm"
    if [ ! -f "$npm_dir/node_modules/npm/package.json" ]; then
      lp_log "fetching $LP_NPM_PACKAGE for the Node image into $npm_dir"
      rm -rf "$npm_dir"
      timeout 600 npm install --prefix "$npm_dir" --no-save --no-package-lock --no-audit --no-fund \
        --loglevel=error "$LP_NPM_PACKAGE" >&2
    fi
    # The CAs this machine trusts (a TLS-inspecting proxy's among them) go into the image for npm.
    local cas=""
    for cas in "${NODE_EXTRA_CA_CERTS:-}" /etc/ssl/certs/ca-certificates.crt; do
      [ -n "$cas" ] && [ -f "$cas" ] && break
      cas=""
    done
    want=$( {
      echo "$base_id" "$node_version" "$(node -p 'require(process.argv[1]).version' "$npm_dir/node_modules/npm/package.json")"
      cat "$src/node/Dockerfile"
      [ -z "$cas" ] || cat "$cas"
    } | sha256sum | cut -c1-64)
    if [ "$force" = 1 ] || [ "$(lp_image_inputs "$LP_NODE_IMAGE")" != "$want" ]; then
      ctx="$work/ctx-node"
      rm -rf "$ctx"
      mkdir -p "$ctx"
      cp "$src/node/Dockerfile" "$ctx/"
      cp "$(readlink -f "$node_bin")" "$ctx/node"
      cp -r "$npm_dir/node_modules/npm" "$ctx/npm"
      if [ -n "$cas" ]; then cp "$cas" "$ctx/ca-certificates.crt"; else : >"$ctx/ca-certificates.crt"; fi
      lp_build_image "$LP_NODE_IMAGE" "$ctx" "$want"
      rm -rf "$ctx"
    else
      lp_log "$LP_NODE_IMAGE: up to date"
    fi

    # ---- Kafka: the jars of lp_ensure_kafka plus kafka-tools (the healthcheck's BrokerApiVersionsCommand)
    jars="$work/kafka-$LP_KAFKA_VERSION-tools"
    tools_jar="$jars/kafka-tools-$LP_KAFKA_VERSION.jar"
    if [ ! -f "$tools_jar" ]; then
      lp_log "resolving org.apache.kafka:kafka-tools:$LP_KAFKA_VERSION with Maven"
      mkdir -p "$jars"
      # shellcheck disable=SC2086 # LP_MAVEN_ARGS is a list of arguments
      timeout 600 mvn -q -B -Dstyle.color=never -f "$LP_ROOT/launchers/kafka/pom.xml" ${LP_MAVEN_ARGS:-} \
        dependency:copy -Dartifact="org.apache.kafka:kafka-tools:$LP_KAFKA_VERSION" -DoutputDirectory="$jars" \
        </dev/null 2>&1 | sed -e "s/\x1b\[0m//g" -e "/^$/d" >&2
    fi
    want=$( {
      echo "$base_id" "$LP_KAFKA_VERSION"
      (cd "$LP_KAFKA_LIB" && ls) ; (cd "$jars" && ls)
      (cd "$src/kafka" && find . -type f | sort | xargs sha256sum)
    } | sha256sum | cut -c1-64)
    if [ "$force" = 1 ] || [ "$(lp_image_inputs "$LP_KAFKA_IMAGE")" != "$want" ]; then
      ctx="$work/ctx-kafka"
      rm -rf "$ctx"
      mkdir -p "$ctx/libs"
      cp -r "$src/kafka/." "$ctx/"
      cp "$LP_KAFKA_LIB"/*.jar "$jars"/*.jar "$ctx/libs/"
      lp_build_image "$LP_KAFKA_IMAGE" "$ctx" "$want"
      rm -rf "$ctx"
    else
      lp_log "$LP_KAFKA_IMAGE: up to date"
    fi
  ) 9>"$work/.lock" || return 1
  export LP_NODE_IMAGE LP_KAFKA_IMAGE
}
