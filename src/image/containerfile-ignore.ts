/**
 * `.containerignore` / `.dockerignore`: docker's pattern rules (moby/patternmatcher), written out.
 * Patterns are cleaned like Go's filepath.Clean (`./a` → `a`, `a/../b` → `b`, trailing `/` dropped),
 * a leading `/` is dropped, `!` marks an exception, the last matching pattern wins, `*` and `?` stay
 * within one path element, `**` spans any number of them, and a pattern that matches a parent
 * directory matches everything under it.
 */
import { readFileSync } from 'node:fs';
import { join, posix } from 'node:path';

interface Pattern {
  regex: RegExp;
  exclusion: boolean;
}

/** Go's filepath.Clean for slash paths. */
function clean(p: string): string {
  if (p === '') return '.';
  let out = posix.normalize(p);
  if (out.length > 1 && out.endsWith('/')) out = out.slice(0, -1);
  return out;
}

/** The patterns of an ignore file: comments and blank lines dropped, each pattern cleaned. */
export function parseIgnoreFile(text: string): string[] {
  const out: string[] = [];
  for (const rawLine of text.split(/\r?\n/)) {
    if (rawLine.startsWith('#')) continue;
    let p = rawLine.trim();
    if (p === '') continue;
    const invert = p.startsWith('!');
    if (invert) p = p.slice(1).trim();
    if (p.length > 0) {
      p = clean(p);
      if (p.length > 1 && p.startsWith('/')) p = p.slice(1);
    }
    out.push(invert ? `!${p}` : p);
  }
  return out;
}

function compile(pattern: string): RegExp {
  let re = '^';
  let inClass = false;
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (inClass) {
      if (c === ']') inClass = false;
      if (c === '\\' && i + 1 < pattern.length) {
        re += '\\' + pattern[++i];
        continue;
      }
      re += c;
      continue;
    }
    if (c === '*') {
      if (pattern[i + 1] === '*') {
        i++;
        if (pattern[i + 1] === '/') i++;
        re += i + 1 >= pattern.length ? '.*' : '(.*/)?';
      } else {
        re += '[^/]*';
      }
    } else if (c === '?') {
      re += '[^/]';
    } else if (c === '[') {
      inClass = true;
      re += '[';
    } else if (c === '\\') {
      if (i + 1 < pattern.length) {
        const n = pattern[++i]!;
        re += /\w/.test(n) ? n : '\\' + n;
      } else {
        re += '\\\\';
      }
    } else {
      re += c.replace(/[.+()|{}$^\]]/g, '\\$&');
    }
  }
  return new RegExp(re + '$', 's');
}

/** A matcher for cleaned patterns: true when relPath (slash-separated, relative to the context) is ignored. */
export function compileIgnore(patterns: readonly string[]): (relPath: string) => boolean {
  const compiled: Pattern[] = patterns.map((p) => {
    const exclusion = p.startsWith('!');
    return { regex: compile(exclusion ? p.slice(1) : p), exclusion };
  });
  return (relPath: string) => {
    const file = clean(relPath.replace(/^\/+/, ''));
    const parent = posix.dirname(file);
    const parentDirs = parent === '.' ? [] : parent.split('/');
    let matched = false;
    for (const p of compiled) {
      if (p.exclusion !== matched) continue;
      let match = p.regex.test(file);
      if (!match) {
        for (let i = 1; i <= parentDirs.length && !match; i++) match = p.regex.test(parentDirs.slice(0, i).join('/'));
      }
      if (match) matched = !p.exclusion;
    }
    return matched;
  };
}

/**
 * Load the context's ignore file: `.containerignore`, else `.dockerignore`. Returns a matcher that
 * says whether a path (relative to the context) is left out; with neither file, nothing is.
 */
export function loadIgnore(contextDir: string): (relPath: string) => boolean {
  for (const name of ['.containerignore', '.dockerignore']) {
    let text: string;
    try {
      text = readFileSync(join(contextDir, name), 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw e;
    }
    return compileIgnore(parseIgnoreFile(text));
  }
  return () => false;
}
