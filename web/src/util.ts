/** Small helpers: formatting, the router (history API), shell-like splitting. */
import { useEffect, useState } from 'preact/hooks';

export function bytes(n: number | null | undefined): string {
  if (n === null || n === undefined || !Number.isFinite(n)) return '—';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let v = n;
  while (Math.abs(v) >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v >= 100 || i === 0 ? Math.round(v) : v.toFixed(1)} ${units[i]}`;
}

export function ago(iso: string | null | undefined): string {
  if (!iso) return '—';
  const s = Math.max(0, (Date.now() - Date.parse(iso)) / 1000);
  if (s < 60) return `${Math.round(s)} s ago`;
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86400) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86400)} d ago`;
}

export const shortId = (id: string) => id.slice(0, 12);

/** A command line split as a POSIX shell would split words (quotes and backslashes; no expansions). */
export function splitWords(s: string): string[] {
  const out: string[] = [];
  let cur = '';
  let has = false;
  let q: '"' | "'" | null = null;
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (q) {
      if (c === q) q = null;
      else if (c === '\\' && q === '"' && i + 1 < s.length) cur += s[++i];
      else cur += c;
    } else if (c === '"' || c === "'") {
      q = c;
      has = true;
    } else if (c === '\\' && i + 1 < s.length) {
      cur += s[++i];
      has = true;
    } else if (/\s/.test(c)) {
      if (has || cur) out.push(cur);
      cur = '';
      has = false;
    } else cur += c;
  }
  if (has || cur) out.push(cur);
  return out;
}

/** Whether an instance has a graphical display (the display field, in whatever form the daemon gives it). */
export function hasDisplay(d: unknown): boolean {
  if (!d) return false;
  if (typeof d === 'string') return d !== 'none';
  if (typeof d === 'object') return (d as { enabled?: boolean }).enabled !== false;
  return d === true;
}

// ---- the router: paths under /, the daemon answers unknown non-API paths with index.html ----

type RouteListener = (path: string) => void;
const routeListeners = new Set<RouteListener>();
window.addEventListener('popstate', () => {
  for (const l of routeListeners) l(location.pathname);
});

export function navigate(to: string): void {
  if (to === location.pathname + location.search) return;
  history.pushState(null, '', to);
  for (const l of routeListeners) l(location.pathname);
  window.scrollTo(0, 0);
}

export function usePath(): string {
  const [path, setPath] = useState(location.pathname);
  useEffect(() => {
    routeListeners.add(setPath);
    return () => {
      routeListeners.delete(setPath);
    };
  }, []);
  return path;
}

/** onClick for an <a href>: a plain left click navigates inside the app. */
export function linkClick(e: MouseEvent): void {
  if (e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
  const a = (e.currentTarget as HTMLAnchorElement | null)?.getAttribute('href');
  if (!a?.startsWith('/')) return;
  e.preventDefault();
  navigate(a);
}

/** Re-run `fn` every `ms` while mounted (for lists that events also refresh). */
export function useInterval(fn: () => void, ms: number): void {
  useEffect(() => {
    const t = setInterval(fn, ms);
    return () => clearInterval(t);
  }, [fn, ms]);
}
