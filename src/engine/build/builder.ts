/**
 * `hull build`: run a Containerfile's BuildPlan (src/image/containerfile.ts) against the image store.
 *
 * Each stage starts from an image of the store, `scratch`, or an earlier stage's result, and carries an
 * image state (OCI config + layer descriptors) from step to step. RUN runs a hull container (network
 * none) on the state's layers and turns its overlay upper directory into a layer (src/image/diff.ts);
 * COPY/ADD and WORKDIR write layer tars directly; the other instructions change the config. Every step
 * ends with a history entry, and its result is remembered in the build cache (cache.ts), keyed on the
 * parent state, the instruction's cacheKey and, for COPY/ADD, the sources' hash.
 *
 * Intermediate states are not images: their layer blobs are committed as they are made (so later steps
 * can extract them), and only the final image gets a manifest, config and names, in one index update.
 * A killed build therefore leaves blobs and at most one step container (labelled with the build's pid and
 * start time, removed by the next hull command: orphans.ts), never a half-written or half-tagged image.
 */
import {
  chmodSync,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  readSync,
  closeSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { HullError, InvalidArgumentError, NotFoundError, isHullError } from '../../common/errors.js';
import { describeNoSpace, isNoSpaceError } from '../../host/fserror.js';
import {
  parseContainerfile,
  ContainerfileError,
  loadIgnore,
  type BuildPlan,
  type CopyInstruction,
  type Instruction,
  type Stage,
} from '../../image/containerfile.js';
import { LayerView, layerTar, upperDirEntries, type LayerEntry } from '../../image/diff.js';
import { sha256 } from '../../image/layout.js';
import { extractArchive } from '../../image/unpack.js';
import { parseReference, type ImageRecord } from '../../image/store.js';
import { MEDIA_TYPE, hostArchitecture, type OciHistory, type OciImageConfigFile } from '../../image/types.js';
import { rootfsLayout } from '../../container/rootfs.js';
import type { Engine } from '../engine.js';
import type { CreateRequest } from '../config.js';
import type { InstanceRecord } from '../store.js';
import { createInstance } from '../lifecycle/create.js';
import { startInstance } from '../lifecycle/start.js';
import { removeInstance } from '../lifecycle/remove.js';
import { handleExit } from '../lifecycle/exit.js';
import { instanceLogs } from '../output.js';
import { BuildCache } from './cache.js';
import { buildStepLabels } from './orphans.js';
import type { Lease } from '../../image/lease.js';
import { trace } from '../../common/trace.js';
import {
  cleanSource,
  dirFs,
  resolveInImage,
  expandSource,
  hashEntries,
  planCopy,
  resolveChown,
  viewFs,
  type CopySource,
  type SourceFs,
} from './copy.js';
import { rootPaths } from '../../common/paths.js';

/** A build step failed (the message starts `FILE:LINE: `). */
export class BuildError extends HullError {
  override readonly code: string = 'HULL_BUILD_FAILED';
}

/** The build was interrupted (SIGINT/SIGTERM/SIGHUP during a RUN step): exit 130 as a shell would. */
export class BuildInterruptedError extends HullError {
  override readonly code: string = 'HULL_BUILD_INTERRUPTED';
  override readonly exitCode: number = 130;
}

export interface BuildOptions {
  contextDir: string;
  /** Containerfile path; default CONTEXT/Containerfile, else CONTEXT/Dockerfile */
  file?: string;
  tags: string[];
  buildArgs: Record<string, string>;
  target?: string;
  noCache: boolean;
  /** labels set on the final image (docker build --label) */
  labels?: Record<string, string>;
  /** progress lines (STEP headers, cache notes) */
  log: (line: string) => void;
  /** output of RUN steps */
  output: (text: string, stream: 'stdout' | 'stderr') => void;
}

interface LayerDesc {
  digest: string;
  diffId: string;
  size: number;
  mediaType: string;
}
/** The image as it stands after a step. */
interface State {
  config: OciImageConfigFile;
  layers: LayerDesc[];
}

/** OCI runtime config plus docker's extensions that builds set. */
type RuntimeConfig = NonNullable<OciImageConfigFile['config']> & {
  Shell?: string[];
  Healthcheck?: Record<string, unknown>;
  OnBuild?: string[];
};

/** Mount points the runtime creates in a container's root: never part of a RUN layer. */
export const RUNTIME_MOUNT_POINTS = new Set(['etc/hosts', 'etc/hostname', 'etc/resolv.conf']);

function stateId(s: State): string {
  return sha256(JSON.stringify(s));
}

function short(id: string): string {
  return id.replace(/^sha256:/, '').slice(0, 12);
}

function isArchive(path: string): boolean {
  const fd = openSync(path, 'r');
  try {
    const head = Buffer.alloc(512);
    const n = readSync(fd, head, 0, 512, 0);
    if (n >= 2 && head[0] === 0x1f && head[1] === 0x8b) return true;
    return n >= 262 && head.subarray(257, 262).toString('latin1') === 'ustar';
  } finally {
    closeSync(fd);
  }
}

export class Builder {
  private readonly cache: BuildCache;
  private readonly results: State[] = [];
  private plan!: BuildPlan;
  private file = 'Containerfile';
  private step = 0;
  private steps = 0;
  private readonly cleanups: string[] = [];
  /** a CMD was seen in the current stage */
  private cmdSet = false;

  /** what this build holds on to while it runs: base images, cache hits, new layers (safe from image prune) */
  private lease: Lease | undefined;

  constructor(
    private readonly engine: Engine,
    private readonly opts: BuildOptions,
  ) {
    this.cache = new BuildCache(engine.root);
  }

  /** Build, tag, and return the image. */
  async build(): Promise<ImageRecord> {
    this.lease = this.engine.images.lease();
    try {
      return await this.run();
    } finally {
      this.lease.release();
      this.cache.close();
      for (const p of this.cleanups) rmSync(p, { recursive: true, force: true });
    }
  }

  private async run(): Promise<ImageRecord> {
    const o = this.opts;
    const context = resolve(o.contextDir);
    if (!existsSync(context)) throw new NotFoundError(`build context ${o.contextDir} does not exist`);
    let path = o.file;
    if (path === undefined) {
      path = ['Containerfile', 'Dockerfile'].map((n) => join(context, n)).find((p) => existsSync(p));
      if (!path) throw new NotFoundError(`no Containerfile or Dockerfile in ${o.contextDir}: give one with -f`);
    }
    if (!existsSync(path)) throw new NotFoundError(`Containerfile ${path} does not exist`);
    this.file = o.file ?? basename(path);
    const text = readFileSync(path, 'utf8');
    for (const t of o.tags) {
      const r = parseReference(t);
      if (r.digest) throw new InvalidArgumentError(`invalid tag ${t}: a name takes a tag, not a digest`);
    }

    const parse = (baseConfig?: Map<string, ImageRecord>): BuildPlan => {
      try {
        return parseContainerfile(text, {
          file: this.file,
          buildArgs: o.buildArgs,
          ...(o.target !== undefined ? { target: o.target } : {}),
          ...(baseConfig
            ? {
                baseConfig: (ref: string) => {
                  const c = baseConfig.get(ref)?.config.config as RuntimeConfig | undefined;
                  return c
                    ? {
                        ...(c.Env ? { Env: c.Env } : {}),
                        ...(c.WorkingDir ? { WorkingDir: c.WorkingDir } : {}),
                        ...(c.Shell ? { Shell: c.Shell } : {}),
                        ...(c.OnBuild?.length ? { OnBuild: c.OnBuild } : {}),
                      }
                    : undefined;
                },
              }
            : {}),
        });
      } catch (e) {
        if (e instanceof ContainerfileError) throw new BuildError(e.message);
        throw e;
      }
    };
    const first = parse();
    const bases = new Map<string, ImageRecord>();
    for (const st of first.stages) {
      if (!st.used || st.base.kind !== 'image' || bases.has(st.base.ref)) continue;
      bases.set(st.base.ref, await this.resolveImage(st.base.ref));
    }
    this.plan = parse(bases);
    trace('build: planned');
    for (const w of this.plan.warnings) o.log(`WARNING: ${w}`);
    const stages = this.plan.stages.filter((s) => s.used);
    this.steps = stages.reduce((n, s) => n + 1 + s.instructions.length, 0);
    const ignored = loadIgnore(context);
    const contextFs = dirFs(context, ignored);

    for (const stage of stages) {
      this.results[stage.index] = await this.buildStage(stage, bases, contextFs);
    }
    const final = this.results[this.plan.target]!;
    trace('build: steps done');
    o.log(`COMMIT${o.tags.length ? ' ' + o.tags.join(' ') : ''}`);
    const config: OciImageConfigFile = {
      ...final.config,
      created: final.config.history?.at(-1)?.created ?? new Date().toISOString(),
    };
    if (o.labels && Object.keys(o.labels).length)
      config.config = { ...config.config, Labels: { ...config.config?.Labels, ...o.labels } };
    let image: ImageRecord;
    try {
      image = await this.engine.images.commitBuilt(config, final.layers, o.tags);
    } catch (e) {
      throw describeNoSpace(e, { path: rootPaths(this.engine.root).images, action: 'committing the built image' });
    }
    trace('build: committed');
    o.log(`--> ${short(image.id)}`);
    for (const t of o.tags) o.log(`Successfully tagged ${parseReference(t).display}`);
    return image;
  }

  private async resolveImage(ref: string): Promise<ImageRecord> {
    try {
      const image = await this.engine.images.resolve(ref);
      await this.engine.images.retain(this.lease!, image.id, image.layers);
      return image;
    } catch (e) {
      if (e instanceof NotFoundError) throw new NotFoundError(`image ${ref} not found locally: hull pull ${ref} first`);
      throw e;
    }
  }

  private header(text: string): void {
    this.step++;
    trace(`build: step ${this.step}`);
    this.opts.log(`STEP ${this.step}/${this.steps}: ${text}`);
  }

  private fail(line: number, message: string): never {
    throw new BuildError(`${this.file}:${line}: ${message}`);
  }

  private async buildStage(stage: Stage, bases: Map<string, ImageRecord>, contextFs: SourceFs): Promise<State> {
    let state: State;
    const b = stage.base;
    const fromText = `FROM ${b.kind === 'scratch' ? 'scratch' : b.kind === 'image' ? b.ref : (this.plan.stages[b.index]!.name ?? String(b.index))}${stage.name ? ` AS ${stage.name}` : ''}`;
    this.header(fromText);
    this.cmdSet = false;
    if (b.kind === 'scratch') {
      state = {
        config: {
          architecture: hostArchitecture(),
          os: 'linux',
          config: {},
          rootfs: { type: 'layers', diff_ids: [] },
          history: [],
        },
        layers: [],
      };
    } else if (b.kind === 'image') {
      const rec = bases.get(b.ref)!;
      state = {
        config: JSON.parse(JSON.stringify(rec.config)) as OciImageConfigFile,
        layers: rec.layers.map((l) => ({ digest: l.digest, diffId: l.diffId, size: l.size, mediaType: l.mediaType })),
      };
      state.config.config ??= {};
      state.config.history ??= [];
      // the base's ONBUILD triggers run in this stage (the parser put them first) and are not inherited
      delete (state.config.config as RuntimeConfig).OnBuild;
    } else {
      const r = this.results[b.index];
      if (!r) this.fail(stage.line, `stage ${b.index} was not built`);
      state = JSON.parse(JSON.stringify(r)) as State;
    }
    this.opts.log(`--> ${short(stateId(state))}`);
    for (const ins of stage.instructions) {
      this.header(ins.original);
      state = await this.instruction(ins, state, contextFs);
      this.opts.log(`--> ${short(stateId(state))}`);
    }
    return state;
  }

  /** A step through the cache: a hit whose layers are all still stored, else `produce` (and remember it). */
  private async cached(parent: State, ins: Instruction, extra: string, produce: () => Promise<State>): Promise<State> {
    const key = sha256([stateId(parent), ins.kind, ins.cacheKey, extra].join('\0'));
    if (!this.opts.noCache) {
      const hit = this.cache.get(key);
      if (hit) {
        const s = JSON.parse(hit) as State;
        if (
          await this.engine.images.retain(this.lease!, null, s.layers).then(
            () => true,
            () => false,
          )
        ) {
          this.opts.log(`--> Using cache ${short(stateId(s))}`);
          return s;
        }
      }
    }
    const next = await produce();
    this.cache.put(key, JSON.stringify(next));
    return next;
  }

  private history(ins: Instruction, emptyLayer: boolean): OciHistory {
    return {
      created: new Date().toISOString(),
      created_by: ins.original,
      comment: 'hull build',
      ...(emptyLayer ? { empty_layer: true } : {}),
    };
  }

  /** The state with `fn` applied to a copy of its runtime config, plus an empty-layer history entry. */
  private meta(state: State, ins: Instruction, fn: (c: RuntimeConfig) => void): State {
    const next = JSON.parse(JSON.stringify(state)) as State;
    const c = (next.config.config ??= {}) as RuntimeConfig;
    fn(c);
    (next.config.history ??= []).push(this.history(ins, true));
    return next;
  }

  private imageRecord(state: State): ImageRecord {
    const id = stateId(state);
    return { id, manifestDigest: id, names: [], config: state.config, created: '', size: 0, layers: state.layers };
  }

  private async view(state: State): Promise<LayerView> {
    return new LayerView(await this.engine.images.layerDirs(this.imageRecord(state)));
  }

  /** Append a layer made of `entries` (or an empty-layer history entry when there are none). */
  private async withLayer(state: State, ins: Instruction, entries: LayerEntry[]): Promise<State> {
    const next = JSON.parse(JSON.stringify(state)) as State;
    if (entries.length === 0) {
      (next.config.history ??= []).push(this.history(ins, true));
      return next;
    }
    let blob: { digest: string; size: number };
    try {
      blob = await this.engine.images.putBuiltLayer(layerTar(entries), this.lease);
    } catch (e) {
      // a tar of the entries: a 512-byte header each, contents rounded up to 512, two zero blocks at the end
      const needed = entries.reduce((n, x) => n + 512 + Math.ceil((x.size ?? 0) / 512) * 512, 1024);
      const d = describeNoSpace(e, {
        path: rootPaths(this.engine.root).images,
        action: 'writing the layer of this step',
        needed,
      });
      if (isNoSpaceError(d)) this.fail(ins.line, `${ins.original} failed: ${d.message}`);
      throw e;
    }
    next.layers.push({ digest: blob.digest, diffId: blob.digest, size: blob.size, mediaType: MEDIA_TYPE.layer });
    next.config.rootfs = { type: 'layers', diff_ids: [...next.config.rootfs.diff_ids, blob.digest] };
    (next.config.history ??= []).push(this.history(ins, false));
    return next;
  }

  private async instruction(ins: Instruction, state: State, contextFs: SourceFs): Promise<State> {
    switch (ins.kind) {
      case 'RUN':
        return this.cached(state, ins, '', () => this.runStep(ins, state));
      case 'COPY':
      case 'ADD':
        return this.copyStep(ins, state, contextFs);
      case 'WORKDIR':
        return this.cached(state, ins, '', async () => {
          // docker creates a missing WORKDIR (root's, 0755) in a layer of its own
          const view = await this.view(state);
          const rel = resolveInImage(view, ins.path);
          if (rel === '' || view.lookup(rel))
            return this.meta(state, ins, (c) => {
              c.WorkingDir = ins.path;
            });
          const entries = [
            ...planParents(rel, view),
            { path: rel, type: 'dir', mode: 0o755, uid: 0, gid: 0, mtime: new Date() } satisfies LayerEntry,
          ];
          const next = JSON.parse(JSON.stringify(state)) as State;
          (next.config.config ??= {}).WorkingDir = ins.path;
          return this.withLayer(next, ins, entries);
        });
      case 'ENV':
        return this.cached(state, ins, '', async () =>
          this.meta(state, ins, (c) => {
            const env = new Map((c.Env ?? []).map((e) => [e.split('=')[0]!, e] as const));
            for (const [k, v] of ins.env) env.set(k, `${k}=${v}`);
            c.Env = [...env.values()];
          }),
        );
      case 'USER':
        return this.cached(state, ins, '', async () =>
          this.meta(state, ins, (c) => {
            c.User = ins.user;
          }),
        );
      case 'EXPOSE':
        return this.cached(state, ins, '', async () =>
          this.meta(state, ins, (c) => {
            c.ExposedPorts ??= {};
            for (const p of ins.ports) c.ExposedPorts[p.includes('/') ? p : `${p}/tcp`] = {};
          }),
        );
      case 'LABEL':
        return this.cached(state, ins, '', async () =>
          this.meta(state, ins, (c) => {
            c.Labels ??= {};
            for (const [k, v] of ins.labels) c.Labels[k] = v;
          }),
        );
      case 'VOLUME':
        return this.cached(state, ins, '', async () =>
          this.meta(state, ins, (c) => {
            c.Volumes ??= {};
            for (const p of ins.paths) c.Volumes[p] = {};
          }),
        );
      case 'STOPSIGNAL':
        return this.cached(state, ins, '', async () =>
          this.meta(state, ins, (c) => {
            c.StopSignal = ins.signal;
          }),
        );
      case 'HEALTHCHECK':
        return this.cached(state, ins, '', async () =>
          this.meta(state, ins, (c) => {
            const h = ins.healthcheck;
            c.Healthcheck = {
              Test: h.test,
              ...(h.interval !== undefined ? { Interval: h.interval } : {}),
              ...(h.timeout !== undefined ? { Timeout: h.timeout } : {}),
              ...(h.startPeriod !== undefined ? { StartPeriod: h.startPeriod } : {}),
              ...(h.startInterval !== undefined ? { StartInterval: h.startInterval } : {}),
              ...(h.retries !== undefined ? { Retries: h.retries } : {}),
            };
          }),
        );
      case 'SHELL':
        return this.cached(state, ins, '', async () =>
          this.meta(state, ins, (c) => {
            c.Shell = ins.shell;
          }),
        );
      case 'CMD':
        this.cmdSet = true;
        return this.cached(state, ins, '', async () =>
          this.meta(state, ins, (c) => {
            c.Cmd = ins.argv;
          }),
        );
      case 'ENTRYPOINT': {
        // docker: ENTRYPOINT resets a Cmd inherited from the base image (not one set earlier in the stage)
        const reset = !this.cmdSet;
        return this.cached(state, ins, reset ? 'reset-cmd' : '', async () =>
          this.meta(state, ins, (c) => {
            c.Entrypoint = ins.argv;
            if (reset) c.Cmd = null;
          }),
        );
      }
      case 'ARG':
        return this.cached(state, ins, '', async () => this.meta(state, ins, () => undefined));
      case 'ONBUILD':
        return this.cached(state, ins, '', async () =>
          this.meta(state, ins, (c) => {
            (c.OnBuild ??= []).push(ins.trigger);
          }),
        );
    }
  }

  private async runStep(ins: Extract<Instruction, { kind: 'RUN' }>, state: State): Promise<State> {
    const engine = this.engine;
    const env = state.config.config?.Env ?? [];
    const has = new Set(env.map((e) => e.split('=')[0]));
    const req: CreateRequest = {
      kind: 'container',
      image: `build step ${this.step}`,
      command: ins.argv,
      entrypoint: [],
      env: Object.entries(ins.args)
        .filter(([k]) => !has.has(k))
        .map(([k, v]) => `${k}=${v}`),
      network: 'none',
      labels: buildStepLabels(),
      autoRemove: false,
    };
    let rec: InstanceRecord;
    try {
      rec = await createInstance(engine, req, { watcherPid: process.pid, image: this.imageRecord(state) });
    } catch (e) {
      const d = describeNoSpace(e, {
        path: rootPaths(engine.root).containers,
        action: 'making the container of this step',
      });
      if (isNoSpaceError(d)) this.fail(ins.line, `${ins.original} failed: ${d.message}`);
      throw e;
    }
    try {
      const stop = new AbortController();
      const output = instanceLogs(
        engine,
        rec,
        { follow: true },
        (l) => this.opts.output(l.text, l.stream === 'stderr' ? 'stderr' : 'stdout'),
        stop.signal,
      );
      const driver = engine.driver(rec.kind);
      // an interrupt kills the step's container; the build then fails and removes it
      let interrupted: NodeJS.Signals | undefined;
      const kill = () => {
        void driver.kill(engine.context(rec), 'SIGKILL', true).catch(() => undefined);
      };
      const onSignal = (sig: NodeJS.Signals) => {
        interrupted = sig;
        kill();
      };
      const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
      for (const sig of signals) process.on(sig, onSignal);
      let code: number;
      try {
        rec = await startInstance(engine, rec);
        if (interrupted) kill();
        const info = await driver.waitExit(engine.context(rec));
        await handleExit(engine, rec, info, { applyRestart: false });
        await Promise.race([output, new Promise((r) => setTimeout(r, 2000))]);
        code = info.exitCode;
      } catch (e) {
        if (interrupted)
          throw new BuildInterruptedError(`build interrupted (${interrupted}) at ${this.file}:${ins.line}`);
        const d = describeNoSpace(e, { path: engine.instanceDir(rec.id), action: 'running this step' });
        this.fail(ins.line, `${ins.original} failed: ${(d as Error).message}`);
      } finally {
        stop.abort();
        for (const sig of signals) process.off(sig, onSignal);
      }
      if (interrupted)
        throw new BuildInterruptedError(`build interrupted (${interrupted}) at ${this.file}:${ins.line}`);
      if (code !== 0) this.fail(ins.line, `${ins.original} failed with exit code ${code}`);
      const upper = rootfsLayout(engine.instanceDir(rec.id)).upper;
      const view = await this.view(state);
      const entries = pruneUnchangedDirs(await upperDirEntries(upper, RUNTIME_MOUNT_POINTS), view);
      return await this.withLayer(state, ins, entries);
    } finally {
      engine.undoing(); // removing the step's container frees space: a full disk must not keep it
      const cur = engine.store.get(rec.id);
      if (cur) await removeInstance(engine, cur, { force: true }).catch(() => undefined);
    }
  }

  /**
   * A source that is a symlink, seen through to its target under its own name, as docker does. The
   * target is resolved inside the source's root (the context, or the --from stage's tree), so a link
   * to a host path names a path inside the root, which is usually not there.
   */
  private followLink(base: SourceFs, rel: string, ins: CopyInstruction, src: string): CopySource {
    let target: string;
    try {
      target = base.resolve(rel);
    } catch (e) {
      if (isHullError(e)) this.fail(ins.line, `${ins.kind} failed: ${e.message}`);
      throw e;
    }
    if (!base.stat(target)) {
      this.fail(
        ins.line,
        `${ins.kind} failed: ${ins.from ? `${src}: no such file in the source stage or image` : `file not found in build context or excluded by .containerignore/.dockerignore: ${src}`} (${rel} is a symbolic link to /${target}, which symbolic links resolve inside ${ins.from ? 'the source' : 'the build context'})`,
      );
    }
    const map = (r: string): string =>
      r === rel
        ? target
        : r.startsWith(rel + '/')
          ? target
            ? target + r.slice(rel.length)
            : r.slice(rel.length + 1)
          : r;
    return {
      fs: {
        keepOwners: base.keepOwners,
        stat: (r) => base.stat(map(r)),
        readdir: (r) => base.readdir(map(r)),
        resolve: (r) => base.resolve(map(r)),
      },
      rel,
    };
  }

  private async copyStep(ins: CopyInstruction, state: State, contextFs: SourceFs): Promise<State> {
    const what = ins.kind;
    let fs = contextFs;
    if (ins.from) {
      if ('stage' in ins.from) {
        const r = this.results[ins.from.stage];
        if (!r) this.fail(ins.line, `${what} --from: stage ${ins.from.stage} was not built`);
        fs = viewFs(await this.view(r));
      } else {
        const rec = await this.resolveImage(ins.from.image);
        fs = viewFs(new LayerView(await this.engine.images.layerDirs(rec)));
      }
    }
    const view = await this.view(state);
    const sources: CopySource[] = [];
    let archive = false;
    for (const src of ins.sources) {
      const doc = src.startsWith('<<') ? ins.heredocs?.[src.slice(2)] : undefined;
      if (doc !== undefined) {
        // a here-document: a file of that name in a scratch directory (mode 0644, as BuildKit makes it)
        const dir = this.engine.images.tempPath('.heredoc');
        mkdirSync(dir, { recursive: true, mode: 0o755 });
        this.cleanups.push(dir);
        writeFileSync(join(dir, src.slice(2)), doc, { mode: 0o644 });
        sources.push({ fs: dirFs(dir, () => false, true), rel: src.slice(2) });
        continue;
      }
      if (/^[a-z][a-z0-9+.-]*:\/\//i.test(src) || src.startsWith('git@')) {
        if (what === 'ADD') this.fail(ins.line, `ADD from URLs is not supported; use RUN wget ... (${src})`);
        this.fail(ins.line, `COPY cannot copy from a URL (${src})`);
      }
      const clean = cleanSource(src);
      if (!ins.from && (clean === '..' || clean.startsWith('../')))
        this.fail(ins.line, `${what} failed: ${src} is outside the build context`);
      let matches: string[];
      try {
        matches = expandSource(fs, src);
      } catch (e) {
        if (isHullError(e)) this.fail(ins.line, `${what} failed: ${e.message}`);
        throw e;
      }
      if (matches.length === 0) {
        this.fail(
          ins.line,
          `${what} failed: ${ins.from ? `${src}: no such file in the source stage or image` : `file not found in build context or excluded by .containerignore/.dockerignore: ${src}`}`,
        );
      }
      for (const m of matches) {
        // docker follows a symlink named as a source (resolved inside the source's root)
        const source = fs.stat(m)!.stat.isSymbolicLink() ? this.followLink(fs, m, ins, src) : { fs, rel: m };
        const st = source.fs.stat(source.rel)!;
        if (what === 'ADD' && !ins.from && st.stat.isFile() && isArchive(st.abs)) {
          // hull's layer extractor: nothing lands outside `dir`, links are kept as written (node-tar would
          // rewrite absolute ones); entries that would leave it are skipped and named
          const work = this.engine.images.tempPath('.add');
          const dir = join(work, 'root');
          mkdirSync(dir, { recursive: true, mode: 0o755 });
          chmodSync(dir, 0o755);
          this.cleanups.push(work);
          try {
            const r = await extractArchive(st.abs, dir, work);
            if (r.skipped > 0)
              this.opts.log(`WARNING: ADD ${src}: skipped ${r.skipped} entries: ${r.warnings.join('; ')}`);
          } catch (e) {
            this.fail(ins.line, `ADD failed: cannot extract ${src}: ${(e as Error).message}`);
          }
          sources.push({ fs: dirFs(dir, () => false, true), rel: '' });
          archive = true;
        } else {
          sources.push(source);
        }
      }
    }
    let owner: { uid: number; gid: number } | undefined;
    if (ins.chown) {
      try {
        owner = resolveChown(ins.chown, view);
      } catch (e) {
        this.fail(ins.line, `${what} failed: ${(e as Error).message}`);
      }
    }
    let entries: LayerEntry[];
    try {
      entries = planCopy(
        {
          destPath: ins.destPath,
          destIsDir: ins.destIsDir || archive,
          sources,
          ...(owner ? { owner } : {}),
          ...(ins.chmod !== undefined ? { chmod: ins.chmod } : {}),
        },
        view,
        new Date(),
      );
    } catch (e) {
      if (isHullError(e)) this.fail(ins.line, `${what} failed: ${e.message}`);
      throw e;
    }
    const hash = await hashEntries(entries);
    return this.cached(state, ins, hash, () => this.withLayer(state, ins, entries));
  }
}

/** Directory entries for the missing-or-present parents of `rel` (metadata carried over when present). */
function planParents(rel: string, view: LayerView): LayerEntry[] {
  const out: LayerEntry[] = [];
  const parts = rel.split('/');
  for (let i = 1; i < parts.length; i++) {
    const p = parts.slice(0, i).join('/');
    const e = view.lookup(p);
    if (e && !e.stat.isDirectory()) throw new InvalidArgumentError(`cannot create /${rel}: /${p} is not a directory`);
    out.push(
      e
        ? { path: p, type: 'dir', mode: e.stat.mode & 0o7777, uid: e.stat.uid, gid: e.stat.gid, mtime: e.stat.mtime }
        : { path: p, type: 'dir', mode: 0o755, uid: 0, gid: 0, mtime: new Date() },
    );
  }
  return out;
}

/**
 * Drop directory entries of an upper dir that only exist because something below them changed
 * nothing (copied up for a mount point, a touched time): a directory stays when it is new, its
 * mode or owner changed, it is opaque, or an entry below it stays. `RUN true` gives an empty list.
 */
export function pruneUnchangedDirs(entries: LayerEntry[], view: LayerView): LayerEntry[] {
  const keep = new Set<string>();
  const keptBelow = new Set<string>();
  const opaque = new Set(entries.filter((e) => e.type === 'opaque').map((e) => e.path));
  // children come after their directory: walk backwards so a directory sees its kept children
  for (let i = entries.length - 1; i >= 0; i--) {
    const e = entries[i]!;
    if (e.type === 'opaque') continue;
    let needed = true;
    if (e.type === 'dir' && !opaque.has(e.path) && !keptBelow.has(e.path)) {
      const lower = view.lookup(e.path);
      needed = !(
        lower?.stat.isDirectory() &&
        (lower.stat.mode & 0o7777) === e.mode &&
        lower.stat.uid === e.uid &&
        lower.stat.gid === e.gid
      );
    }
    if (!needed) continue;
    keep.add(e.path);
    for (let d = e.path.lastIndexOf('/'); d > 0; d = e.path.lastIndexOf('/', d - 1)) keptBelow.add(e.path.slice(0, d));
  }
  return entries.filter((e) => keep.has(e.path));
}
