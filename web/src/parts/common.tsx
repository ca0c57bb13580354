/** Small shared pieces: a loaded value, an error line, a state badge, links. */
import type { ComponentChildren } from 'preact';
import { useCallback, useEffect, useState } from 'preact/hooks';
import { linkClick } from '../util.js';

export function useLoad<T>(fn: () => Promise<T>, deps: unknown[] = []) {
  const [value, setValue] = useState<T | undefined>(undefined);
  const [error, setError] = useState('');
  const [tick, setTick] = useState(0);
  const reload = useCallback(() => setTick((t) => t + 1), []);
  useEffect(() => {
    let gone = false;
    fn().then(
      (v) => {
        if (gone) return;
        setValue(v);
        setError('');
      },
      (e: Error) => !gone && setError(e.message),
    );
    return () => {
      gone = true;
    };
  }, [...deps, tick]);
  return { value, error, reload };
}

export function ErrorLine(props: { error: string }) {
  if (!props.error) return null;
  return (
    <p class="error" role="alert">
      {props.error}
    </p>
  );
}

export function Badge(props: { state: string }) {
  return <span class={`badge state-${props.state.replace(/[^a-z]/g, '')}`}>{props.state}</span>;
}

export function Link(props: {
  href: string;
  children: ComponentChildren;
  class?: string;
  'aria-current'?: 'page' | undefined;
}) {
  return (
    <a href={props.href} onClick={linkClick} class={props.class} aria-current={props['aria-current']}>
      {props.children}
    </a>
  );
}

/** Run an action, with its error shown by the caller; the button is disabled while it runs. */
export function useAction(): {
  busy: boolean;
  error: string;
  run: (f: () => Promise<unknown>) => Promise<boolean>;
  setError: (s: string) => void;
} {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState('');
  const run = async (f: () => Promise<unknown>) => {
    setBusy(true);
    setError('');
    try {
      await f();
      return true;
    } catch (e) {
      setError((e as Error).message);
      return false;
    } finally {
      setBusy(false);
    }
  };
  return { busy, error, run, setError };
}
