/** The console's frame: navigation, the session-ended screen, and the page for the current path. */
import { useEffect, useState } from 'preact/hooks';
import { call, onSessionEnd, sessionEnded } from './api.js';
import { Link } from './parts/common.js';
import { Create } from './pages/create.js';
import { Events } from './pages/events.js';
import { Images } from './pages/images.js';
import { InstancePage } from './pages/instance.js';
import { Instances } from './pages/instances.js';
import { Networks } from './pages/networks.js';
import { Overview } from './pages/overview.js';
import { Storage } from './pages/storage.js';
import { Volumes } from './pages/volumes.js';
import { usePath } from './util.js';

const NAV: [string, string][] = [
  ['/', 'Overview'],
  ['/instances', 'Instances'],
  ['/create', 'Create'],
  ['/images', 'Images'],
  ['/networks', 'Networks'],
  ['/volumes', 'Volumes'],
  ['/storage', 'Storage'],
  ['/events', 'Events'],
];

function page(path: string) {
  const m = /^\/instances\/([^/]+)\/?$/.exec(path);
  if (m) return <InstancePage id={decodeURIComponent(m[1]!)} />;
  switch (path.replace(/\/$/, '') || '/') {
    case '/':
      return <Overview />;
    case '/instances':
      return <Instances />;
    case '/create':
      return <Create />;
    case '/images':
      return <Images />;
    case '/networks':
      return <Networks />;
    case '/volumes':
      return <Volumes />;
    case '/storage':
      return <Storage />;
    case '/events':
      return <Events />;
    default:
      return (
        <section>
          <h1>Not found</h1>
          <p>
            There is no page {path}. <Link href="/">Go to the overview</Link>.
          </p>
        </section>
      );
  }
}

function SessionEnded(props: { loggedOut: boolean }) {
  return (
    <main id="main" class="ended">
      <h1>{props.loggedOut ? 'Logged out' : 'Session ended'}</h1>
      <p>
        {props.loggedOut ? 'You logged out of the console.' : 'Your console session ended or was never started.'} For a
        new login link, run this on the host:
      </p>
      <pre>hull console url</pre>
    </main>
  );
}

export function App() {
  const path = usePath();
  const [ended, setEnded] = useState(sessionEnded());
  const [loggedOut, setLoggedOut] = useState(false);
  const [menu, setMenu] = useState(false);
  useEffect(() => onSessionEnd(() => setEnded(true)), []);
  useEffect(() => setMenu(false), [path]);
  useEffect(() => {
    const title = NAV.find(([p]) => p === path)?.[1] ?? (path.startsWith('/instances/') ? 'Instance' : '');
    document.title = title ? `${title} · hull` : 'hull';
  }, [path]);
  // the session check: a 401 here shows the ended screen before any page loads data
  useEffect(() => {
    call('GET', '/session').catch(() => {});
  }, []);
  if (ended) return <SessionEnded loggedOut={loggedOut} />;
  const logout = async () => {
    try {
      await call('POST', '/session/logout');
    } catch {
      /* ended anyway */
    }
    setLoggedOut(true);
    setEnded(true);
  };
  const current = (p: string) => (p === '/' ? path === '/' : path === p || path.startsWith(`${p}/`));
  return (
    <>
      <a class="skip" href="#main">
        Skip to content
      </a>
      <header class="top">
        <span class="brand">hull</span>
        <button
          type="button"
          class="menu-button"
          aria-expanded={menu}
          aria-controls="nav"
          onClick={() => setMenu(!menu)}
        >
          Menu
        </button>
        <nav id="nav" aria-label="main" class={menu ? 'open' : ''}>
          {NAV.map(([p, label]) => (
            <Link key={p} href={p} aria-current={current(p) ? 'page' : undefined}>
              {label}
            </Link>
          ))}
        </nav>
        <button type="button" class="logout" onClick={logout}>
          Log out
        </button>
      </header>
      <main id="main" tabIndex={-1}>
        {page(path)}
      </main>
    </>
  );
}
