/**
 * The SSRF guard: a webhook may not reach this machine, its network or a cloud metadata service. Checked at
 * registration (the URL's host, resolved) and again at every delivery by the DNS lookup of the connection
 * itself (`guardedLookup`, given to the HTTP agent), so the address checked is the address connected to and
 * a name that resolves elsewhere by the time of delivery (DNS rebinding) is refused too.
 */
import { lookup } from 'node:dns';
import { BlockList, isIP, type LookupFunction } from 'node:net';
import { InvalidRequestError } from '../../core/errors.ts';

const forbidden = new BlockList();
for (const [net, bits] of [
  ['0.0.0.0', 8], // "this network", the unspecified address
  ['10.0.0.0', 8], // RFC 1918
  ['100.64.0.0', 10], // CGNAT (RFC 6598)
  ['127.0.0.0', 8], // loopback
  ['169.254.0.0', 16], // link-local, including the metadata service 169.254.169.254
  ['172.16.0.0', 12], // RFC 1918
  ['192.0.0.0', 24], // IETF protocol assignments
  ['192.168.0.0', 16], // RFC 1918
  ['198.18.0.0', 15], // benchmarking
  ['224.0.0.0', 4], // multicast
  ['240.0.0.0', 4], // reserved, and the broadcast address
] as const) {
  forbidden.addSubnet(net, bits, 'ipv4');
}
for (const [net, bits] of [
  ['::', 128], // unspecified
  ['::1', 128], // loopback
  ['fc00::', 7], // unique local (ULA), including the metadata service fd00:ec2::254
  ['fe80::', 10], // link-local
  ['fec0::', 10], // site-local (deprecated)
  ['ff00::', 8], // multicast
] as const) {
  forbidden.addSubnet(net, bits, 'ipv6');
}

/** The 8 groups of an IPv6 address (a trailing dotted quad becomes two groups). */
function groups(address: string): number[] {
  let text = address.replace(/%.*$/, '');
  const quad = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (quad) {
    const [a, b, c, d] = quad.slice(1).map(Number) as [number, number, number, number];
    text = `${text.slice(0, quad.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head, tail] = text.split('::') as [string, string | undefined];
  const part = (s: string | undefined) => (s ? s.split(':').map((g) => Number.parseInt(g, 16)) : []);
  const h = part(head);
  const t = part(tail);
  return tail === undefined ? h : [...h, ...new Array(8 - h.length - t.length).fill(0), ...t];
}

/** The IPv4 address an IPv6 one carries (mapped, compatible, NAT64, 6to4), or null. */
function embeddedIpv4(address: string): string | null {
  const g = groups(address);
  const v4 = (hi: number, lo: number) => `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
  const zero = (from: number, to: number) => g.slice(from, to).every((x) => x === 0);
  if (zero(0, 5) && (g[5] === 0xffff || g[5] === 0)) return v4(g[6] ?? 0, g[7] ?? 0);
  if (g[0] === 0x64 && g[1] === 0xff9b && zero(2, 6)) return v4(g[6] ?? 0, g[7] ?? 0);
  if (g[0] === 0x2002) return v4(g[1] ?? 0, g[2] ?? 0);
  return null;
}

/** Why `address` may not be reached, or null when it may. */
export function forbiddenAddress(address: string): string | null {
  const family = isIP(address);
  if (family === 4) return forbidden.check(address, 'ipv4') ? 'a loopback, private, link-local or reserved' : null;
  if (family !== 6) return 'not an IP';
  if (forbidden.check(address, 'ipv6')) return 'a loopback, private, link-local or reserved';
  const inner = embeddedIpv4(address);
  if (inner !== null && forbidden.check(inner, 'ipv4'))
    return `an IPv6 form of ${inner}, a loopback, private, link-local or reserved`;
  return null;
}

/** An address the guard refused; `code` lets callers tell it from network errors. */
export class ForbiddenAddressError extends Error {
  readonly code = 'FERRY_FORBIDDEN_ADDRESS';
}

function refusal(host: string, address: string, why: string): ForbiddenAddressError {
  const shown = host === address ? address : `${host} (${address})`;
  return new ForbiddenAddressError(
    `${shown} is ${why} address; webhooks may not reach it unless Ferry runs with webhookAllowPrivate (--webhook-allow-private)`,
  );
}

/** The host of a URL without IPv6 brackets. */
export function bareHost(url: URL): string {
  return url.hostname.replace(/^\[(.*)\]$/, '$1');
}

/**
 * A `lookup` for `net.connect`/`tls.connect`: resolves as `dns.lookup` does and fails the connection when any
 * address of the name is forbidden, so the socket can only ever connect to an address that passed.
 */
export const guardedLookup: LookupFunction = (hostname, options, callback) => {
  lookup(hostname, { ...options, all: true }, (error, addresses) => {
    if (error) return callback(error, '', 0);
    for (const a of addresses) {
      const why = forbiddenAddress(a.address);
      if (why !== null) return callback(refusal(hostname, a.address, why), '', 0);
    }
    if (addresses.length === 0) {
      return callback(Object.assign(new Error(`${hostname} has no address`), { code: 'ENOTFOUND' }), '', 0);
    }
    if ((options as { all?: boolean }).all) {
      (callback as unknown as (e: null, a: typeof addresses) => void)(null, addresses);
    } else {
      const first = addresses[0] as (typeof addresses)[number];
      callback(null, first.address, first.family);
    }
  });
};

/** Refuses a URL whose host is a forbidden IP literal (no lookup happens for those, so the guard checks here). */
export function checkLiteral(url: URL): void {
  const host = bareHost(url);
  if (isIP(host) === 0) return;
  const why = forbiddenAddress(host);
  if (why !== null) throw refusal(host, host, why);
}

/**
 * At registration: the URL's host, resolved now, must have only allowed addresses. Answers nothing; throws
 * `InvalidRequestError` saying why not.
 */
export async function checkDestination(url: URL): Promise<void> {
  const host = bareHost(url);
  try {
    if (isIP(host) !== 0) return checkLiteral(url);
    const addresses = await new Promise<{ address: string }[]>((resolve, reject) =>
      lookup(host, { all: true }, (error, found) => (error ? reject(error) : resolve(found))),
    );
    for (const a of addresses) {
      const why = forbiddenAddress(a.address);
      if (why !== null) throw refusal(host, a.address, why);
    }
  } catch (error) {
    if (error instanceof ForbiddenAddressError) throw new InvalidRequestError(`url: ${error.message}`);
    const code = (error as { code?: string }).code ?? 'error';
    throw new InvalidRequestError(
      `url: the host ${host} does not resolve (${code}); give a name or address it can reach`,
    );
  }
}
