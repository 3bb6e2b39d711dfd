# shellcheck shell=bash
# Apache Kafka jars for the local clusters started by launchers/kafka.ts (no Docker, no distribution
# tarball): Maven resolves launchers/kafka/pom.xml from Maven Central and copies the runtime jars into
#   $LP_CACHE_DIR/kafka/<version>/lib
# A stamp file (the pom's sha256) written last marks a complete copy, so an interrupted run or a
# changed pom is resolved again. Maven's local repository (~/.m2 unless LP_MAVEN_ARGS says otherwise)
# is reused between versions.
#
# Sourced after scripts/lib/env.sh (LP_ROOT, LP_CACHE_DIR, lp_log). Usage:
#   source scripts/lib/env.sh; source scripts/lib/kafka.sh; lp_ensure_kafka
# Exports LP_KAFKA_VERSION and LP_KAFKA_LIB. Extra Maven arguments: LP_MAVEN_ARGS (word-split),
# e.g. LP_MAVEN_ARGS="-Dmaven.repo.local=/tmp/m2".

# The Kafka version is the pom's <kafka.version> property: one place to change it.
lp_kafka_version() {
  sed -n 's:.*<kafka\.version>\([^<]*\)</kafka\.version>.*:\1:p' "$LP_ROOT/launchers/kafka/pom.xml" | head -n 1
}

lp_ensure_kafka() {
  local pom="$LP_ROOT/launchers/kafka/pom.xml"
  local version dir lib stamp want
  version="$(lp_kafka_version)"
  [ -n "$version" ] || { lp_log "no <kafka.version> in $pom"; return 1; }
  dir="$LP_CACHE_DIR/kafka/$version"
  lib="$dir/lib"
  stamp="$dir/.complete"
  want="$(sha256sum "$pom" | cut -d ' ' -f 1)"

  if ! { [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -d "$lib" ]; }; then
    command -v java >/dev/null 2>&1 || { lp_log "Kafka needs Java 17 or newer: install a JDK (e.g. apt-get install openjdk-17-jdk-headless)"; return 1; }
    command -v mvn >/dev/null 2>&1 || { lp_log "resolving the Kafka jars needs Maven: install it (e.g. apt-get install maven)"; return 1; }
    mkdir -p "$dir"
    # One resolver at a time per version (parallel test runs share the cache); the others wait and
    # then find the stamp.
    (
      if command -v flock >/dev/null 2>&1; then flock 9; fi
      if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -d "$lib" ]; then exit 0; fi
      rm -f "$stamp"
      rm -rf "$lib.partial"
      lp_log "resolving Apache Kafka $version jars with Maven into $lib (first time: ~55 MB download)"
      local started=$SECONDS
      set -o pipefail
      # -B: no prompts, no progress bars (CI, no stdin). Debian's Maven 3.8 still writes bare ANSI
      # resets even with -q -B; sed drops them.
      # shellcheck disable=SC2086 # LP_MAVEN_ARGS is a list of arguments
      mvn -q -B -Dstyle.color=never -f "$pom" ${LP_MAVEN_ARGS:-} \
        dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$lib.partial" </dev/null 2>&1 |
        sed -e 's/\x1b\[0m//g' -e '/^$/d' >&2 ||
        { lp_log "Maven could not resolve the Kafka jars (network access to Maven Central needed)"; exit 1; }
      rm -rf "$lib"
      mv "$lib.partial" "$lib"
      # Class data sharing archives (launchers/kafka.ts) were made for the jars just replaced.
      rm -rf "$LP_CACHE_DIR/kafka/cds"
      printf '%s\n' "$want" >"$stamp"
      lp_log "Kafka $version: $(find "$lib" -name '*.jar' | wc -l) jars in $((SECONDS - started)) s"
    ) 9>"$dir/.lock" || return 1
  fi
  LP_KAFKA_VERSION="$version"
  LP_KAFKA_LIB="$lib"
  export LP_KAFKA_VERSION LP_KAFKA_LIB
}
