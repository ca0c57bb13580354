import type { Command } from 'commander';
import type { CliContext } from '../context.js';
import { ago, checkFormat } from '../format.js';
import { diskUsage, type DiskUsage } from '../../engine/disk-usage.js';

/** docker's sizes (go-units HumanSize): powers of 1000, four significant digits. */
export function humanSize(n: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB', 'PB', 'EB'];
  let v = n;
  let i = 0;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return `${Number(v.toPrecision(4))}${units[i]}`;
}

/** docker's tables (tabwriter: cells at least 10 wide, 3 spaces of padding). */
function dockerTable(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(10, h.length + 3, ...rows.map((r) => (r[i] ?? '').length + 3)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!)))
      .join('')
      .trimEnd();
  return [line(headers), ...rows.map(line)].join('\n') + '\n';
}

const withPercent = (part: number, total: number) =>
  total > 0 ? `${humanSize(part)} (${Math.floor((part * 100) / total)}%)` : humanSize(part);

const active = (u: DiskUsage['instances'][number]) => u.rec.state === 'running' || u.rec.state === 'paused';

/** The summary rows: TYPE TOTAL ACTIVE SIZE RECLAIMABLE (docker's system df). */
function summary(du: DiskUsage) {
  const ctrSize = du.instances.reduce((n, u) => n + u.size, 0);
  const ctrFree = du.instances.filter((u) => !active(u)).reduce((n, u) => n + u.size, 0);
  return [
    {
      Type: 'Images',
      TotalCount: du.images.length,
      Active: du.images.filter((i) => i.containers > 0).length,
      Size: du.layersSize,
      Reclaimable: du.imagesReclaimable,
      percent: true,
    },
    {
      Type: 'Containers',
      TotalCount: du.instances.length,
      Active: du.instances.filter(active).length,
      Size: ctrSize,
      Reclaimable: ctrFree,
      percent: true,
    },
    {
      Type: 'Local Volumes',
      TotalCount: du.volumes.length,
      Active: du.volumes.filter((v) => v.links > 0).length,
      Size: du.volumes.reduce((n, v) => n + v.size, 0),
      Reclaimable: du.volumes.filter((v) => v.links === 0).reduce((n, v) => n + v.size, 0),
      percent: true,
    },
    {
      Type: 'Build Cache',
      TotalCount: du.buildCache.length,
      Active: 0,
      Size: du.buildCacheSize,
      Reclaimable: du.buildCacheSize,
      percent: false,
    },
    // the drivers' caches that prune removes and that are made again when needed (VM templates), when there
    // are any (docker's four rows otherwise)
    ...du.driverCaches
      .filter((c) => c.count > 0)
      .map((c) => ({
        Type: c.kind,
        TotalCount: c.count,
        Active: 0,
        Size: c.size,
        Reclaimable: c.size,
        percent: false,
      })),
  ];
}

function repoTag(names: string[]): [string, string] {
  const n = names.find((x) => !x.includes('@'));
  if (!n) return ['<none>', '<none>'];
  const c = n.lastIndexOf(':');
  return [n.slice(0, c), n.slice(c + 1)];
}

function verbose(du: DiskUsage): string {
  const images = dockerTable(
    ['REPOSITORY', 'TAG', 'IMAGE ID', 'CREATED', 'SIZE', 'SHARED SIZE', 'UNIQUE SIZE', 'CONTAINERS'],
    du.images.map((i) => [
      ...repoTag(i.names),
      i.id.slice(7, 19),
      i.created ? ago(Date.parse(i.created)) : '',
      humanSize(i.size),
      humanSize(i.sharedSize),
      humanSize(i.size - i.sharedSize),
      String(i.containers),
    ]),
  );
  const containers = dockerTable(
    ['CONTAINER ID', 'IMAGE', 'COMMAND', 'LOCAL VOLUMES', 'SIZE', 'CREATED', 'STATUS', 'NAMES'],
    du.instances.map(({ rec, size }) => {
      const cmd = JSON.stringify(rec.config.command.join(' '));
      return [
        rec.id.slice(0, 12),
        rec.config.image,
        cmd.length > 22 ? cmd.slice(0, 19) + '..."' : cmd,
        String(new Set(rec.config.mounts.flatMap((m) => (m.type === 'bind' && m.volume ? [m.volume] : []))).size),
        humanSize(size),
        ago(rec.createdAt),
        rec.state,
        rec.name,
      ];
    }),
  );
  const cache = dockerTable(
    ['CACHE ID', 'CACHE TYPE', 'SIZE', 'CREATED', 'LAST USED', 'USAGE', 'SHARED'],
    du.buildCache.map((c) => [
      c.id.slice(0, 12),
      'regular',
      humanSize(c.size),
      ago(c.created),
      '',
      '',
      String(c.shared),
    ]),
  );
  return (
    `Images space usage:\n\n${images}\nContainers space usage:\n\n${containers}\n` +
    `Local Volumes space usage:\n\n${dockerTable(
      ['VOLUME NAME', 'LINKS', 'SIZE'],
      du.volumes.map((v) => [v.volume.name, String(v.links), humanSize(v.size)]),
    )}\n` +
    `Build cache usage: ${humanSize(du.buildCacheSize)}\n\n${cache}`
  );
}

/** `hull system df [-v]`: docker's disk usage summary (or, with -v, the detail of each kind). */
export function registerDiskUsageCommand(parent: Command, ctx: CliContext): void {
  parent
    .command('df')
    .description('show the disk space images, instances and the build cache use')
    .option('-v, --verbose', 'show the detail of each image, instance and cache entry')
    .option('--format <format>', 'table or json')
    .action(async (o: { verbose?: boolean; format?: string }) => {
      const format = checkFormat(o.format);
      const du = await diskUsage(await ctx.engine());
      const rows = summary(du).map((r) => ({
        Type: r.Type,
        TotalCount: String(r.TotalCount),
        Active: String(r.Active),
        Size: humanSize(r.Size),
        Reclaimable: r.percent ? withPercent(r.Reclaimable, r.Size) : humanSize(r.Reclaimable),
      }));
      if (format === 'json') {
        // docker's --format json: one object per line, the table's cells
        process.stdout.write(rows.map((r) => JSON.stringify(r) + '\n').join(''));
        return;
      }
      if (o.verbose) {
        process.stdout.write(verbose(du));
        return;
      }
      process.stdout.write(
        dockerTable(
          ['TYPE', 'TOTAL', 'ACTIVE', 'SIZE', 'RECLAIMABLE'],
          rows.map((r) => [r.Type, r.TotalCount, r.Active, r.Size, r.Reclaimable]),
        ),
      );
    });
}
