/**
 * hull's agent protocol, host side (guest/agent.c is the other side; its header comment is the reference).
 * Frames: a 9-byte header (type byte, session u32 LE, payload length u32 LE) and the payload (≤ 64 KiB).
 * The monitor also speaks it to hull's CLI on its control socket, for exec and attach sessions.
 */

export const FRAME_HEADER = 9;
export const MAX_PAYLOAD = 65536;
/** session number that addresses every process of the guest (kill --all) */
export const ALL_SESSIONS = 0xffffffff;
/** session number of the monitor's own queries (COUNT) */
export const QUERY_SESSION = 0xfffffffe;

export const T = {
  // host → guest
  START: 'S',
  EXEC: 'X',
  STDIN: 'I',
  SIGNAL: 'K',
  RESIZE: 'W',
  POWEROFF: 'Q',
  /** after a template's restore: the instance's entropy, clock, root disk and MACs (template.ts) */
  ATTACH: 'A',
  // guest → host
  READY: 'R',
  /** template mode: booted and waiting for an instance (the host saves the VM now) */
  TEMPLATE: 'T',
  STARTED: 'P',
  STDOUT: 'O',
  STDERR: 'E',
  EXITED: 'Z',
  FAILED: 'F',
  // both ways: the number of processes in the guest
  COUNT: 'N',
} as const;

export interface Frame {
  type: string;
  session: number;
  payload: Buffer;
}

export function encodeFrame(type: string, session: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  if (payload.length > MAX_PAYLOAD)
    throw new RangeError(`frame payload of ${payload.length} bytes exceeds ${MAX_PAYLOAD}`);
  const h = Buffer.alloc(FRAME_HEADER);
  h.write(type, 0, 'latin1');
  h.writeUInt32LE(session >>> 0, 1);
  h.writeUInt32LE(payload.length, 5);
  return Buffer.concat([h, payload]);
}

/** Frames for a data stream, split at the payload limit. */
export function encodeData(type: string, session: number, data: Buffer): Buffer[] {
  if (data.length === 0) return [encodeFrame(type, session)];
  const out: Buffer[] = [];
  for (let off = 0; off < data.length; off += MAX_PAYLOAD)
    out.push(encodeFrame(type, session, data.subarray(off, off + MAX_PAYLOAD)));
  return out;
}

/** Incremental decoder: push bytes, get whole frames. */
export class FrameDecoder {
  private buf: Buffer = Buffer.alloc(0);

  push(chunk: Buffer): Frame[] {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    const out: Frame[] = [];
    while (this.buf.length >= FRAME_HEADER) {
      const len = this.buf.readUInt32LE(5);
      if (len > MAX_PAYLOAD) throw new Error(`malformed frame: payload length ${len}`);
      if (this.buf.length < FRAME_HEADER + len) break;
      out.push({
        type: String.fromCharCode(this.buf[0]!),
        session: this.buf.readUInt32LE(1),
        payload: Buffer.from(this.buf.subarray(FRAME_HEADER, FRAME_HEADER + len)),
      });
      this.buf = this.buf.subarray(FRAME_HEADER + len);
    }
    return out;
  }
}

/** What the agent needs to start a process. */
export interface ProcessSpec {
  args: string[];
  env: string[];
  cwd?: string;
  user?: string;
  hostname?: string;
  tty?: boolean;
  stdin?: boolean;
  rows?: number;
  cols?: number;
  /** main process only: network interfaces to configure before it starts */
  nics?: GuestNic[];
  /** main process only: contents of /etc/hosts and /etc/resolv.conf (bind-mounted by the agent) */
  hosts?: string;
  resolv?: string;
  /** main process only: volumes to mount before it starts, in order (parents before children) */
  mounts?: GuestMount[];
  /** main process only: --sysctl settings, KEY=VALUE, written to the guest's /proc/sys before it starts */
  sysctls?: string[];
}

/** A volume in the guest: a virtiofs share (by tag) or a tmpfs. */
export type GuestMount =
  | { type: 'virtiofs'; tag: string; target: string; readonly: boolean }
  | { type: 'tmpfs'; target: string; options: string[] };

/** One guest interface: found by its MAC, renamed, addressed; the first gateway becomes the default route. */
export interface GuestNic {
  mac: string;
  name: string;
  /** address/prefix, e.g. 10.89.1.5/24 */
  address: string;
  gateway?: string;
  mtu?: number;
}

/** A process spec as NUL-terminated key/value pairs (agent.c's parse_spec). */
export function encodeSpec(s: ProcessSpec): Buffer {
  const kv: string[] = [];
  const put = (k: string, v: string) => {
    if (v.includes('\0')) throw new RangeError(`${k} contains a NUL byte`);
    kv.push(k, v);
  };
  for (const a of s.args) put('arg', a);
  for (const e of s.env) put('env', e);
  if (s.cwd) put('cwd', s.cwd);
  if (s.user) put('user', s.user);
  if (s.hostname) put('hostname', s.hostname);
  if (s.tty) put('tty', '1');
  if (s.stdin) put('stdin', '1');
  if (s.rows) put('rows', String(s.rows));
  if (s.cols) put('cols', String(s.cols));
  // "MAC NAME ADDRESS/PREFIX GATEWAY|- MTU|0", parsed by agent.c's setup_nic
  for (const n of s.nics ?? []) put('nic', `${n.mac} ${n.name} ${n.address} ${n.gateway ?? '-'} ${n.mtu ?? 0}`);
  if (s.hosts !== undefined) put('hosts', s.hosts);
  if (s.resolv !== undefined) put('resolv', s.resolv);
  // "TYPE SOURCE ro|rw TARGET" (the target last: it may hold spaces), parsed by agent.c's setup_mount;
  // SOURCE is the virtiofs tag, or the tmpfs options (- for none)
  for (const m of s.mounts ?? []) {
    const source = m.type === 'virtiofs' ? m.tag : m.options.join(',') || '-';
    if (/\s/.test(source)) throw new RangeError(`mount options of ${m.target} contain white space`);
    put('mount', `${m.type} ${source} ${m.type === 'virtiofs' && m.readonly ? 'ro' : 'rw'} ${m.target}`);
  }
  for (const s2 of s.sysctls ?? []) put('sysctl', s2);
  const buf = Buffer.from(kv.map((x) => x + '\0').join(''));
  if (buf.length > MAX_PAYLOAD) throw new RangeError('the command, environment and settings exceed 64 KiB');
  return buf;
}

export function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n >>> 0);
  return b;
}

/** A status payload (i32 code, then an optional message). */
export function decodeStatus(p: Buffer): { code: number; message: string } {
  return { code: p.length >= 4 ? p.readInt32LE(0) : 255, message: p.subarray(4).toString('utf8') };
}

export function resizePayload(rows: number, cols: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt16LE(rows & 0xffff, 0);
  b.writeUInt16LE(cols & 0xffff, 2);
  return b;
}

/** The 'A' payload (agent.c's attach_instance): NUL-terminated key/value pairs. */
export function encodeAttach(a: {
  entropy: Buffer;
  /** the host's CLOCK_REALTIME in nanoseconds */
  timeNs: bigint;
  root: string;
  readOnly: boolean;
  macs: [string, string][];
}): Buffer {
  const kv: string[] = [
    'entropy',
    a.entropy.toString('hex'),
    'time',
    `${a.timeNs / 1_000_000_000n} ${a.timeNs % 1_000_000_000n}`,
    'root',
    a.root,
  ];
  if (a.readOnly) kv.push('ro', '1');
  for (const [from, to] of a.macs) kv.push('mac', `${from} ${to}`);
  return Buffer.from(kv.map((x) => x + '\0').join(''));
}
