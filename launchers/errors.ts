/** The error catalogue of the launchers (local chains, Kafka clusters, managed processes, ports). */
import { PlatformError, type ErrorSpec, type PlatformErrorOptions } from "../common/errors.js";

export const LAUNCH_ERRORS = {
  LAUNCH_INVALID_OPTIONS: {
    retriable: false,
    description: "A launcher was called with options it cannot honour (empty or duplicate ids, bad flag).",
  },
  KAFKA_LAUNCH_FAILED: {
    retriable: false,
    description: "A Kafka cluster could not be found, set up or started (jars, Java, broker log tail).",
  },
  PROCESS_NOT_READY: {
    retriable: false,
    description: "A managed process exited before it was ready, or was not ready in time.",
  },
  CHAIN_RPC_FAILED: {
    retriable: true,
    description: "A local chain's JSON-RPC call answered an error.",
  },
  SCENARIO_STEP_FAILED: {
    retriable: false,
    description: "A step of the platform scenario (./scripts/run) did not reach its expected outcome.",
  },
  UNKNOWN_DATACENTER: {
    retriable: false,
    description: "The topology has no datacenter of that name.",
  },
  NO_FREE_PORT: {
    retriable: true,
    description: "The OS handed out no port this process had not already handed out.",
  },
} as const satisfies Record<string, ErrorSpec>;

export type LaunchErrorCode = keyof typeof LAUNCH_ERRORS;

export class LaunchError extends PlatformError<LaunchErrorCode> {
  constructor(code: LaunchErrorCode, message: string, options: PlatformErrorOptions = {}) {
    super(code, message, LAUNCH_ERRORS[code].retriable, options);
  }
}
