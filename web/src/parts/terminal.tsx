/**
 * A terminal in the browser: xterm.js (loaded on first use) over one of hull's terminal WebSockets. exec and
 * attach frames carry a first byte naming the stream; a VM's serial console sends raw bytes. Keystrokes go out
 * as binary frames, the size as {"type":"resize"} text frames.
 */
import { useEffect, useRef, useState } from 'preact/hooks';
import { socket } from '../api.js';

let lib: Promise<[typeof import('@xterm/xterm'), typeof import('@xterm/addon-fit')]> | undefined;
const load = () =>
  (lib ??= Promise.all([import('@xterm/xterm'), import('@xterm/addon-fit'), import('@xterm/xterm/css/xterm.css')]).then(
    ([x, f]) => [x, f] as [typeof import('@xterm/xterm'), typeof import('@xterm/addon-fit')],
  ));

export function Terminal(props: {
  /** the socket's path under /hull/v1, without rows/cols (added here) */
  path: string;
  /** frames carry a stream byte (exec, attach) or not (a VM's console) */
  streamByte: boolean;
  label: string;
}) {
  const box = useRef<HTMLDivElement>(null);
  const [status, setStatus] = useState('connecting…');
  useEffect(() => {
    let gone = false;
    let cleanup = () => {};
    void load().then(([{ Terminal: XTerm }, { FitAddon }]) => {
      if (gone || !box.current) return;
      const term = new XTerm({
        convertEol: false,
        cursorBlink: true,
        fontSize: 14,
        scrollback: 5000,
        fontFamily: 'ui-monospace, "DejaVu Sans Mono", monospace',
      });
      const fit = new FitAddon();
      term.loadAddon(fit);
      term.open(box.current);
      try {
        fit.fit();
      } catch {
        /* not laid out yet */
      }
      const sep = props.path.includes('?') ? '&' : '?';
      const ws = socket(`${props.path}${sep}rows=${term.rows}&cols=${term.cols}`);
      const enc = new TextEncoder();
      ws.onopen = () => {
        setStatus('connected');
        term.focus();
      };
      ws.onmessage = (m) => {
        if (typeof m.data === 'string') {
          try {
            const c = JSON.parse(m.data) as {
              type: string;
              exitCode?: number | null;
              reason?: string;
              message?: string;
            };
            if (c.type === 'exit')
              setStatus(
                c.reason
                  ? `ended (${c.reason})`
                  : `exited${c.exitCode !== null && c.exitCode !== undefined ? ` with ${c.exitCode}` : ''}`,
              );
            else if (c.type === 'error') {
              setStatus(`error: ${c.message}`);
              term.write(`\r\n\x1b[31m${c.message}\x1b[0m\r\n`);
            }
          } catch {
            /* not JSON */
          }
          return;
        }
        const b = new Uint8Array(m.data as ArrayBuffer);
        term.write(props.streamByte ? b.subarray(1) : b);
      };
      ws.onclose = (e) => {
        setStatus((s) => (s === 'connected' || s === 'connecting…' ? `closed${e.reason ? `: ${e.reason}` : ''}` : s));
      };
      const onData = term.onData((d) => {
        if (ws.readyState === WebSocket.OPEN) ws.send(enc.encode(d));
      });
      const onBinary = term.onBinary((d) => {
        if (ws.readyState !== WebSocket.OPEN) return;
        const b = new Uint8Array(d.length);
        for (let i = 0; i < d.length; i++) b[i] = d.charCodeAt(i) & 0xff;
        ws.send(b);
      });
      const onResize = term.onResize(({ rows, cols }) => {
        if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ type: 'resize', rows, cols }));
      });
      const ro = new ResizeObserver(() => {
        try {
          fit.fit();
        } catch {
          /* hidden */
        }
      });
      ro.observe(box.current);
      cleanup = () => {
        ro.disconnect();
        onData.dispose();
        onBinary.dispose();
        onResize.dispose();
        ws.close();
        term.dispose();
      };
    });
    return () => {
      gone = true;
      cleanup();
    };
  }, [props.path]);
  return (
    <section class="terminal" aria-label={props.label}>
      <p class="muted" role="status">
        {props.label}: {status}
      </p>
      <div ref={box} class="term-box" data-terminal={props.label} />
    </section>
  );
}
