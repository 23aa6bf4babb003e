/** 'copy' under ZCSEND_DISABLE=1, else 'uring'. */
export const MODE: 'uring' | 'copy' = process.env.ZCSEND_DISABLE === '1' ? 'copy' : 'uring';
/** Set by ZCSEND_REQUIRE_URING=1: io_uring tests must run (and fail without a ring) instead of skipping. */
export const REQUIRE_URING = process.env.ZCSEND_REQUIRE_URING === '1';
