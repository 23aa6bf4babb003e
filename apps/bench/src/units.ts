// Sizes and rates as the reports print them. Throughput uses decimal units (1 MB = 10^6 bytes,
// 1 GB = 10^9 bytes); sizes of bodies, files and chunks use binary units (KiB, MiB).

export const KiB = 1024;
export const MiB = 1024 * 1024;

export function formatSize(bytes: number): string {
  if (bytes >= MiB && bytes % MiB === 0) return `${bytes / MiB} MiB`;
  if (bytes >= KiB && bytes % KiB === 0) return `${bytes / KiB} KiB`;
  return `${bytes} B`;
}

/** Short file-name friendly form: 4k, 64k, 1m, 16m. */
export function sizeTag(bytes: number): string {
  if (bytes >= MiB && bytes % MiB === 0) return `${bytes / MiB}m`;
  if (bytes >= KiB && bytes % KiB === 0) return `${bytes / KiB}k`;
  return `${bytes}b`;
}

/** Three significant digits, no exponent, thousands grouped. */
export function formatNumber(value: number): string {
  if (!Number.isFinite(value)) return String(value);
  const abs = Math.abs(value);
  const digits = abs >= 100 ? 0 : abs >= 10 ? 1 : abs >= 1 ? 2 : 3;
  return value.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: 0 });
}

/** Parses "4k", "64KiB", "1m", "16MiB" or a byte count; null when it is none of those. */
export function parseSize(text: string): number | null {
  const match = /^(\d+)\s*(b|k|kib|m|mib)?$/i.exec(text.trim());
  if (!match) return null;
  const unit = (match[2] ?? 'b').toLowerCase();
  const n = Number(match[1]) * (unit.startsWith('m') ? MiB : unit.startsWith('k') ? KiB : 1);
  return Number.isSafeInteger(n) && n > 0 ? n : null;
}
