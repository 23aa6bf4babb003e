import createError from '@fastify/error';

/** Bad plugin options: thrown at registration, never at request time. */
export const FST_ZC_INVALID_OPTION = createError<[message: string, options?: { cause: unknown }]>('FST_ZC_INVALID_OPTION', 'zcSend: %s', 500, TypeError);

/** io_uring was required (`backend: 'io_uring'` or `ZCSEND_REQUIRE_URING=1`) but cannot be used here. */
export const FST_ZC_URING_UNAVAILABLE = createError<[message: string, options?: { cause: unknown }]>('FST_ZC_URING_UNAVAILABLE', 'zcSend: %s', 500);

/** `reply.zcSend(data)` got something that is not a Buffer, Uint8Array or string. */
export const FST_ZC_INVALID_PAYLOAD = createError<[message: string, options?: { cause: unknown }]>(
  'FST_ZC_INVALID_PAYLOAD',
  'zcSend: reply.zcSend() takes a Buffer, Uint8Array or string, got %s',
  500,
  TypeError,
);

export const errors = { FST_ZC_INVALID_OPTION, FST_ZC_URING_UNAVAILABLE, FST_ZC_INVALID_PAYLOAD };
