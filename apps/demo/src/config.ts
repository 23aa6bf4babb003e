// Demo settings from the environment: PORT, HOST, ZCSEND_ADAPTIVE, ZCSEND_DEMO_DATA, LOG_LEVEL.
import * as path from 'node:path';
import { DemoError } from './errors.js';

export interface DemoConfig {
  port: number;
  host: string;
  /**
   * Core Sender `adaptive` option. Off by default in the demo so SEND_ZC really runs on loopback
   * (where adaptive mode would switch to plain sends because the kernel copies anyway).
   */
  adaptive: boolean;
  /** Sample directory, or null for the cache folder (falling back to the temp dir). */
  sampleDir: string | null;
  logLevel: string;
}

const LOG_LEVELS = new Set(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']);

function fail(message: string): never {
  throw new DemoError('ZCSEND_DEMO_ERR_CONFIG', message);
}

function parsePort(value: string | undefined): number {
  if (value === undefined || value === '') return 3000;
  if (!/^\d{1,5}$/.test(value) || Number(value) > 65535) fail(`PORT must be an integer from 0 to 65535, got ${JSON.stringify(value)}`);
  return Number(value);
}

function parseAdaptive(value: string | undefined): boolean {
  if (value === undefined || value === '') return false;
  if (value === '1' || value === 'true') return true;
  if (value === '0' || value === 'false') return false;
  fail(`ZCSEND_ADAPTIVE must be 1, 0, true or false, got ${JSON.stringify(value)}`);
}

export function configFromEnv(env: NodeJS.ProcessEnv = process.env): DemoConfig {
  const host = env.HOST === undefined || env.HOST === '' ? '127.0.0.1' : env.HOST;
  if (/\s/.test(host)) fail(`HOST must be a host name or address, got ${JSON.stringify(host)}`);
  const logLevel = env.LOG_LEVEL || 'warn';
  if (!LOG_LEVELS.has(logLevel)) fail(`LOG_LEVEL must be one of ${[...LOG_LEVELS].join(', ')}, got ${JSON.stringify(logLevel)}`);
  return {
    port: parsePort(env.PORT),
    host,
    adaptive: parseAdaptive(env.ZCSEND_ADAPTIVE),
    sampleDir: env.ZCSEND_DEMO_DATA ? path.resolve(env.ZCSEND_DEMO_DATA) : null,
    logLevel,
  };
}
