/**
 * `hull commit [--change …] [-m MSG] [-a AUTHOR] INSTANCE [IMAGE]` (docker commit): a new image whose last layer is
 * what the container changed in its root, read from its overlay's writable layer (as `hull build` makes a RUN
 * step's layer: image/diff.ts, unchanged directories dropped, the runtime's own mount points left out), over the
 * layers of the image it was made from. The image config is the container's: its command, entrypoint, environment,
 * working directory, user and labels, then the --change instructions (CMD, ENTRYPOINT, ENV, LABEL, WORKDIR, USER,
 * EXPOSE, VOLUME, STOPSIGNAL, as a Containerfile writes them).
 *
 * Works on running and stopped containers (a running one is not paused: files written meanwhile may or may not
 * be in the layer). An instance without a writable layer (a VM: its root is a disk) is refused.
 */
import { existsSync } from 'node:fs';
import { InvalidArgumentError, StateError } from '../common/errors.js';
import { instancePaths } from '../common/paths.js';
import { parseContainerfile } from '../image/containerfile.js';
import { LayerView, layerTar, upperDirEntries } from '../image/diff.js';
import type { ImageRecord } from '../image/store.js';
import { MEDIA_TYPE, type OciImageConfigFile } from '../image/types.js';
import { pruneUnchangedDirs, RUNTIME_MOUNT_POINTS } from './build/builder.js';
import type { Engine } from './engine.js';
import type { InstanceRecord } from './store.js';

const CHANGES = new Set(['CMD', 'ENTRYPOINT', 'ENV', 'LABEL', 'WORKDIR', 'USER', 'EXPOSE', 'VOLUME', 'STOPSIGNAL']);

export interface CommitOptions {
  /** the new image's name (none: an untagged image) */
  ref?: string;
  changes?: string[];
  message?: string;
  author?: string;
}

export async function commitInstance(engine: Engine, rec: InstanceRecord, o: CommitOptions = {}): Promise<ImageRecord> {
  const upper = instancePaths(engine.context(rec).dir).upper;
  if (!existsSync(upper))
    throw new StateError(
      `${rec.name} has no writable layer to commit (a VM's root is a disk image): hull commit takes containers`,
    );
  const image = await engine.images.resolve(rec.imageId);
  const config = JSON.parse(JSON.stringify(image.config)) as OciImageConfigFile;
  const c = (config.config ??= {});
  // the container's own settings, as docker commit takes them
  const entrypoint = rec.config.entrypoint ?? [];
  c.Entrypoint = entrypoint.length ? entrypoint : null;
  c.Cmd = rec.config.command.slice(entrypoint.length);
  c.Env = [...rec.config.env];
  c.WorkingDir = rec.config.workdir;
  c.User = rec.config.user;
  c.Labels = { ...(c.Labels ?? {}), ...rec.config.labels };
  applyChanges(config, o.changes ?? []);
  const view = new LayerView(await engine.images.layerDirs(image));
  const entries = pruneUnchangedDirs(await upperDirEntries(upper, RUNTIME_MOUNT_POINTS), view);
  const blob = await engine.images.putBuiltLayer(layerTar(entries));
  const layers = [
    ...image.layers.map((l) => ({ digest: l.digest, size: l.size, mediaType: l.mediaType })),
    { digest: blob.digest, size: blob.size, mediaType: MEDIA_TYPE.layer },
  ];
  config.rootfs = { type: 'layers', diff_ids: [...config.rootfs.diff_ids, blob.digest] };
  config.created = new Date().toISOString();
  if (o.author) config.author = o.author;
  (config.history ??= []).push({
    created: config.created,
    created_by: `hull commit ${rec.name}`,
    ...(o.author ? { author: o.author } : {}),
    ...(o.message ? { comment: o.message } : {}),
  });
  const made = await engine.images.commitBuilt(config, layers, o.ref ? [o.ref] : []);
  engine.event(rec, 'commit', o.ref ? { imageRef: o.ref } : {});
  return made;
}

/** --change: Containerfile instructions that set image config. */
function applyChanges(config: OciImageConfigFile, changes: string[]): void {
  if (!changes.length) return;
  for (const ch of changes) {
    const kw = ch.trim().split(/\s+/)[0]?.toUpperCase() ?? '';
    if (!CHANGES.has(kw))
      throw new InvalidArgumentError(
        `--change "${ch}": ${kw || 'an empty change'} cannot be applied; use ${[...CHANGES].join(', ')}`,
      );
  }
  const plan = parseContainerfile(`FROM scratch\n${changes.join('\n')}\n`, { file: '--change' });
  const c = (config.config ??= {});
  for (const ins of plan.stages[0]?.instructions ?? []) {
    switch (ins.kind) {
      case 'CMD':
        c.Cmd = ins.argv;
        break;
      case 'ENTRYPOINT':
        c.Entrypoint = ins.argv;
        break;
      case 'ENV':
        for (const [k, v] of ins.env) c.Env = [...(c.Env ?? []).filter((e) => !e.startsWith(`${k}=`)), `${k}=${v}`];
        break;
      case 'LABEL':
        c.Labels = { ...(c.Labels ?? {}), ...Object.fromEntries(ins.labels) };
        break;
      case 'WORKDIR':
        c.WorkingDir = ins.path;
        break;
      case 'USER':
        c.User = ins.user;
        break;
      case 'EXPOSE':
        c.ExposedPorts = {
          ...(c.ExposedPorts ?? {}),
          ...Object.fromEntries(ins.ports.map((p) => [p.includes('/') ? p : `${p}/tcp`, {}])),
        };
        break;
      case 'VOLUME':
        c.Volumes = { ...(c.Volumes ?? {}), ...Object.fromEntries(ins.paths.map((p) => [p, {}])) };
        break;
      case 'STOPSIGNAL':
        c.StopSignal = ins.signal;
        break;
      default:
        break;
    }
  }
}
