/**
 * The storage chart of docs/storage.md: plain SVG text from the JSON of bench/storage.ts (fio in a container's
 * volume against the host, btrfs snapshot times) and bench/cp.ts (hull cp against cp). No network, no package.
 *
 *   node --import tsx bench/storage.ts --json > storage.json
 *   node --import tsx bench/cp.ts --json > cp.json
 *   node --import tsx bench/storage-chart.ts storage.json cp.json docs/storage-bench.svg
 */
import { readFileSync, writeFileSync } from 'node:fs';

interface StorageJson {
  io: { name: string; unit: string; host: number; container: number; ratio: number }[];
  snaps: { size: string; hull: number; btrfs: number; cli: number }[];
}
interface CpJson {
  cp: { what: string; direction: 'in' | 'out'; host: number; hull: number; ratio: number }[];
  cliMs: number;
}

export interface Bar {
  name: string;
  value: number;
  text: string;
}
export interface Row {
  label: string;
  bars: Bar[];
}
export interface Panel {
  title: string;
  note: string;
  rows: Row[];
  /** 'row': each row's bars scaled to its own largest (figures of different units); 'shared': one scale */
  scale: 'row' | 'shared';
}

const COLORS = ['#4e79a7', '#f28e2b', '#59a14f'];
const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** The chart: panels one under another, each a horizontal bar chart with its legend. */
export function chartSvg(title: string, panels: Panel[]): string {
  const W = 760;
  const labelW = 250;
  const barW = W - labelW - 110;
  const barH = 14;
  const out: string[] = [];
  let y = 30;
  out.push(`<text x="10" y="20" font-size="15" font-weight="bold">${esc(title)}</text>`);
  for (const p of panels) {
    y += 14;
    out.push(`<text x="10" y="${y}" font-size="13" font-weight="bold">${esc(p.title)}</text>`);
    y += 14;
    out.push(`<text x="10" y="${y}" font-size="11" fill="#555">${esc(p.note)}</text>`);
    // legend
    y += 6;
    const names = p.rows[0]?.bars.map((b) => b.name) ?? [];
    let lx = labelW;
    for (const [i, n] of names.entries()) {
      out.push(`<rect x="${lx}" y="${y}" width="10" height="10" fill="${COLORS[i % COLORS.length]}"/>`);
      out.push(`<text x="${lx + 14}" y="${y + 9}" font-size="11">${esc(n)}</text>`);
      lx += 24 + n.length * 6;
    }
    y += 18;
    const shared = Math.max(...p.rows.flatMap((r) => r.bars.map((b) => b.value)), 1e-9);
    for (const r of p.rows) {
      const max = p.scale === 'row' ? Math.max(...r.bars.map((b) => b.value), 1e-9) : shared;
      const rowH = r.bars.length * (barH + 2);
      out.push(
        `<text x="${labelW - 8}" y="${y + rowH / 2 + 4}" font-size="11" text-anchor="end">${esc(r.label)}</text>`,
      );
      for (const [i, b] of r.bars.entries()) {
        const w = Math.max(1, (b.value / max) * barW);
        out.push(
          `<rect x="${labelW}" y="${y}" width="${w.toFixed(1)}" height="${barH}" fill="${COLORS[i % COLORS.length]}"/>`,
        );
        out.push(`<text x="${(labelW + w + 4).toFixed(1)}" y="${y + barH - 3}" font-size="10">${esc(b.text)}</text>`);
        y += barH + 2;
      }
      y += 8;
    }
  }
  y += 6;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${y}" viewBox="0 0 ${W} ${y}" font-family="sans-serif">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    ...out,
    '</svg>',
    '',
  ].join('\n');
}

export function storagePanels(s: StorageJson, c: CpJson): Panel[] {
  const fmt = (n: number) => (n >= 100 ? n.toFixed(0) : n.toFixed(1));
  return [
    {
      title: 'fio in a container volume vs the same btrfs pool on the host (higher is better)',
      note: 'bench/storage.ts: O_DIRECT, psync, median of runs; each row scaled to its larger figure',
      scale: 'row',
      rows: s.io.map((r) => ({
        label: `${r.name} (${r.unit})`,
        bars: [
          { name: 'host', value: r.host, text: fmt(r.host) },
          { name: 'container', value: r.container, text: `${fmt(r.container)} (${r.ratio.toFixed(2)}×)` },
        ],
      })),
    },
    {
      title: 'btrfs volume snapshot: constant in the volume size (ms, lower is better)',
      note: "bench/storage.ts: hull volume snapshot create, the CLI's own cost (snapshot ls), btrfs subvolume snapshot -r",
      scale: 'shared',
      rows: s.snaps.map((r) => ({
        label: `volume of ${r.size}`,
        bars: [
          { name: 'hull snapshot create', value: r.hull, text: `${fmt(r.hull)} ms` },
          { name: 'hull snapshot ls (CLI cost)', value: r.cli, text: `${fmt(r.cli)} ms` },
          { name: 'btrfs subvolume snapshot', value: r.btrfs, text: `${fmt(r.btrfs)} ms` },
        ],
      })),
    },
    {
      title: 'hull cp vs cp on the host (ms, lower is better)',
      note: `bench/cp.ts: a running container, same filesystem, median of runs; each row scaled to its slower side; a hull command costs ${c.cliMs.toFixed(0)} ms`,
      scale: 'row',
      rows: c.cp.map((r) => ({
        label: `${r.what}, ${r.direction}`,
        bars: [
          { name: 'cp', value: r.host, text: `${fmt(r.host)} ms` },
          { name: 'hull cp', value: r.hull, text: `${fmt(r.hull)} ms (${r.ratio.toFixed(1)}×)` },
        ],
      })),
    },
  ];
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const [storageJson, cpJson, outFile] = process.argv.slice(2);
  if (!storageJson || !cpJson || !outFile)
    throw new Error(
      'usage: storage-chart.ts STORAGE.json CP.json OUT.svg (the --json output of bench/storage.ts and bench/cp.ts)',
    );
  const s = JSON.parse(readFileSync(storageJson, 'utf8')) as StorageJson;
  const c = JSON.parse(readFileSync(cpJson, 'utf8')) as CpJson;
  writeFileSync(outFile, chartSvg('hull storage benchmarks', storagePanels(s, c)));
  console.log(`wrote ${outFile}`);
}
