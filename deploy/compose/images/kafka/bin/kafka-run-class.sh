#!/usr/bin/env bash
# Minimal kafka-run-class.sh of the local apache/kafka stand-in: java with the Maven-resolved jars.
# KAFKA_HEAP_OPTS and KAFKA_OPTS as in the distribution; tools default to a small heap and WARN logs.
set -euo pipefail
heap=${KAFKA_HEAP_OPTS:--Xmx256m}
log4j=/opt/kafka/config/log4j2.properties
if [ "${LP_KAFKA_TOOL:-}" = 1 ]; then heap="-Xmx128m"; log4j=/opt/kafka/config/tools-log4j2.properties; fi
# shellcheck disable=SC2086 # the *_OPTS variables are lists of JVM options
exec java $heap -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -XX:-UsePerfData -XX:+ExitOnOutOfMemoryError \
  -Djava.awt.headless=true -Dlog4j2.configurationFile="$log4j" ${KAFKA_OPTS:-} \
  -cp '/opt/kafka/libs/*' "$@"
