import type { BenchDialect } from './server-protocol.js';

/** One HTTP request of a scenario's load. */
export interface BenchRequest {
  readonly method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  readonly path: string;
  readonly headers?: Readonly<Record<string, string>>;
  readonly body?: string;
}

/**
 * A hot path measured on Socle and on a hand-written baseline doing the same work. Add one by
 * writing its two server entry points (each calls `runServerChild`) and listing it in
 * `scenarios/index.ts`.
 */
export interface Scenario {
  /** kebab-case; what `--scenario` selects and result files are named after. */
  readonly name: string;
  /** What is compared, in one sentence. */
  readonly description: string;
  readonly dialects: readonly BenchDialect[];
  /** Socle's req/s divided by the baseline's that this scenario aims for. */
  readonly goal: number;
  /**
   * Concurrent connections when `--connections` is not given (the harness's default otherwise).
   * A CPU-heavy path such as a password hash gets fewer, so latency stays readable.
   */
  readonly connections?: number;
  /** Compiled entry point of the Socle server. It starts first and owns the schema (migrations). */
  readonly socleServer: URL;
  /** Compiled entry point of the baseline server, started after the Socle one has stopped. */
  readonly baselineServer: URL;
  /** Called for every request of the load. */
  nextRequest(): BenchRequest;
  /** Sent once to each server before loading it: must answer 2xx, and the same body on both. */
  readonly probe: BenchRequest;
  /**
   * What of the probe's body must be the same on both servers; the whole body when absent. A
   * scenario whose answers hold fresh random values (tokens, ids) compares their shape instead.
   */
  probeShape?(body: string): string;
}

/**
 * A scenario that is not a request/response load (WebSocket fan-out, for instance): it drives its
 * servers itself and returns its own figures. The harness still gives it the run settings and
 * prints and stores what it returns.
 */
export interface CustomScenario {
  readonly kind: 'custom';
  readonly name: string;
  readonly description: string;
  readonly dialects: readonly BenchDialect[];
  /**
   * The scenario creates its own Postgres databases (one per round, say) through
   * `postgresAdminUrl`; the harness then creates none and `databaseUrl` is undefined.
   */
  readonly createsDatabases?: boolean;
  run(dialect: BenchDialect, settings: CustomRunSettings): Promise<CustomResult>;
}

/** What a custom scenario gets from the harness. */
export interface CustomRunSettings {
  readonly poolMax: number;
  /** `--connections`, when given: what it means is the scenario's to say. */
  readonly connections: number | undefined;
  /** `--duration`: how long the scenario's measured load lasts, where it has one. */
  readonly durationSeconds: number;
  /** Postgres database of this run; undefined on PGlite and with `createsDatabases`. */
  readonly databaseUrl: string | undefined;
  /** Where a scenario with `createsDatabases` creates and drops its databases. */
  readonly postgresAdminUrl: string;
  readonly rounds: number;
  /** How long each server it spawns may take to report ready (`--start-timeout`). */
  readonly startTimeoutSeconds: number;
  /** When set (`--profile`), where the scenario writes its CPU profiles. */
  readonly profileDirectory: string | undefined;
  readonly signal: AbortSignal;
  readonly progress: (line: string) => void;
}

/** A custom scenario's outcome: lines to print and figures to store in `bench/results/`. */
export interface CustomResult {
  readonly scenario: string;
  readonly dialect: BenchDialect;
  readonly text: string;
  readonly figures: unknown;
}
