// Directory listing (opt-in): names HTML-escaped in text and percent-encoded in links.
import * as fs from 'node:fs';

const MAX_LISTED = 10_000;

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

interface Row {
  name: string;
  dir: boolean;
  size: number | null;
  mtime: Date | null;
}

export async function renderListing(fsPath: string, urlPath: string, showDotfiles: boolean): Promise<string> {
  const dirents = await fs.promises.readdir(fsPath, { withFileTypes: true });
  const rows: Row[] = [];
  for (const d of dirents) {
    if (rows.length >= MAX_LISTED) break;
    if (!showDotfiles && d.name.startsWith('.')) continue;
    let st: fs.Stats | null = null;
    try {
      st = await fs.promises.stat(`${fsPath}/${d.name}`);
    } catch {
      // dangling symlink or vanished entry: listed without details
    }
    rows.push({ name: d.name, dir: st ? st.isDirectory() : d.isDirectory(), size: st?.isFile() ? st.size : null, mtime: st ? st.mtime : null });
  }
  rows.sort((a, b) => (a.dir === b.dir ? (a.name < b.name ? -1 : a.name > b.name ? 1 : 0) : a.dir ? -1 : 1));

  let displayPath: string;
  try {
    displayPath = decodeURIComponent(urlPath);
  } catch {
    displayPath = urlPath;
  }
  const title = escapeHtml(`Index of ${displayPath}`);
  const lines = [
    '<!doctype html>',
    '<html><head><meta charset="utf-8">',
    `<title>${title}</title>`,
    '<style>body{font-family:system-ui,sans-serif;margin:2em}td{padding:0 1.5em 0 0}td.n{text-align:right;font-variant-numeric:tabular-nums}</style>',
    `</head><body><h1>${title}</h1><table>`,
  ];
  if (urlPath !== '/') lines.push('<tr><td><a href="../">../</a></td><td></td><td></td></tr>');
  for (const row of rows) {
    const href = encodeURIComponent(row.name) + (row.dir ? '/' : '');
    const label = escapeHtml(row.name) + (row.dir ? '/' : '');
    const size = row.size === null ? '-' : String(row.size);
    const mtime = row.mtime ? row.mtime.toISOString().replace('T', ' ').slice(0, 19) : '-';
    lines.push(`<tr><td><a href="./${href}">${label}</a></td><td class="n">${size}</td><td>${mtime}</td></tr>`);
  }
  lines.push('</table></body></html>', '');
  return lines.join('\n');
}
