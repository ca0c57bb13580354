/**
 * Registry authentication (distribution spec and docker's token auth): a 401 answer carries a
 * `WWW-Authenticate` challenge. `Basic realm=...` means "send the user and password with each
 * request"; `Bearer realm=URL,service=S,scope=X` means "get a token from URL (with the user and
 * password, if any, as basic auth) and send it as `Authorization: Bearer TOKEN`".
 */

export interface Challenge {
  scheme: string;
  params: Record<string, string>;
}

/**
 * Parse a WWW-Authenticate header into challenges. Handles quoted values with commas and
 * escapes (`Bearer realm="https://a/token",service="reg",scope="repository:x:pull,push"`).
 */
export function parseChallenges(header: string): Challenge[] {
  const out: Challenge[] = [];
  let i = 0;
  const n = header.length;
  const skipWs = () => {
    while (i < n && /[\s,]/.test(header[i]!)) i++;
  };
  while (i < n) {
    skipWs();
    const schemeMatch = /^[A-Za-z][\w.-]*/.exec(header.slice(i));
    if (!schemeMatch) break;
    const challenge: Challenge = { scheme: schemeMatch[0].toLowerCase(), params: {} };
    i += schemeMatch[0].length;
    out.push(challenge);
    for (;;) {
      while (i < n && /\s/.test(header[i]!)) i++;
      // key=value pairs; a bare token followed by whitespace starts the next challenge
      const kv = /^([A-Za-z][\w.-]*)\s*=\s*/.exec(header.slice(i));
      if (!kv) break;
      i += kv[0].length;
      let value = '';
      if (header[i] === '"') {
        i++;
        while (i < n && header[i] !== '"') {
          if (header[i] === '\\' && i + 1 < n) i++;
          value += header[i];
          i++;
        }
        i++; // closing quote
      } else {
        const m = /^[^,\s]*/.exec(header.slice(i))!;
        value = m[0];
        i += m[0].length;
      }
      challenge.params[kv[1]!.toLowerCase()] = value;
      while (i < n && /\s/.test(header[i]!)) i++;
      if (header[i] === ',') i++;
      else break;
    }
  }
  return out;
}
