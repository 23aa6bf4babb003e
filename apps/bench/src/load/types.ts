export interface LoadResult {
  /** Wall time the load generator measured. */
  seconds: number;
  /** Completed responses. */
  requests: number;
  /** Bytes read (headers and bodies, partial responses included). */
  bytes: number;
  /** Socket errors, timeouts and non-2xx/3xx responses. */
  errors: number;
  /** Which kinds of errors, for the report. */
  errorText: string;
}

/** A keep-alive HTTP/1.1 load generator pinned to the load core. */
export interface LoadGenerator {
  /** e.g. "wrk 4.1.0 (1 thread)" */
  readonly description: string;
  run(url: string, connections: number, seconds: number): Promise<LoadResult>;
}
