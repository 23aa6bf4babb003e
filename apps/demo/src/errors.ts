/** Stable codes for the demo's own failures (the packages' errors keep their ZCSEND_ERR_* / FST_ZC_* codes). */
export type DemoErrorCode =
  /** A bad PORT, HOST, ZCSEND_ADAPTIVE or LOG_LEVEL value. */
  | 'ZCSEND_DEMO_ERR_CONFIG'
  /** A bad load request (seconds, requests, connections). */
  | 'ZCSEND_DEMO_ERR_LOAD_OPTION'
  /** A load run is already in progress. */
  | 'ZCSEND_DEMO_ERR_LOAD_BUSY'
  /** The server does not listen on a loopback or wildcard address, so the load cannot stay on loopback. */
  | 'ZCSEND_DEMO_ERR_NOT_LOOPBACK';

export class DemoError extends Error {
  constructor(
    readonly code: DemoErrorCode,
    message: string,
    /** HTTP status when the error answers a request. */
    readonly statusCode = 400,
  ) {
    super(message);
    this.name = 'DemoError';
  }
}
