/** The error catalogue of the Kafka home (client factory, security settings, patches, direct producer). */
import { PlatformError, type ErrorSpec, type PlatformErrorOptions } from "../common/errors.js";

export const KAFKA_ERRORS = {
  KAFKAJS_PATCH_FAILED: {
    retriable: false,
    description:
      "The verified kafkajs version is installed but one of its internals a patch replaces is missing (a modified install): the process refuses to run half-patched.",
  },
  RECORDS_REFUSED: {
    retriable: false,
    description:
      "The destination refused a partition's records with a non-retriable error (MESSAGE_TOO_LARGE, INVALID_RECORD, …): sending them again cannot succeed.",
  },
  NOT_ACKNOWLEDGED: {
    retriable: true,
    description:
      "A destination partition did not acknowledge a produce request (no leader, or an error code) after every retry.",
  },
  SECURITY_UNRESOLVED: {
    retriable: false,
    description:
      "A secret or certificate reference of a cluster's security settings ({ env } or { file }) names an unset environment variable or an unreadable file; the error's field names the setting.",
  },
} as const satisfies Record<string, ErrorSpec>;

export type KafkaErrorCode = keyof typeof KAFKA_ERRORS;

export class KafkaError extends PlatformError<KafkaErrorCode> {
  constructor(code: KafkaErrorCode, message: string, options: PlatformErrorOptions = {}) {
    super(code, message, KAFKA_ERRORS[code].retriable, options);
  }
}
