/** An instance's output, streamed (/instances/{id}/logs?follow=1&tail=N, one {stream,time,line} frame a line). */
import { useEffect, useRef, useState } from 'preact/hooks';
import { socket } from '../api.js';

interface Line {
  stream: string;
  time: string;
  line: string;
}

export function Logs(props: { id: string; name: string }) {
  const [lines, setLines] = useState<Line[]>([]);
  const [status, setStatus] = useState('connecting…');
  const [followOn, setFollow] = useState(true);
  const [query, setQuery] = useState('');
  const [times, setTimes] = useState(false);
  const box = useRef<HTMLPreElement>(null);
  useEffect(() => {
    const buf: Line[] = [];
    let timer: ReturnType<typeof setTimeout> | undefined;
    const flush = () => {
      timer = undefined;
      setLines(buf.slice(-5000));
    };
    const ws = socket(`/instances/${encodeURIComponent(props.id)}/logs?follow=1&tail=500`);
    ws.onopen = () => setStatus('following');
    ws.onmessage = (m) => {
      if (typeof m.data !== 'string') return;
      try {
        const v = JSON.parse(m.data) as Partial<Line> & { type?: string; message?: string };
        if (v.type === 'error') return setStatus(`error: ${v.message}`);
        if (v.type === 'exit' || v.type === 'end') return setStatus('ended');
        if (typeof v.line !== 'string') return;
        buf.push({ stream: v.stream ?? 'stdout', time: v.time ?? '', line: v.line });
        if (buf.length > 10000) buf.splice(0, buf.length - 5000);
        timer ??= setTimeout(flush, 50);
      } catch {
        /* not JSON */
      }
    };
    ws.onclose = (e) => setStatus((s) => (s.startsWith('error') ? s : `stopped${e.reason ? `: ${e.reason}` : ''}`));
    return () => {
      if (timer) clearTimeout(timer);
      ws.close();
    };
  }, [props.id]);
  useEffect(() => {
    if (followOn && box.current) box.current.scrollTop = box.current.scrollHeight;
  }, [lines, followOn, query]);
  const q = query.toLowerCase();
  const shown = q ? lines.filter((l) => l.line.toLowerCase().includes(q)) : lines;
  return (
    <section class="logs" aria-label={`logs of ${props.name}`}>
      <div class="toolbar">
        <label>
          Search{' '}
          <input
            type="search"
            value={query}
            onInput={(e) => setQuery(e.currentTarget.value)}
            aria-label="search the logs"
          />
        </label>
        <label>
          <input type="checkbox" checked={followOn} onChange={(e) => setFollow(e.currentTarget.checked)} /> follow
        </label>
        <label>
          <input type="checkbox" checked={times} onChange={(e) => setTimes(e.currentTarget.checked)} /> times
        </label>
        <span class="muted" role="status">
          {status} · {shown.length}
          {q ? ` of ${lines.length}` : ''} lines
        </span>
      </div>
      {/* biome-ignore lint/a11y/noNoninteractiveTabindex: a scrolling region must be reachable by keyboard to scroll it */}
      <pre ref={box} class="log-box" tabIndex={0} aria-live="off" data-logs={props.name}>
        {shown.map((l, i) => (
          <div key={i} class={l.stream === 'stderr' ? 'stderr' : undefined}>
            {times && <span class="muted">{l.time} </span>}
            {l.line}
          </div>
        ))}
      </pre>
    </section>
  );
}
