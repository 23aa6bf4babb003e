// zcserve's command line: one table drives parsing, validation messages and --help.
import * as net from 'node:net';
import * as os from 'node:os';
import { parseArgs } from 'node:util';
import { parseSize } from '../size.js';
import type { DotfilesPolicy, EngineChoice, SymlinkPolicy } from '../static/options.js';

interface Flag {
  name: string;
  short?: string;
  type: 'string' | 'boolean';
  default?: string;
  arg?: string;
  help: string;
}

export const FLAGS: readonly Flag[] = [
  { name: 'port', short: 'p', type: 'string', default: '8080', arg: 'N', help: 'port to listen on; 0 picks a free port' },
  { name: 'host', type: 'string', default: '127.0.0.1', arg: 'ADDR', help: 'address to listen on (0.0.0.0 or :: for all)' },
  { name: 'list', type: 'boolean', help: 'HTML listing of directories without an index file (off by default)' },
  { name: 'index', type: 'string', default: 'index.html', arg: 'NAME', help: 'file served for a directory URL' },
  { name: 'dotfiles', type: 'string', default: 'deny', arg: 'deny|allow|ignore', help: 'dotfiles: 403, serve, or 404' },
  { name: 'symlinks', type: 'string', default: 'inside', arg: 'inside|any|none', help: 'follow symlinks staying in root, any, or none' },
  { name: 'max-age', type: 'string', default: '0', arg: 'SECONDS', help: 'Cache-Control max-age' },
  { name: 'immutable', type: 'boolean', help: 'add immutable to Cache-Control' },
  { name: 'cors', type: 'boolean', help: 'Access-Control-Allow-Origin: * and preflight answers' },
  { name: 'no-precompressed', type: 'boolean', help: 'ignore .br/.gz siblings (used by Accept-Encoding by default)' },
  { name: 'engine', type: 'string', default: 'auto', arg: 'auto|zc-cache|splice|sendfile|copy', help: 'file engine' },
  { name: 'cache', type: 'string', default: '256MB', arg: 'SIZE', help: 'file cache size (0 disables)' },
  { name: 'max-in-flight', type: 'string', default: '64MB', arg: 'SIZE', help: 'body bytes in flight before sends wait' },
  { name: 'no-zc', type: 'boolean', help: 'force the copy backend (no io_uring)' },
  { name: 'no-fast-path', type: 'boolean', help: 'send every request through node:http (off: plain GET/HEAD of files skip it)' },
  { name: 'workers', type: 'string', default: '1', arg: 'N|auto', help: 'processes (node:cluster), one ring each' },
  { name: 'timeout', type: 'string', default: '60', arg: 'SECONDS', help: 'reset connections stalled this long (0: never)' },
  { name: 'min-progress', type: 'string', default: '64KB', arg: 'SIZE', help: 'bytes a timed-out client must take per timeout to be kept (0: reset at once)' },
  { name: 'shutdown-timeout', type: 'string', default: '10', arg: 'SECONDS', help: 'grace period for in-flight responses on SIGINT/SIGTERM' },
  { name: 'stat-cache', type: 'string', default: '1000', arg: 'MS', help: 'reuse stat results this long (0: every request)' },
  { name: 'stats', type: 'boolean', help: 'serve GET /_zcsend/stats (JSON) and /_zcsend/metrics (Prometheus)' },
  { name: 'quiet', short: 'q', type: 'boolean', help: 'no access log' },
  { name: 'help', short: 'h', type: 'boolean', help: 'show this help' },
  { name: 'version', short: 'v', type: 'boolean', help: 'print the version' },
];

export interface CliConfig {
  root: string;
  port: number;
  host: string;
  list: boolean;
  index: string;
  dotfiles: DotfilesPolicy;
  symlinks: SymlinkPolicy;
  maxAge: number;
  immutable: boolean;
  cors: boolean;
  precompressed: boolean;
  engine: EngineChoice;
  cacheBytes: number;
  maxInFlightBytes: number;
  zeroCopy: boolean;
  fastPath: boolean;
  workers: number;
  timeoutMs: number;
  minProgressBytes: number;
  shutdownTimeoutMs: number;
  statCacheMs: number;
  stats: boolean;
  quiet: boolean;
}

export type ParsedCli = { kind: 'help' } | { kind: 'version' } | { kind: 'run'; config: CliConfig };

/** A bad command line: the CLI prints `message` on one line and exits 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}

export function helpText(version: string): string {
  const rows = FLAGS.map((f) => {
    const names = `${f.short ? `-${f.short}, ` : '    '}--${f.name}${f.arg ? ` ${f.arg}` : ''}`;
    const def = f.default !== undefined ? ` (default: ${f.default})` : f.type === 'boolean' && f.name !== 'help' && f.name !== 'version' ? ' (default: off)' : '';
    return `  ${names.padEnd(40)} ${f.help}${def}`;
  });
  return [
    `zcserve ${version}: static file server with io_uring zero-copy sends`,
    '',
    'Usage: zcserve [root] [flags]      root defaults to the current directory',
    '',
    'Flags:',
    ...rows,
    '',
    'Environment: ZCSEND_DISABLE=1 forces the copy backend; ZCSEND_REQUIRE_URING=1 fails start-up without io_uring.',
    '',
  ].join('\n');
}

function oneOf<T extends string>(flag: string, value: string, allowed: readonly T[]): T {
  if (!allowed.includes(value as T)) throw new UsageError(`--${flag} must be one of ${allowed.join(', ')}, got '${value}'`);
  return value as T;
}

function integer(flag: string, value: string, min: number, max: number): number {
  if (!/^\d+$/.test(value) || Number(value) < min || Number(value) > max) throw new UsageError(`--${flag} must be an integer from ${min} to ${max}, got '${value}'`);
  return Number(value);
}

function seconds(flag: string, value: string): number {
  if (!/^\d+(\.\d+)?$/.test(value)) throw new UsageError(`--${flag} must be a number of seconds, got '${value}'`);
  return Math.round(Number(value) * 1000);
}

function size(flag: string, value: string): number {
  const bytes = parseSize(value);
  if (bytes === null) throw new UsageError(`--${flag} must be a size such as 256MB, 1GiB or 0, got '${value}'`);
  return bytes;
}

/** Parses argv (without node and the script). Throws UsageError for anything wrong. */
export function parseCli(argv: readonly string[]): ParsedCli {
  const options: Record<string, { type: 'string' | 'boolean'; short?: string }> = {};
  for (const f of FLAGS) options[f.name] = f.short ? { type: f.type, short: f.short } : { type: f.type };
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({ args: [...argv], options, allowPositionals: true, strict: true });
  } catch (err) {
    // Node's messages run on with advice about '--'; the first sentence says what is wrong.
    const message = (err as Error).message.split(/\.\s/)[0]!.replace(/\.$/, '');
    throw new UsageError(message);
  }
  const v = parsed.values as Record<string, string | boolean | undefined>;
  if (v.help) return { kind: 'help' };
  if (v.version) return { kind: 'version' };
  if (parsed.positionals.length > 1) throw new UsageError(`expected at most one root directory, got ${parsed.positionals.length} arguments`);

  const str = (name: string): string => {
    const value = v[name];
    if (typeof value === 'string') return value;
    return FLAGS.find((f) => f.name === name)!.default!;
  };
  const workersText = str('workers');
  const workers = workersText === 'auto' ? os.availableParallelism() : integer('workers', workersText, 1, 1024);
  const index = str('index');
  if (index.length === 0 || index.includes('/') || index.startsWith('.')) throw new UsageError(`--index must be a plain file name, got '${index}'`);

  const host = str('host');
  if (net.isIP(host) === 0 && !/^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$/i.test(host)) throw new UsageError(`--host must be an IP address or a host name, got '${host}'`);
  const maxInFlightBytes = size('max-in-flight', str('max-in-flight'));
  if (maxInFlightBytes < 128 * 1024) throw new UsageError(`--max-in-flight must be at least 128KB, got '${str('max-in-flight')}'`);

  return {
    kind: 'run',
    config: {
      root: parsed.positionals[0] ?? '.',
      port: integer('port', str('port'), 0, 65535),
      host,
      list: v.list === true,
      index,
      dotfiles: oneOf('dotfiles', str('dotfiles'), ['deny', 'allow', 'ignore']),
      symlinks: oneOf('symlinks', str('symlinks'), ['inside', 'any', 'none']),
      maxAge: integer('max-age', str('max-age'), 0, 2 ** 31 - 1),
      immutable: v.immutable === true,
      cors: v.cors === true,
      precompressed: v['no-precompressed'] !== true,
      engine: oneOf('engine', str('engine'), ['auto', 'zc-cache', 'splice', 'sendfile', 'copy']),
      cacheBytes: size('cache', str('cache')),
      maxInFlightBytes,
      zeroCopy: v['no-zc'] !== true,
      fastPath: v['no-fast-path'] !== true,
      workers,
      timeoutMs: seconds('timeout', str('timeout')),
      minProgressBytes: size('min-progress', str('min-progress')),
      shutdownTimeoutMs: seconds('shutdown-timeout', str('shutdown-timeout')),
      statCacheMs: integer('stat-cache', str('stat-cache'), 0, 2 ** 31 - 1),
      stats: v.stats === true,
      quiet: v.quiet === true,
    },
  };
}
