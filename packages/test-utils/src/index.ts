// Helpers every package's tests use the same way. Package-specific ones (servers, rings, fake
// backends) stay in each package's test/helpers.ts, which re-exports these.
export { MODE, REQUIRE_URING } from './mode.js';
export { randomBytes, sha256 } from './bytes.js';
export { waitFor } from './wait.js';
export { evictFromPageCache } from './page-cache.js';
export { pacedGet, stalledClient, type PacedResult } from './paced-client.js';
