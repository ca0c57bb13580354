/**
 * A small RFB (VNC) client for the display tests (RFC 6143): protocol version 3.8, security type None,
 * ClientInit (shared), SetPixelFormat (32 bits, true colour), SetEncodings (Raw, with DesktopSize and
 * ExtendedDesktopSize as pseudo-encodings), FramebufferUpdateRequest and the Raw encoding, KeyEvent, and
 * SetDesktopSize. Speaks over any duplex stream: a unix socket, a TCP socket, or a WebSocket stream.
 *
 *   const rfb = await RfbClient.connect(await connectUnix(path));
 *   const fb = await rfb.framebuffer();          // width*height*4 bytes, BGRX
 *   assert.ok(nonBlank(fb));
 */
import type { Duplex } from 'node:stream';

const RAW = 0;
const DESKTOP_SIZE = -223;
const EXTENDED_DESKTOP_SIZE = -308;

/** X11 keysyms (RFB's key codes). */
export const KEYSYM = { ControlL: 0xffe3, AltL: 0xffe9, Delete: 0xffff, Return: 0xff0d } as const;

export class RfbClient {
  private chunks: Buffer[] = [];
  private buffered = 0;
  private waiter: (() => void) | null = null;
  private ended: Error | null = null;
  width = 0;
  height = 0;
  name = '';
  /** the server's security types */
  securityTypes: number[] = [];
  /** the server's protocol version line */
  version = '';
  /** status of the last ExtendedDesktopSize answer (0: done, 1: prohibited, 2: out of resources, 3: invalid), -1 none */
  lastResizeStatus = -1;
  private fb: Buffer = Buffer.alloc(0);
  /** pixels received in Raw rectangles (framebuffer() waits for a whole screen's worth) */
  private received = 0;

  private constructor(private readonly sock: Duplex) {
    sock.on('data', (b: Buffer) => {
      this.chunks.push(b);
      this.buffered += b.length;
      this.wake();
    });
    const end = (e?: Error) => {
      this.ended ??= e ?? new Error('the VNC server closed the connection');
      this.wake();
    };
    sock.on('end', () => end());
    sock.on('close', () => end());
    sock.on('error', (e: Error) => end(e));
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = null;
    w?.();
  }

  /** Exactly n bytes from the server. */
  private async read(n: number): Promise<Buffer> {
    while (this.buffered < n) {
      if (this.ended) throw this.ended;
      await new Promise<void>((r) => (this.waiter = r));
    }
    const all = Buffer.concat(this.chunks);
    this.chunks = [all.subarray(n)];
    this.buffered -= n;
    return all.subarray(0, n);
  }

  private write(b: Buffer): void {
    this.sock.write(b);
  }

  /** The handshake up to ServerInit; then 32-bit pixels and the encodings this client reads. */
  static async connect(sock: Duplex): Promise<RfbClient> {
    const c = new RfbClient(sock);
    c.version = (await c.read(12)).toString('latin1');
    if (!/^RFB \d{3}\.\d{3}\n$/.test(c.version)) throw new Error(`not an RFB server: ${JSON.stringify(c.version)}`);
    c.write(Buffer.from('RFB 003.008\n', 'latin1'));
    const n = (await c.read(1))[0]!;
    if (n === 0) {
      const len = (await c.read(4)).readUInt32BE(0);
      throw new Error(`the VNC server refused the connection: ${(await c.read(len)).toString('utf8')}`);
    }
    c.securityTypes = [...(await c.read(n))];
    if (!c.securityTypes.includes(1))
      throw new Error(`the VNC server offers no security type None: ${c.securityTypes.join(', ')}`);
    c.write(Buffer.from([1]));
    const result = (await c.read(4)).readUInt32BE(0);
    if (result !== 0) throw new Error(`security handshake failed (${result})`);
    c.write(Buffer.from([1])); // ClientInit: shared
    const init = await c.read(24);
    c.width = init.readUInt16BE(0);
    c.height = init.readUInt16BE(2);
    c.name = (await c.read(init.readUInt32BE(20))).toString('utf8');
    // SetPixelFormat: 32 bpp, depth 24, little endian, true colour, 8 bits per channel at 16/8/0
    const pf = Buffer.alloc(20);
    pf[0] = 0;
    pf[4] = 32;
    pf[5] = 24;
    pf[6] = 0;
    pf[7] = 1;
    pf.writeUInt16BE(255, 8);
    pf.writeUInt16BE(255, 10);
    pf.writeUInt16BE(255, 12);
    pf[14] = 16;
    pf[15] = 8;
    pf[16] = 0;
    c.write(pf);
    const encodings = [RAW, DESKTOP_SIZE, EXTENDED_DESKTOP_SIZE];
    const se = Buffer.alloc(4 + 4 * encodings.length);
    se[0] = 2;
    se.writeUInt16BE(encodings.length, 2);
    for (const [i, e] of encodings.entries()) se.writeInt32BE(e, 4 + 4 * i);
    c.write(se);
    c.fb = Buffer.alloc(c.width * c.height * 4);
    return c;
  }

  private requestUpdate(incremental: boolean): void {
    const m = Buffer.alloc(10);
    m[0] = 3;
    m[1] = incremental ? 1 : 0;
    m.writeUInt16BE(0, 2);
    m.writeUInt16BE(0, 4);
    m.writeUInt16BE(this.width, 6);
    m.writeUInt16BE(this.height, 8);
    this.write(m);
  }

  /** Read one server message; true when it was a FramebufferUpdate. */
  private async readMessage(): Promise<boolean> {
    const type = (await this.read(1))[0]!;
    switch (type) {
      case 0: {
        const h = await this.read(3);
        const rects = h.readUInt16BE(1);
        for (let i = 0; i < rects; i++) {
          const r = await this.read(12);
          const x = r.readUInt16BE(0);
          const y = r.readUInt16BE(2);
          const w = r.readUInt16BE(4);
          const hh = r.readUInt16BE(6);
          const enc = r.readInt32BE(8);
          if (enc === RAW) {
            const px = await this.read(w * hh * 4);
            this.received += w * hh;
            for (let row = 0; row < hh; row++) {
              const at = ((y + row) * this.width + x) * 4;
              if (at + w * 4 <= this.fb.length) px.copy(this.fb, at, row * w * 4, (row + 1) * w * 4);
            }
          } else if (enc === DESKTOP_SIZE) {
            this.resize(w, hh);
          } else if (enc === EXTENDED_DESKTOP_SIZE) {
            const screens = (await this.read(4))[0]!;
            await this.read(16 * screens);
            // x: who asked (0 the server, 1 this client, 2 another client), y: the status
            if (x === 1) this.lastResizeStatus = y;
            if (y === 0) this.resize(w, hh);
          } else {
            throw new Error(`the VNC server sent encoding ${enc}, which this client did not ask for`);
          }
        }
        return true;
      }
      case 1: {
        const h = await this.read(5);
        await this.read(h.readUInt16BE(3) * 6);
        return false;
      }
      case 2:
        return false;
      case 3: {
        const h = await this.read(7);
        await this.read(h.readUInt32BE(3));
        return false;
      }
      default:
        throw new Error(`unknown RFB server message ${type}`);
    }
  }

  private resize(w: number, h: number): void {
    if (w === this.width && h === this.height) return;
    this.width = w;
    this.height = h;
    this.fb = Buffer.alloc(w * h * 4);
  }

  /** The whole screen now: width*height 32-bit pixels (a non-incremental update). */
  async framebuffer(): Promise<Buffer> {
    // a non-incremental request is answered with the whole screen, possibly over several updates (a server may
    // first answer the encodings with a pseudo-rectangle of its size)
    this.received = 0;
    this.requestUpdate(false);
    while (this.received < this.width * this.height) {
      if (await this.readMessage()) if (this.received < this.width * this.height) this.requestUpdate(true);
    }
    return Buffer.from(this.fb);
  }

  /** A key press or release (X11 keysym). */
  key(keysym: number, down: boolean): void {
    const m = Buffer.alloc(8);
    m[0] = 4;
    m[1] = down ? 1 : 0;
    m.writeUInt32BE(keysym, 4);
    this.write(m);
  }

  /** Ctrl-Alt-Del, as noVNC's button sends it: three presses, three releases. */
  ctrlAltDel(): void {
    for (const k of [KEYSYM.ControlL, KEYSYM.AltL, KEYSYM.Delete]) this.key(k, true);
    for (const k of [KEYSYM.Delete, KEYSYM.AltL, KEYSYM.ControlL]) this.key(k, false);
  }

  /**
   * SetDesktopSize (the ExtendedDesktopSize extension, what noVNC's remote resizing sends); resolves with the
   * server's status for it (0: resized, 1: prohibited, 2: out of resources, 3: invalid layout).
   */
  async setDesktopSize(w: number, h: number): Promise<number> {
    const m = Buffer.alloc(8 + 16);
    m[0] = 251;
    m.writeUInt16BE(w, 2);
    m.writeUInt16BE(h, 4);
    m[6] = 1;
    m.writeUInt32BE(0, 8);
    m.writeUInt16BE(w, 16);
    m.writeUInt16BE(h, 18);
    this.lastResizeStatus = -1;
    this.write(m);
    while (this.lastResizeStatus === -1) {
      this.requestUpdate(true);
      await this.readMessage();
    }
    return this.lastResizeStatus;
  }

  close(): void {
    this.sock.destroy();
  }
}

/** Whether a screen shows anything: some pixel differs from the first. */
export function nonBlank(fb: Buffer): boolean {
  if (fb.length < 8) return false;
  const first = fb.readUInt32LE(0) & 0xffffff;
  for (let i = 4; i + 4 <= fb.length; i += 4) if ((fb.readUInt32LE(i) & 0xffffff) !== first) return true;
  return false;
}

/** How many pixels differ from the first (for messages). */
export function differingPixels(fb: Buffer): number {
  const first = fb.readUInt32LE(0) & 0xffffff;
  let n = 0;
  for (let i = 4; i + 4 <= fb.length; i += 4) if ((fb.readUInt32LE(i) & 0xffffff) !== first) n++;
  return n;
}
