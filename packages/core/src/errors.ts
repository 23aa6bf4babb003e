import { constants as osConstants } from 'node:os';

/** Stable error codes. Match on `code`, never on the message. */
export type ZcSendErrorCode =
  | 'ZCSEND_ERR_INVALID_ARG'
  | 'ZCSEND_ERR_INVALID_OPTION'
  | 'ZCSEND_ERR_URING_UNAVAILABLE'
  | 'ZCSEND_ERR_SOCKET_CLOSED'
  | 'ZCSEND_ERR_SEND_FAILED'
  | 'ZCSEND_ERR_RECV_FAILED'
  | 'ZCSEND_ERR_CANCELLED'
  | 'ZCSEND_ERR_SENDER_CLOSED'
  | 'ZCSEND_ERR_SUBMIT_FAILED'
  | 'ZCSEND_ERR_FILE_CHANGED'
  | 'ZCSEND_ERR_PROTOCOL';

const kZcSendError = Symbol.for('zcsend.error');

const errnoNames = new Map<number, string>(
  Object.entries(osConstants.errno).map(([name, value]) => [value, name]),
);

/** The name of a positive errno value (`EPIPE`), or `errno N` when unknown. */
export function errnoName(errno: number): string {
  return errnoNames.get(errno) ?? `errno ${errno}`;
}

export interface ZcSendErrorDetails {
  errno?: number;
  syscall?: string;
  cause?: unknown;
}

export class ZcSendError extends Error {
  readonly code: ZcSendErrorCode;
  /** Positive errno, as Node reports it in `err.errno` for system errors it is negative; here it is the kernel's value. */
  readonly errno: number | undefined;
  readonly syscall: string | undefined;

  constructor(code: ZcSendErrorCode, message: string, details: ZcSendErrorDetails = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = 'ZcSendError';
    this.code = code;
    this.errno = details.errno;
    this.syscall = details.syscall;
  }

  get [kZcSendError](): true {
    return true;
  }

  /** `instanceof` holds across duplicate installs of @zcsend/core. */
  static override [Symbol.hasInstance](value: unknown): boolean {
    return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[kZcSendError] === true;
  }
}

/** A kernel errno from a CQE turned into a typed error. */
export function errnoError(code: ZcSendErrorCode, negErrno: number, syscall: string, what: string): ZcSendError {
  const errno = Math.abs(negErrno);
  return new ZcSendError(code, `${what}: ${errnoName(errno)}`, { errno, syscall });
}
