#!/usr/bin/env node
// zcserve [root] [flags]: see `zcserve --help`. Runs the built CLI (pnpm build first).
import { main } from '../dist/cli.js';

main(process.argv.slice(2)).catch((err) => {
  process.stderr.write(`zcserve: ${err && err.stack ? err.stack : String(err)}\n`);
  process.exit(1);
});
