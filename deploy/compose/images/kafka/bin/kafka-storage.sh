#!/usr/bin/env bash
LP_KAFKA_TOOL=1 exec /opt/kafka/bin/kafka-run-class.sh kafka.tools.StorageTool "$@"
