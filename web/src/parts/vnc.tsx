/**
 * A graphical console with noVNC (loaded on first use) over /hull/v1/instances/{id}/vnc, which carries raw RFB:
 * keyboard and mouse go to the guest, scale-to-fit or remote resize, fullscreen, Ctrl-Alt-Del (VMs: a graphical
 * container's X server has no use for it).
 */
import { useEffect, useRef, useState } from 'preact/hooks';
import type RFB from '@novnc/novnc';
import { API } from '../api.js';

export function Vnc(props: { id: string; name: string; kind: 'container' | 'vm' }) {
  const box = useRef<HTMLDivElement>(null);
  const rfb = useRef<RFB | null>(null);
  const [status, setStatus] = useState('connecting…');
  const [scale, setScale] = useState(true);
  const [resize, setResize] = useState(false);
  useEffect(() => {
    let gone = false;
    void import('@novnc/novnc').then(({ default: RFBClass }) => {
      if (gone || !box.current) return;
      const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
      const r = new RFBClass(
        box.current,
        `${proto}//${location.host}${API}/instances/${encodeURIComponent(props.id)}/vnc`,
        {
          shared: true,
        },
      );
      r.scaleViewport = scale;
      r.resizeSession = resize;
      r.focusOnClick = true;
      r.background = '#111';
      r.addEventListener('connect', () => setStatus('connected'));
      r.addEventListener('disconnect', (e) =>
        setStatus((e as CustomEvent<{ clean: boolean }>).detail?.clean ? 'disconnected' : 'connection lost'),
      );
      r.addEventListener('securityfailure', () => setStatus('refused by the VNC server'));
      rfb.current = r;
    });
    return () => {
      gone = true;
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
