/**
 * Which methods a path answers to, from the routes as registered: a path that exists under other methods
 * gets 405 with `Allow` rather than 404 (RFC 9110 §15.5.6).
 */
import type { RouteEntry } from './app.ts';

/** The methods of the routes whose pattern matches `path`, with HEAD wherever GET is. */
export function allowedMethods(routes: readonly RouteEntry[], path: string): string[] {
  const trimmed = path.length > 1 ? path.replace(/\/+$/, '') : path;
  const methods = new Set<string>();
  for (const route of routes) {
    // A catch-all (CORS preflight's `OPTIONS *`) would make every unknown path "exist".
    if (route.url === '*' || route.url === '/*') continue;
    if (patternOf(route.url).test(trimmed)) methods.add(route.method);
  }
  if (methods.has('GET')) methods.add('HEAD');
  return [...methods].sort();
}

const patterns = new Map<string, RegExp>();

function patternOf(url: string): RegExp {
  let pattern = patterns.get(url);
  if (!pattern) {
    const body = url
      .split('/')
      .map((part) => {
        if (part.startsWith(':')) return '[^/]+';
        if (part === '*') return '.*';
        return part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
      })
      .join('/');
    pattern = new RegExp(`^${body}$`);
    patterns.set(url, pattern);
  }
  return pattern;
}
