import diagnostics from 'node:diagnostics_channel';

/** Published once per fallback decision: `{ reason, detail }`. */
export const fallbackChannel = diagnostics.channel('zcsend:fallback');
/** Published when a notification reports the kernel copied zero-copy data: `{ fd, bytes }`. */
export const copiedChannel = diagnostics.channel('zcsend:copied');
/** Published on every SEND_ZC contract violation: `{ kind, userData, res, flags }`. */
export const violationChannel = diagnostics.channel('zcsend:violation');
