// The dashboard's static assets: its own files from public/ and uPlot from node_modules, served
// from memory by the demo itself (the machine may have no internet: no CDN).
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

export interface Asset {
  body: Buffer;
  contentType: string;
}

export const PUBLIC_DIR = fileURLToPath(new URL('../public/', import.meta.url));

function uplotDist(): string {
  const require = createRequire(import.meta.url);
  return path.join(path.dirname(require.resolve('uplot/package.json')), 'dist');
}

const TYPES: Record<string, string> = {
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
};

/** URL name → file, read once at start-up. */
export function loadAssets(): Map<string, Asset> {
  const files: Record<string, string> = {
    'dashboard.js': path.join(PUBLIC_DIR, 'dashboard.js'),
    'dashboard.css': path.join(PUBLIC_DIR, 'dashboard.css'),
    'favicon.svg': path.join(PUBLIC_DIR, 'favicon.svg'),
    'uPlot.iife.min.js': path.join(uplotDist(), 'uPlot.iife.min.js'),
    'uPlot.min.css': path.join(uplotDist(), 'uPlot.min.css'),
  };
  const assets = new Map<string, Asset>();
  for (const [name, file] of Object.entries(files)) {
    assets.set(name, { body: fs.readFileSync(file), contentType: TYPES[path.extname(name)] ?? 'application/octet-stream' });
  }
  return assets;
}

export function readDashboardTemplate(): string {
  return fs.readFileSync(path.join(PUBLIC_DIR, 'index.html'), 'utf8');
}

const HTML_ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => HTML_ESCAPES[c] ?? c);
}

/** Fills `{{name}}` placeholders with escaped values; unknown placeholders are an error (a typo would ship). */
export function renderTemplate(template: string, values: Record<string, string>): string {
  return template.replace(/\{\{(\w+)\}\}/g, (_, name: string) => {
    const value = values[name];
    if (value === undefined) throw new Error(`dashboard template: no value for {{${name}}}`);
    return escapeHtml(value);
  });
}
