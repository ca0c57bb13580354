/**
 * The Containerfile (Dockerfile) front end of `hull build`: text in, a typed BuildPlan out.
 * It follows docker's BuildKit frontend: parser directives, continuations, variable substitution
 * in the instructions docker substitutes, ARG scoping (global ARGs for FROM lines, redeclared to be
 * seen in a stage), stages by name and number, `--target` cutting. It executes nothing: the builder
 * in src/engine runs the plan. Every error is a ContainerfileError whose message starts `FILE:LINE: `.
 */
import { posix } from 'node:path';
import { constants as osConstants } from 'node:os';
import { InvalidArgumentError } from '../common/errors.js';
import { parseReference } from './reference.js';
import {
  ContainerfileError,
  WordError,
  closest,
  expandWord,
  lex,
  splitRaw,
  type Lookup,
  type RawInstruction,
} from './containerfile-lex.js';

export { ContainerfileError } from './containerfile-lex.js';
export { loadIgnore, compileIgnore, parseIgnoreFile } from './containerfile-ignore.js';

/** A command as written: shell form (run through the stage's SHELL) or JSON exec form. */
export type CommandForm = { form: 'shell'; text: string } | { form: 'exec'; args: string[] };

interface Base {
  /** 1-based line where the instruction starts */
  line: number;
  /** 1-based line where it ends (continuations) */
  endLine: number;
  /** the instruction as written, continuations joined */
  original: string;
  /**
   * A stable string for the layer cache: the instruction's normalized form after substitution,
   * plus the build args it depends on. COPY/ADD source contents are the builder's to hash.
   */
  cacheKey: string;
}

export interface RunInstruction extends Base {
  kind: 'RUN';
  command: CommandForm;
  /** argv to execute: exec form as is, shell form wrapped in the stage's SHELL */
  argv: string[];
  /** ARG values in scope (plus proxy build args), to put in the step's environment */
  args: Record<string, string>;
}
export interface CmdInstruction extends Base {
  kind: 'CMD' | 'ENTRYPOINT';
  command: CommandForm;
  argv: string[];
}
export interface CopyInstruction extends Base {
  kind: 'COPY' | 'ADD';
  /** sources as written (after substitution), relative to the context or the --from root */
  sources: string[];
  /** destination as written (after substitution) */
  dest: string;
  /** destination made absolute against WORKDIR; ends with '/' when it is a directory */
  destPath: string;
  /** true when dest must be a directory: it ends with '/' (or is '.'), or there are several sources */
  destIsDir: boolean;
  from?: { stage: number } | { image: string };
  chown?: string;
  /** octal permission bits from --chmod */
  chmod?: number;
  link?: boolean;
  /** here-document sources (`COPY <<EOF /dest`): name → content; `sources` has them as `<<NAME` */
  heredocs?: Record<string, string>;
  /** ADD only */
  checksum?: string;
  keepGitDir?: boolean;
}
export interface EnvInstruction extends Base {
  kind: 'ENV';
  env: Array<[string, string]>;
}
export interface ArgInstruction extends Base {
  kind: 'ARG';
  args: Array<{ name: string; default?: string; value?: string }>;
}
export interface WorkdirInstruction extends Base {
  kind: 'WORKDIR';
  path: string;
}
export interface UserInstruction extends Base {
  kind: 'USER';
  user: string;
}
export interface ExposeInstruction extends Base {
  kind: 'EXPOSE';
  ports: string[];
}
export interface LabelInstruction extends Base {
  kind: 'LABEL';
  labels: Array<[string, string]>;
}
export interface VolumeInstruction extends Base {
  kind: 'VOLUME';
  paths: string[];
}
export interface StopSignalInstruction extends Base {
  kind: 'STOPSIGNAL';
  signal: string;
}
export interface Healthcheck {
  /** ['NONE'], ['CMD', ...argv] or ['CMD-SHELL', text], as in docker's image config */
  test: string[];
  /** nanoseconds; absent means the default */
  interval?: number;
  timeout?: number;
  startPeriod?: number;
  startInterval?: number;
  retries?: number;
}
export interface HealthcheckInstruction extends Base {
  kind: 'HEALTHCHECK';
  healthcheck: Healthcheck;
}
export interface ShellInstruction extends Base {
  kind: 'SHELL';
  shell: string[];
}
export interface OnbuildInstruction extends Base {
  kind: 'ONBUILD';
  trigger: string;
}

export type Instruction =
  | RunInstruction
  | CmdInstruction
  | CopyInstruction
  | EnvInstruction
  | ArgInstruction
  | WorkdirInstruction
  | UserInstruction
  | ExposeInstruction
  | LabelInstruction
  | VolumeInstruction
  | StopSignalInstruction
  | HealthcheckInstruction
  | ShellInstruction
  | OnbuildInstruction;

export type StageBase = { kind: 'scratch' } | { kind: 'image'; ref: string } | { kind: 'stage'; index: number };

export interface Stage {
  index: number;
  /** lowercased `AS` name */
  name?: string;
  base: StageBase;
  platform?: string;
  /** line of the FROM instruction */
  line: number;
  /** the FROM line's cacheKey */
  cacheKey: string;
  instructions: Instruction[];
  /** stages this one needs: its base stage and COPY --from stages */
  dependsOn: number[];
  /** false when the target does not need this stage: the builder may skip it */
  used: boolean;
  /** false when the base is an image whose config was not given (opts.baseConfig): substitution saw no image ENV */
  baseConfigResolved: boolean;
}

export interface BuildPlan {
  file: string;
  stages: Stage[];
  /** index of the stage to build (the last one, or --target) */
  target: number;
  /** ARGs declared before the first FROM, with their values */
  globalArgs: Array<{ name: string; value?: string }>;
  escape: string;
  warnings: string[];
}

/** What the builder knows of a base image's config (an OCI config's Env, WorkingDir, and docker's Shell). */
export interface BaseConfig {
  Env?: string[];
  WorkingDir?: string;
  Shell?: string[];
  OnBuild?: string[];
}

export interface ParseOptions {
  /** the name used in messages: `Containerfile`, `path/to/Dockerfile` */
  file: string;
  buildArgs?: Record<string, string>;
  /** build only up to this stage name */
  target?: string;
  /** target platform `os/arch[/variant]`; defaults to the host's */
  platform?: string;
  /** build platform; defaults to the host's */
  buildPlatform?: string;
  /**
   * The config of a base image, for substituting its ENV (e.g. `ENV PATH=/x:$PATH`) and relative WORKDIRs.
   * The builder parses once, pulls the FROM images, then parses again with this.
   */
  baseConfig?: (ref: string, platform?: string) => BaseConfig | undefined;
}

export const DEFAULT_SHELL: readonly string[] = ['/bin/sh', '-c'];
export const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
/** Build args docker passes to RUN without an ARG declaration, and leaves out of the cache key. */
export const PROXY_ARGS: readonly string[] = [
  'HTTP_PROXY',
  'http_proxy',
  'HTTPS_PROXY',
  'https_proxy',
  'FTP_PROXY',
  'ftp_proxy',
  'NO_PROXY',
  'no_proxy',
  'ALL_PROXY',
  'all_proxy',
];
export const INSTRUCTIONS: readonly string[] = [
  'FROM',
  'RUN',
  'CMD',
  'ENTRYPOINT',
  'COPY',
  'ADD',
  'ENV',
  'ARG',
  'WORKDIR',
  'USER',
  'EXPOSE',
  'LABEL',
  'VOLUME',
  'STOPSIGNAL',
  'HEALTHCHECK',
  'SHELL',
  'ONBUILD',
  'MAINTAINER',
];

const ARCH: Record<string, string> = {
  x64: 'amd64',
  arm64: 'arm64',
  arm: 'arm/v7',
  ia32: '386',
  ppc64: 'ppc64le',
  s390x: 's390x',
  riscv64: 'riscv64',
  loong64: 'loong64',
  mips64el: 'mips64le',
};
/** The host as an OCI platform string. */
export function hostPlatform(): string {
  return `linux/${ARCH[process.arch] ?? process.arch}`;
}

function platformArgs(prefix: 'TARGET' | 'BUILD', platform: string): Record<string, string> {
  const [os = '', arch = '', variant = ''] = platform.split('/');
  return {
    [`${prefix}PLATFORM`]: platform,
    [`${prefix}OS`]: os,
    [`${prefix}ARCH`]: arch,
    [`${prefix}VARIANT`]: variant,
  };
}

const STAGE_NAME = /^[a-z][a-z0-9._-]*$/;
const ARG_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

interface StageState {
  env: Map<string, string>;
  args: Map<string, string | undefined>;
  workdir: string;
  shell: string[];
}

/** Parse a Containerfile into a build plan. Throws ContainerfileError. */
export function parseContainerfile(text: string, opts: ParseOptions): BuildPlan {
  return new Parser(text, opts).parse();
}

class Parser {
  private readonly file: string;
  private readonly buildArgs: Record<string, string>;
  private readonly auto: Record<string, string>;
  private escape = '\\';
  private readonly warnings: string[] = [];
  private readonly stages: Stage[] = [];
  private readonly states: StageState[] = [];
  private readonly meta = new Map<string, string | undefined>();
  private readonly globalArgs: Array<{ name: string; value?: string }> = [];
  private readonly consumed = new Set<string>();
  private line = 0;
  private refs = new Set<string>();

  constructor(
    private readonly text: string,
    private readonly opts: ParseOptions,
  ) {
    this.file = opts.file;
    this.buildArgs = opts.buildArgs ?? {};
    this.auto = {
      ...platformArgs('TARGET', opts.platform ?? hostPlatform()),
      ...platformArgs('BUILD', opts.buildPlatform ?? hostPlatform()),
    };
  }

  private fail(detail: string, line = this.line): never {
    throw new ContainerfileError(this.file, line, detail);
  }

  /** Run fn, turning WordError and InvalidArgumentError into a ContainerfileError at the current line. */
  private guard<T>(fn: () => T, context = ''): T {
    try {
      return fn();
    } catch (e) {
      if (e instanceof ContainerfileError) throw e;
      if (e instanceof WordError || e instanceof InvalidArgumentError) this.fail(context + e.message);
      throw e;
    }
  }

  parse(): BuildPlan {
    const lexed = lex(this.text, this.file);
    this.escape = lexed.escape;
    this.warnings.push(...lexed.warnings);
    if (lexed.instructions.length === 0) this.fail('the file has no instructions; start it with FROM IMAGE', 1);
    for (const raw of lexed.instructions) this.instruction(raw);
    if (this.stages.length === 0)
      this.fail(
        'the file has no FROM instruction; add FROM IMAGE (or FROM scratch) before the other instructions',
        lexed.instructions.at(-1)!.line,
      );
    return this.finish();
  }

  private finish(): BuildPlan {
    let target = this.stages.length - 1;
    if (this.opts.target !== undefined) {
      const t = this.opts.target.toLowerCase();
      const found = this.stages.find((s) => s.name === t);
      if (!found) {
        const names = this.stages.flatMap((s) => (s.name ? [s.name] : []));
        const hint = closest(t, names);
        this.fail(
          `target stage "${this.opts.target}" not found${hint ? ` (did you mean "${hint}"?)` : ''}; ${names.length ? `the stages are: ${names.join(', ')}` : 'no stage has a name: name one with FROM IMAGE AS NAME'}`,
          1,
        );
      }
      target = found.index;
    }
    const stages = this.stages.slice(0, target + 1);
    const mark = (i: number) => {
      const s = stages[i]!;
      if (s.used) return;
      s.used = true;
      for (const d of s.dependsOn) mark(d);
    };
    mark(target);
    const unused = Object.keys(this.buildArgs).filter(
      (k) => !this.consumed.has(k) && !PROXY_ARGS.includes(k) && !(k in this.auto),
    );
    if (unused.length)
      this.warnings.push(`${this.file}: build args not consumed by any ARG: ${unused.sort().join(', ')}`);
    return {
      file: this.file,
      stages,
      target,
      globalArgs: this.globalArgs,
      escape: this.escape,
      warnings: this.warnings,
    };
  }

  // ---- words and substitution ----

  private words(src: string): string[] {
    return this.guard(() => splitRaw(src, this.escape));
  }

  private expand(word: string, lookup: Lookup): string {
    return this.guard(() => expandWord(word, lookup, this.escape));
  }

  /** Lookup in the current stage: ENV wins over ARG. Records the names it is asked for. */
  private stageLookup(st: StageState): Lookup {
    return (name) => {
      this.refs.add(name);
      if (st.env.has(name)) return st.env.get(name);
      return st.args.get(name);
    };
  }

  private metaLookup(): Lookup {
    return (name) => {
      this.refs.add(name);
      if (this.meta.has(name)) return this.meta.get(name);
      return this.auto[name];
    };
  }

  /** The ARG values a substitution used (names resolved from ARGs, not shadowed by ENV). */
  private usedArgs(st: StageState | undefined): Record<string, string> {
    const out: Record<string, string> = {};
    for (const n of [...this.refs].sort()) {
      if (st) {
        if (!st.env.has(n) && st.args.get(n) !== undefined) out[n] = st.args.get(n)!;
      } else {
        const v = this.meta.has(n) ? this.meta.get(n) : this.auto[n];
        if (v !== undefined) out[n] = v;
      }
    }
    this.refs = new Set();
    return out;
  }

  private key(kind: string, fields: unknown, args: Record<string, string>): string {
    return `${kind} ${JSON.stringify(fields)}${Object.keys(args).length ? ` args=${JSON.stringify(args)}` : ''}`;
  }

  // ---- flags ----

  /** Take leading `--name[=value]` words off `rest`. */
  private flags(
    kw: string,
    rest: string,
    allowed: readonly string[],
    booleans: readonly string[] = [],
  ): { flags: Map<string, string>; rest: string } {
    const flags = new Map<string, string>();
    let r = rest;
    for (;;) {
      const m = /^--([A-Za-z][A-Za-z0-9-]*)(?:=((?:"[^"]*"|'[^']*'|\S)*))?(?:\s+|$)/.exec(r);
      if (!m) break;
      if (r.startsWith('-- ')) break;
      const name = m[1]!.toLowerCase();
      if (!allowed.includes(name) && !booleans.includes(name)) {
        const hint = closest(name, [...allowed, ...booleans]);
        this.fail(
          `${kw} does not take --${name}${hint ? ` (did you mean --${hint}?)` : ''}; ${allowed.length + booleans.length ? `its options are ${[...allowed, ...booleans].map((f) => '--' + f).join(', ')}` : 'it takes no options'}`,
        );
      }
      if (flags.has(name)) this.fail(`${kw} --${name} is given twice; keep one`);
      if (booleans.includes(name)) {
        const v = m[2] ?? 'true';
        if (v !== 'true' && v !== 'false') this.fail(`${kw} --${name}=${v}: the value must be true or false`);
        flags.set(name, v);
      } else {
        if (m[2] === undefined) this.fail(`${kw} --${name} needs a value: --${name}=VALUE`);
        flags.set(name, m[2]);
      }
      r = r.slice(m[0].length);
    }
    return { flags, rest: r.trim() };
  }

  // ---- dispatch ----

  private instruction(raw: RawInstruction): void {
    this.line = raw.line;
    this.refs = new Set();
    const kw = raw.keyword.toUpperCase();
    if (!INSTRUCTIONS.includes(kw)) {
      const hint = closest(kw, INSTRUCTIONS);
      this.fail(
        `unknown instruction "${raw.keyword}"${hint ? ` (did you mean ${hint}?)` : ''}; see the Containerfile reference for the instructions`,
      );
    }
    if (kw === 'FROM') return this.from(raw);
    if (this.stages.length === 0) {
      if (kw === 'ARG') return this.globalArg(raw);
      this.fail(`${kw} comes before the first FROM; only ARG may come before FROM: start the file with FROM IMAGE`);
    }
    const stage = this.stages.at(-1)!;
    const st = this.states.at(-1)!;
    const base = { line: raw.line, endLine: raw.endLine, original: raw.original };
    const push = (
      i: Omit<Instruction, 'cacheKey'> & { kind: string },
      fields: unknown,
      args: Record<string, string>,
    ) => {
      stage.instructions.push({ ...i, cacheKey: this.key(i.kind, fields, args) } as Instruction);
    };
    switch (kw) {
      case 'RUN':
        return this.run(raw, st, base, push);
      case 'CMD':
      case 'ENTRYPOINT': {
        if (raw.rest === '')
          this.fail(
            `${kw} needs a command: ${kw} ["prog", "arg"]${kw === 'CMD' ? ' (to clear it, write CMD [])' : ''}`,
          );
        const command = this.command(kw, raw.rest);
        const argv = command.form === 'exec' ? command.args : [...st.shell, command.text];
        return push({ kind: kw, ...base, command, argv } as CmdInstruction, argv, {});
      }
      case 'COPY':
      case 'ADD':
        return this.copy(kw, raw, stage, st, base, push);
      case 'ENV': {
        const pairs = this.nameVals(kw, raw.rest, st, false);
        const used = this.usedArgs(st);
        for (const [k, v] of pairs) st.env.set(k, v);
        return push({ kind: 'ENV', ...base, env: pairs } as EnvInstruction, pairs, used);
      }
      case 'LABEL':
      case 'MAINTAINER': {
        let labels: Array<[string, string]>;
        if (kw === 'MAINTAINER') {
          if (raw.rest === '') this.fail('MAINTAINER needs a name; better, write LABEL maintainer="NAME <EMAIL>"');
          labels = [['maintainer', this.expand(raw.rest, this.stageLookup(st))]];
          this.warnings.push(
            `${this.file}:${raw.line}: MAINTAINER is deprecated; write LABEL maintainer="..." instead`,
          );
        } else {
          labels = this.nameVals(kw, raw.rest, st, true);
        }
        return push({ kind: 'LABEL', ...base, labels } as LabelInstruction, labels, this.usedArgs(st));
      }
      case 'ARG':
        return this.stageArg(raw, st, base, push);
      case 'WORKDIR': {
        const p = this.expand(raw.rest, this.stageLookup(st));
        if (p === '') this.fail('WORKDIR needs a path: WORKDIR /app');
        st.workdir = posix.resolve(st.workdir, p);
        return push(
          { kind: 'WORKDIR', ...base, path: st.workdir } as WorkdirInstruction,
          st.workdir,
          this.usedArgs(st),
        );
      }
      case 'USER': {
        const user = this.expand(raw.rest, this.stageLookup(st));
        if (user === '' || /\s/.test(user)) this.fail('USER needs one user: USER NAME[:GROUP] or USER UID[:GID]');
        return push({ kind: 'USER', ...base, user } as UserInstruction, user, this.usedArgs(st));
      }
      case 'EXPOSE': {
        const lookup = this.stageLookup(st);
        const specs = this.words(raw.rest)
          .map((w) => this.expand(w, lookup))
          .filter((w) => w !== '');
        if (specs.length === 0)
          this.fail('EXPOSE needs a port: EXPOSE 80, EXPOSE 80/tcp, EXPOSE 53/udp or EXPOSE 8000-8010');
        const ports = specs.flatMap((s) => this.ports(s));
        return push({ kind: 'EXPOSE', ...base, ports } as ExposeInstruction, ports, this.usedArgs(st));
      }
      case 'VOLUME': {
        const lookup = this.stageLookup(st);
        const json = this.json(raw.rest);
        const paths = (json ?? this.words(raw.rest)).map((w) => this.expand(w, lookup));
        if (paths.length === 0) this.fail('VOLUME needs a path: VOLUME /data or VOLUME ["/data"]');
        if (paths.some((p) => p.trim() === ''))
          this.fail('VOLUME has an empty path; give each volume a path, e.g. VOLUME /data');
        return push({ kind: 'VOLUME', ...base, paths } as VolumeInstruction, paths, this.usedArgs(st));
      }
      case 'STOPSIGNAL': {
        const signal = this.expand(raw.rest, this.stageLookup(st));
        if (!validSignal(signal))
          this.fail(`STOPSIGNAL "${signal}" is not a signal; write a name like SIGTERM or a number from 1 to 64`);
        return push({ kind: 'STOPSIGNAL', ...base, signal } as StopSignalInstruction, signal, this.usedArgs(st));
      }
      case 'HEALTHCHECK': {
        const healthcheck = this.healthcheck(raw);
        return push({ kind: 'HEALTHCHECK', ...base, healthcheck } as HealthcheckInstruction, healthcheck, {});
      }
      case 'SHELL': {
        const shell = this.json(raw.rest);
        if (!shell || shell.length === 0) this.fail('SHELL must be a non-empty JSON array: SHELL ["/bin/bash", "-c"]');
        st.shell = shell;
        return push({ kind: 'SHELL', ...base, shell } as ShellInstruction, shell, {});
      }
      case 'ONBUILD': {
        const inner = /^(\S+)/.exec(raw.rest)?.[1]?.toUpperCase();
        if (!inner) this.fail('ONBUILD needs an instruction: ONBUILD RUN make');
        if (inner === 'ONBUILD') this.fail('ONBUILD ONBUILD is not allowed; give one instruction after ONBUILD');
        if (inner === 'FROM' || inner === 'MAINTAINER')
          this.fail(`ONBUILD ${inner} is not allowed; ONBUILD takes instructions that run in the child build`);
        if (!INSTRUCTIONS.includes(inner)) {
          const hint = closest(inner, INSTRUCTIONS);
          this.fail(`ONBUILD: unknown instruction "${inner}"${hint ? ` (did you mean ${hint}?)` : ''}`);
        }
        return push({ kind: 'ONBUILD', ...base, trigger: raw.rest } as OnbuildInstruction, raw.rest, {});
      }
    }
  }

  private from(raw: RawInstruction): void {
    const { flags, rest } = this.flags('FROM', raw.rest, ['platform']);
    const words = this.words(rest);
    if (words.length !== 1 && !(words.length === 3 && words[1]!.toLowerCase() === 'as')) {
      this.fail('FROM takes an image and an optional stage name: FROM IMAGE[:TAG] [AS NAME]');
    }
    const lookup = this.metaLookup();
    const image = this.expand(words[0]!, lookup);
    if (image === '')
      this.fail(
        `FROM ${words[0]} names no image: the variable is empty; pass --build-arg or give the global ARG a default`,
      );
    const platform = flags.has('platform') ? this.expand(flags.get('platform')!, lookup) : undefined;
    if (platform !== undefined && !/^[a-z0-9_]+\/[a-z0-9_]+(\/[a-z0-9_]+)?$/.test(platform)) {
      this.fail(`FROM --platform=${platform} is not a platform; write OS/ARCH[/VARIANT], e.g. linux/amd64`);
    }
    let name: string | undefined;
    if (words.length === 3) {
      name = words[2]!.toLowerCase();
      if (!STAGE_NAME.test(name))
        this.fail(`invalid stage name "${words[2]}": start with a letter and use letters, digits, - _ and .`);
      const dup = this.stages.find((s) => s.name === name);
      if (dup) this.fail(`the stage name "${name}" is already used on line ${dup.line}; give each stage its own name`);
    }
    const args = this.usedArgs(undefined);
    let base: StageBase;
    let state: StageState;
    let resolved = true;
    const parent = this.stages.find((s) => s.name === image.toLowerCase());
    if (image.toLowerCase() === 'scratch') {
      base = { kind: 'scratch' };
      state = { env: new Map([['PATH', DEFAULT_PATH]]), args: new Map(), workdir: '/', shell: [...DEFAULT_SHELL] };
    } else if (parent) {
      base = { kind: 'stage', index: parent.index };
      const p = this.states[parent.index]!;
      state = { env: new Map(p.env), args: new Map(), workdir: p.workdir, shell: [...p.shell] };
    } else {
      this.guard(() => parseReference(image), 'FROM: ');
      base = { kind: 'image', ref: image };
      const cfg = this.opts.baseConfig?.(image, platform);
      resolved = cfg !== undefined;
      const env = new Map<string, string>();
      for (const e of cfg?.Env ?? []) {
        const eq = e.indexOf('=');
        if (eq > 0) env.set(e.slice(0, eq), e.slice(eq + 1));
      }
      state = {
        env,
        args: new Map(),
        workdir: cfg?.WorkingDir || '/',
        shell: cfg?.Shell?.length ? [...cfg.Shell] : [...DEFAULT_SHELL],
      };
    }
    const index = this.stages.length;
    this.stages.push({
      index,
      ...(name ? { name } : {}),
      base,
      ...(platform ? { platform } : {}),
      line: raw.line,
      cacheKey: this.key('FROM', { base, platform: platform ?? null }, args),
      instructions: [],
      dependsOn: base.kind === 'stage' ? [base.index] : [],
      used: false,
      baseConfigResolved: resolved,
    });
    this.states.push(state);
    // The base image's ONBUILD triggers run first in this stage, as if written right after FROM (docker's
    // order); errors in them point at the FROM line. The triggers are not passed on to this image.
    if (base.kind === 'image') {
      const fromLine = raw.line;
      for (const trigger of this.opts.baseConfig?.(image, platform)?.OnBuild ?? []) {
        let lexed;
        try {
          lexed = lex(trigger, this.file);
        } catch (e) {
          this.fail(`ONBUILD trigger of ${image} ("${trigger}"): ${(e as Error).message}`, fromLine);
        }
        for (const t of lexed.instructions) {
          const kw = t.keyword.toUpperCase();
          if (kw === 'FROM' || kw === 'ONBUILD' || kw === 'MAINTAINER')
            this.fail(`image ${image} has an ONBUILD ${kw} trigger, which is not allowed`, fromLine);
          try {
            this.instruction({ ...t, line: fromLine, endLine: fromLine });
          } catch (e) {
            if (e instanceof ContainerfileError)
              this.fail(`in the ONBUILD trigger "${trigger}" of ${image}: ${e.detail}`, fromLine);
            throw e;
          }
        }
      }
    }
  }

  private parseArgWords(rest: string): Array<{ name: string; raw?: string }> {
    const words = this.words(rest);
    if (words.length === 0) this.fail('ARG needs a name: ARG NAME or ARG NAME=DEFAULT');
    return words.map((w) => {
      const eq = w.indexOf('=');
      const name = eq < 0 ? w : w.slice(0, eq);
      if (!ARG_NAME.test(name))
        this.fail(`invalid ARG name "${name}": use letters, digits and _, not starting with a digit`);
      return eq < 0 ? { name } : { name, raw: w.slice(eq + 1) };
    });
  }

  private globalArg(raw: RawInstruction): void {
    for (const { name, raw: def } of this.parseArgWords(raw.rest)) {
      const dflt = def !== undefined ? this.expand(def, this.metaLookup()) : undefined;
      const value = name in this.buildArgs ? this.buildArgs[name] : (dflt ?? this.auto[name]);
      this.consumed.add(name);
      this.meta.set(name, value);
      this.globalArgs.push({ name, ...(value !== undefined ? { value } : {}) });
    }
    this.refs = new Set();
  }

  private stageArg(raw: RawInstruction, st: StageState, base: object, push: PushFn): void {
    const out: ArgInstruction['args'] = [];
    const lookup = this.stageLookup(st);
    for (const { name, raw: def } of this.parseArgWords(raw.rest)) {
      const dflt = def !== undefined ? this.expand(def, lookup) : undefined;
      let value: string | undefined;
      if (name in this.buildArgs) value = this.buildArgs[name];
      else if (dflt !== undefined) value = dflt;
      else if (this.meta.has(name)) value = this.meta.get(name);
      else value = this.auto[name];
      this.consumed.add(name);
      st.args.set(name, value);
      out.push({ name, ...(dflt !== undefined ? { default: dflt } : {}), ...(value !== undefined ? { value } : {}) });
    }
    const used = this.usedArgs(st);
    push(
      { kind: 'ARG', ...base, args: out } as ArgInstruction,
      out.map((a) => [a.name, a.value ?? null]),
      used,
    );
  }

  private run(raw: RawInstruction, st: StageState, base: object, push: PushFn): void {
    const m = /^--(mount|network|security)\b/.exec(raw.rest);
    if (m) {
      this.fail(
        `RUN --${m[1]} is not supported yet; remove it (for --mount, COPY the files in or use a cache directory inside the image)`,
      );
    }
    const { rest } = this.flags('RUN', raw.rest, []);
    if (rest === '') this.fail('RUN needs a command: RUN make, or RUN ["make", "all"]');
    let command = this.command('RUN', rest);
    let argv = command.form === 'exec' ? command.args : [...st.shell, command.text];
    if (raw.heredocs?.length) {
      // BuildKit's here-documents. `RUN <<EOF` alone runs the text as the script (a #! line picks its
      // interpreter); otherwise the shell gets the command with its here-documents and reads them itself.
      if (command.form === 'exec')
        this.fail('RUN in exec form (JSON) cannot take a here-document; use the shell form: RUN <<EOF');
      const docs = raw.heredocs;
      const alone = docs.length === 1 && rest.trim() === docs[0]!.marker;
      let text: string;
      if (alone && docs[0]!.body.startsWith('#!')) {
        const d = docs[0]!;
        const end = d.body.includes('\nHULL_HEREDOC_END\n') ? 'HULL_HEREDOC_END_' + d.name : 'HULL_HEREDOC_END';
        text = `f=$(mktemp) && cat > "$f" <<'${end}'\n${d.body}${end}\nchmod +x "$f" && "$f"; s=$?; rm -f "$f"; exit $s`;
      } else if (alone) {
        text = docs[0]!.body;
      } else {
        text = `${rest}\n${docs.map((d) => `${d.body}${d.name}\n`).join('')}`;
      }
      command = { form: 'shell', text };
      argv = [...st.shell, text];
    }
    const args: Record<string, string> = {};
    const keyArgs: Record<string, string> = {};
    for (const [k, v] of st.args) {
      if (v === undefined || st.env.has(k)) continue;
      args[k] = v;
      if (!PROXY_ARGS.includes(k)) keyArgs[k] = v;
    }
    for (const p of PROXY_ARGS) if (p in this.buildArgs && !(p in args)) args[p] = this.buildArgs[p]!;
    push({ kind: 'RUN', ...base, command, argv, args } as RunInstruction, argv, keyArgs);
  }

  private copy(
    kw: 'COPY' | 'ADD',
    raw: RawInstruction,
    stage: Stage,
    st: StageState,
    base: object,
    push: PushFn,
  ): void {
    const allowed = kw === 'COPY' ? ['from', 'chown', 'chmod'] : ['chown', 'chmod', 'checksum', 'from'];
    const booleans = kw === 'COPY' ? ['link'] : ['link', 'keep-git-dir'];
    const { flags, rest } = this.flags(kw, raw.rest, allowed, booleans);
    if (kw === 'ADD' && flags.has('from')) this.fail('ADD does not take --from; use COPY --from=STAGE SRC DEST');
    const lookup = this.stageLookup(st);
    const json = this.json(rest);
    if (json && raw.heredocs?.length)
      this.fail(`${kw} in JSON form cannot take a here-document; write ${kw} <<EOF /dest`);
    // BuildKit's here-documents as sources: `COPY <<EOF /etc/app.conf` makes a file of the text ($VARs
    // substituted unless the delimiter is quoted); it is named after the delimiter when DEST is a directory
    const heredocs: Record<string, string> = {};
    const rawWords = json ?? this.words(rest);
    const words = rawWords.map((w) => {
      const doc = raw.heredocs?.find((d) => d.marker === w);
      if (!doc) return this.expand(w, lookup);
      heredocs[doc.name] = doc.quoted
        ? doc.body
        : doc.body.replace(/\$\{[^}]*\}|\$[A-Za-z_][A-Za-z0-9_]*/g, (v) => this.expand(v, lookup));
      return `<<${doc.name}`;
    });
    if (kw === 'ADD' && Object.keys(heredocs).length)
      this.fail('ADD with a here-document is not supported; use COPY <<EOF DEST');
    if (words.length < 2) this.fail(`${kw} needs at least one source and a destination: ${kw} SRC... DEST`);
    const dest = words.at(-1)!;
    const sources = words.slice(0, -1);
    if (dest === '') this.fail(`${kw} has an empty destination; give a path such as /app/`);
    if (sources.some((s) => s === '')) this.fail(`${kw} has an empty source; check the variables in the source paths`);
    const dirLike = dest.endsWith('/') || dest === '.' || dest.endsWith('/.');
    if (sources.length > 1 && !dirLike) {
      this.fail(
        `${kw} with more than one source needs a directory destination ending in "/": write ${kw} ${sources.join(' ')} ${dest}/`,
      );
    }
    if (kw === 'COPY') {
      const url = sources.find((s) => /^[a-z][a-z0-9+.-]*:\/\//i.test(s));
      if (url) this.fail(`COPY cannot fetch "${url}"; use ADD for URLs`);
    }
    const destIsDir = dirLike || sources.length > 1;
    let destPath = posix.resolve(st.workdir, dest);
    if (destIsDir && !destPath.endsWith('/')) destPath += '/';
    const out: CopyInstruction = {
      kind: kw,
      ...(base as Base),
      cacheKey: '',
      sources,
      dest,
      destPath,
      destIsDir,
      ...(Object.keys(heredocs).length ? { heredocs } : {}),
    };
    if (flags.has('from')) {
      const from = this.expand(flags.get('from')!, lookup);
      out.from = this.copyFrom(from, stage);
      if ('stage' in out.from && !stage.dependsOn.includes(out.from.stage)) stage.dependsOn.push(out.from.stage);
    }
    if (flags.has('chown')) {
      const chown = this.expand(flags.get('chown')!, lookup);
      if (!/^[^:\s]+(:[^:\s]+)?$/.test(chown))
        this.fail(`${kw} --chown=${chown} is not USER[:GROUP]; write e.g. --chown=1000:1000 or --chown=app:app`);
      out.chown = chown;
    }
    if (flags.has('chmod')) {
      const chmod = this.expand(flags.get('chmod')!, lookup);
      if (!/^[0-7]{3,4}$/.test(chmod))
        this.fail(`${kw} --chmod=${chmod} is not an octal mode; write e.g. --chmod=644 or --chmod=0755`);
      out.chmod = parseInt(chmod, 8);
    }
    if (flags.get('link') === 'true') out.link = true;
    if (flags.has('checksum')) {
      const checksum = this.expand(flags.get('checksum')!, lookup);
      if (!/^sha(256|384|512):[a-f0-9]+$/.test(checksum))
        this.fail(`ADD --checksum=${checksum} is not a digest; write --checksum=sha256:HEX`);
      out.checksum = checksum;
    }
    if (flags.get('keep-git-dir') === 'true') out.keepGitDir = true;
    const { kind: _k, line: _l, endLine: _e, original: _o, cacheKey: _c, ...fields } = out;
    push(out, fields, this.usedArgs(st));
  }

  private copyFrom(from: string, stage: Stage): { stage: number } | { image: string } {
    if (from === '') this.fail('COPY --from is empty; name a stage, a stage number or an image');
    const names = this.stages.flatMap((s) => (s.name ? [s.name] : []));
    if (/^\d+$/.test(from)) {
      const n = Number(from);
      if (n === stage.index) this.fail(`COPY --from=${n} names this stage itself; copy from an earlier stage`);
      if (n > stage.index)
        this.fail(
          `COPY --from=${n} refers to a stage that is not defined before this one; stages so far are 0 to ${stage.index - 1}`,
        );
      return { stage: n };
    }
    const lower = from.toLowerCase();
    const named = this.stages.find((s) => s.name === lower);
    if (named) {
      if (named.index === stage.index)
        this.fail(`COPY --from=${from} names this stage itself; copy from an earlier stage`);
      return { stage: named.index };
    }
    const later = this.laterStageNames().includes(lower);
    if (later)
      this.fail(
        `COPY --from=${from} refers to a stage defined later in the file; move stage "${lower}" above this one`,
      );
    const hint = /^[a-z0-9_.-]+$/.test(lower) ? closest(lower, names) : undefined;
    if (hint)
      this.fail(
        `COPY --from=${from}: no stage is named "${from}" (did you mean "${hint}"?); to copy from an image of that name, write its full reference, e.g. docker.io/library/${from}`,
      );
    this.guard(() => parseReference(from), 'COPY --from: ');
    return { image: from };
  }

  private laterNames: string[] | undefined;
  private laterStageNames(): string[] {
    if (!this.laterNames) {
      this.laterNames = [];
      try {
        for (const r of lex(this.text, this.file).instructions) {
          if (r.keyword.toUpperCase() !== 'FROM') continue;
          const m = /\s[aA][sS]\s+(\S+)\s*$/.exec(r.rest);
          if (m) this.laterNames.push(m[1]!.toLowerCase());
        }
      } catch {
        /* already lexed once */
      }
    }
    return this.laterNames;
  }

  /** ENV and LABEL pairs: `NAME=VALUE ...`, or the legacy `NAME VALUE`. All values see the scope before the instruction. */
  private nameVals(kw: string, rest: string, st: StageState, label: boolean): Array<[string, string]> {
    const lookup = this.stageLookup(st);
    const words = this.words(rest);
    if (words.length === 0)
      this.fail(`${kw} needs NAME=VALUE: ${kw} ${label ? 'version="1.0"' : 'PATH=/app/bin:$PATH'}`);
    if (!words[0]!.includes('=')) {
      if (words.length < 2) this.fail(`${kw} ${words[0]} has no value; write ${kw} ${words[0]}=VALUE`);
      const name = this.expand(words[0]!, lookup);
      const valueRaw = rest.replace(/^\S+\s+/, '');
      this.warnings.push(
        `${this.file}:${this.line}: the legacy form "${kw} NAME VALUE" is deprecated; write ${kw} ${name}=VALUE`,
      );
      return [[name, this.expand(valueRaw, lookup)]];
    }
    return words.map((w) => {
      const eq = w.indexOf('=');
      if (eq < 0) this.fail(`${kw}: "${w}" is not NAME=VALUE; quote values with spaces: ${kw} NAME="A B"`);
      const name = this.expand(w.slice(0, eq), lookup);
      if (name === '') this.fail(`${kw}: "${w}" has an empty name; write NAME=VALUE`);
      return [name, this.expand(w.slice(eq + 1), lookup)] as [string, string];
    });
  }

  /** A JSON array of strings, or undefined when the text is not one. */
  private json(rest: string): string[] | undefined {
    if (!rest.startsWith('[')) return undefined;
    try {
      const v: unknown = JSON.parse(rest);
      if (Array.isArray(v) && v.every((x) => typeof x === 'string')) return v as string[];
    } catch {
      /* not JSON */
    }
    return undefined;
  }

  private command(kw: string, rest: string): CommandForm {
    const json = this.json(rest);
    if (json) return { form: 'exec', args: json };
    if (rest.startsWith('[')) {
      this.warnings.push(
        `${this.file}:${this.line}: ${kw} starts with "[" but is not a JSON array of strings (use double quotes), so it runs as a shell command`,
      );
    }
    return { form: 'shell', text: rest };
  }

  private ports(spec: string): string[] {
    const m = /^(\d+)(?:-(\d+))?(?:\/([A-Za-z]+))?$/.exec(spec);
    if (!m) {
      this.fail(
        `EXPOSE ${spec} is not a port; write PORT[/PROTO] or START-END[/PROTO], e.g. 80, 53/udp, 8000-8010${spec.includes(':') ? ' (EXPOSE does not take host addresses or mappings; publish with hull run -p)' : ''}`,
      );
    }
    const start = Number(m[1]);
    const end = m[2] !== undefined ? Number(m[2]) : start;
    const proto = (m[3] ?? 'tcp').toLowerCase();
    if (!['tcp', 'udp', 'sctp'].includes(proto))
      this.fail(`EXPOSE ${spec}: unknown protocol "${m[3]}"; use tcp, udp or sctp`);
    if (start < 1 || start > 65535 || end < 1 || end > 65535) this.fail(`EXPOSE ${spec}: ports run from 1 to 65535`);
    if (end < start) this.fail(`EXPOSE ${spec}: the range ends before it starts; write LOW-HIGH`);
    const out: string[] = [];
    for (let p = start; p <= end; p++) out.push(`${p}/${proto}`);
    return out;
  }

  private healthcheck(raw: RawInstruction): Healthcheck {
    const { flags, rest } = this.flags('HEALTHCHECK', raw.rest, [
      'interval',
      'timeout',
      'start-period',
      'start-interval',
      'retries',
    ]);
    const first = /^(\S+)\s*([\s\S]*)$/.exec(rest);
    const word = first?.[1]?.toUpperCase();
    if (word === 'NONE') {
      if (flags.size) this.fail('HEALTHCHECK NONE takes no options; remove them');
      if (first![2]) this.fail('HEALTHCHECK NONE takes nothing after NONE');
      return { test: ['NONE'] };
    }
    if (word !== 'CMD')
      this.fail('HEALTHCHECK needs CMD or NONE: HEALTHCHECK --interval=30s CMD curl -f http://localhost/');
    const cmdText = first![2]!;
    if (cmdText === '') this.fail('HEALTHCHECK CMD needs a command: HEALTHCHECK CMD curl -f http://localhost/');
    const command = this.command('HEALTHCHECK', cmdText);
    const hc: Healthcheck = { test: command.form === 'exec' ? ['CMD', ...command.args] : ['CMD-SHELL', command.text] };
    const dur = (flag: string, field: 'interval' | 'timeout' | 'startPeriod' | 'startInterval') => {
      const v = flags.get(flag);
      if (v === undefined) return;
      const ns = parseDuration(v);
      if (ns === undefined) this.fail(`HEALTHCHECK --${flag}=${v} is not a duration; write e.g. 30s, 1m30s or 500ms`);
      if (ns !== 0 && ns < 1_000_000)
        this.fail(`HEALTHCHECK --${flag}=${v} is shorter than 1ms; use 0 for the default or at least 1ms`);
      hc[field] = ns;
    };
    dur('interval', 'interval');
    dur('timeout', 'timeout');
    dur('start-period', 'startPeriod');
    dur('start-interval', 'startInterval');
    const r = flags.get('retries');
    if (r !== undefined) {
      if (!/^\d+$/.test(r)) this.fail(`HEALTHCHECK --retries=${r} is not a whole number; write e.g. --retries=3`);
      hc.retries = Number(r);
    }
    return hc;
  }
}

type PushFn = (
  i: Omit<Instruction, 'cacheKey'> & { kind: string },
  fields: unknown,
  args: Record<string, string>,
) => void;

const UNIT_NS: Record<string, number> = { ns: 1, us: 1e3, µs: 1e3, μs: 1e3, ms: 1e6, s: 1e9, m: 60e9, h: 3600e9 };

/** A Go duration (`1h30m`, `500ms`, `0`) in nanoseconds, or undefined when malformed. */
export function parseDuration(v: string): number | undefined {
  if (v === '0') return 0;
  const re = /(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)/gy;
  let total = 0;
  let pos = 0;
  let m: RegExpExecArray | null;
  while ((m = re.exec(v))) {
    total += Number(m[1]) * UNIT_NS[m[2]!]!;
    pos = re.lastIndex;
  }
  if (pos === 0 || pos !== v.length) return undefined;
  return Math.round(total);
}

function validSignal(s: string): boolean {
  if (/^\d+$/.test(s)) return Number(s) >= 1 && Number(s) <= 64;
  const name = s.toUpperCase().startsWith('SIG') ? s.toUpperCase() : `SIG${s.toUpperCase()}`;
  if (/^SIGRTM(IN|AX)([+-]\d+)?$/.test(name)) return true;
  return name in osConstants.signals;
}
