/**
 * A graphical console with noVNC (loaded on first use) over /hull/v1/instances/{id}/vnc, which carries raw RFB:
 * keyboard and mouse go to the guest, scale-to-fit or remote resize, fullscreen, Ctrl-Alt-Del (VMs: a graphical
 * container's X server has no use for it).
 */
import { useEffect, useRef, useState } from 'preact/hooks';
import type RFB from '@novnc/novnc';
import { API, ApiFailure, get, seg, type Instance } from '../api.js';

export function Vnc(props: { id: string; name: string; kind: 'container' | 'vm' }) {
  const box = useRef<HTMLDivElement>(null);
  const rfb = useRef<RFB | null>(null);
  const [status, setStatus] = useState('connecting…');
  const [scale, setScale] = useState(true);
  const [resize, setResize] = useState(false);
  const scaleRef = useRef(scale);
  const resizeRef = useRef(resize);
  scaleRef.current = scale;
  resizeRef.current = resize;
  useEffect(() => {
    let gone = false;
    let retry: ReturnType<typeof setTimeout> | undefined;
    let failures = 0;
    // an unclean end (the network changed, the daemon restarted, the display not up yet) reconnects, with a
    // growing pause (1 s to 10 s), as long as the page shows the display; a clean end (the instance stopped) does not
    const connect = (RFBClass: typeof RFB) => {
      if (gone || !box.current) return;
      const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
      const r = new RFBClass(
        box.current,
        `${proto}//${location.host}${API}/instances/${encodeURIComponent(props.id)}/vnc`,
        {
          shared: true,
        },
      );
      r.scaleViewport = scaleRef.current;
      r.resizeSession = resizeRef.current;
      r.focusOnClick = true;
      r.background = '#111';
      r.addEventListener('connect', () => {
        failures = 0;
        setStatus('connected');
      });
      r.addEventListener('disconnect', (e) => {
        if (rfb.current === r) rfb.current = null;
        if (gone) return;
        const clean = (e as CustomEvent<{ clean: boolean }>).detail?.clean;
        // noVNC calls any end after the connection was made clean; the instance's state says whether it ended
        void get<Instance>(`/instances/${seg(props.id)}`)
          .then(
            (i) => i.state === 'running',
            // the daemon unreachable for a moment: try again; an answer (gone, session over): stop
            (err) => !(err instanceof ApiFailure),
          )
          .then((running) => {
            if (gone) return;
            if (!running) return setStatus(clean ? 'disconnected' : 'connection lost');
            const wait = Math.min(10_000, 1000 * 2 ** failures++);
            setStatus(`connection lost, reconnecting in ${Math.round(wait / 1000)} s`);
            retry = setTimeout(() => connect(RFBClass), wait);
          });
      });
      r.addEventListener('securityfailure', () => setStatus('refused by the VNC server'));
      rfb.current = r;
    };
    void import('@novnc/novnc').then(({ default: RFBClass }) => connect(RFBClass));
    return () => {
      gone = true;
      clearTimeout(retry);
      rfb.current?.disconnect();
      rfb.current = null;
    };
  }, [props.id]);
  useEffect(() => {
    if (rfb.current) rfb.current.scaleViewport = scale;
  }, [scale]);
  useEffect(() => {
    if (rfb.current) rfb.current.resizeSession = resize;
  }, [resize]);
  return (
    <section class="vnc" aria-label={`graphical console of ${props.name}`}>
      <div class="toolbar">
        <span role="status" class="muted">
          display: {status}
        </span>
        <label>
          <input type="checkbox" checked={scale} onChange={(e) => setScale(e.currentTarget.checked)} /> scale to fit
        </label>
        <label>
          <input type="checkbox" checked={resize} onChange={(e) => setResize(e.currentTarget.checked)} /> resize the{' '}
          {props.kind === 'vm' ? 'guest' : 'display'}
        </label>
        {props.kind === 'vm' && (
          <button type="button" onClick={() => rfb.current?.sendCtrlAltDel()}>
            Send Ctrl-Alt-Del
          </button>
        )}
        <button type="button" onClick={() => void box.current?.requestFullscreen?.()}>
          Fullscreen
        </button>
      </div>
      <div ref={box} class="vnc-box" data-vnc={props.name} />
    </section>
  );
}
