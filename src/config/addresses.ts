/**
 * Pure parsers for the address-like strings in the config: listen addresses, https
 * endpoint URLs and audit sink specs. They return a value or a message; the caller
 * attaches the message to the field's path.
 */
import net from 'node:net';

/** A parse result: the value, or why the text was rejected. */
export type Parsed<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly error: string };

/** Host and port; IPv6 hosts are kept without brackets, as net.Server.listen wants them. */
export interface HostPort {
  readonly host: string;
  readonly port: number;
}

const HOSTNAME = /^[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?$/;
const DIGITS = /^[0-9]{1,5}$/;

/**
 * Parses `host:port` or `[ipv6]:port`. `minPort` is 0 for listeners (the OS picks a
 * port, used by tests) and 1 for addresses that are dialled.
 */
export function parseHostPort(text: string, minPort: 0 | 1): Parsed<HostPort> {
  const expected = 'must be host:port (IPv6 as [::1]:2379)';
  let host: string;
  let portText: string;
  if (text.startsWith('[')) {
    const close = text.indexOf(']');
    if (close < 0 || text[close + 1] !== ':') return fail(expected);
    host = text.slice(1, close);
    portText = text.slice(close + 2);
    if (!net.isIPv6(host)) return fail(`${expected}; the bracketed part is not an IPv6 address`);
  } else {
    const colon = text.lastIndexOf(':');
    if (colon < 0) return fail(expected);
    host = text.slice(0, colon);
    portText = text.slice(colon + 1);
    if (host.includes(':')) return fail(`${expected}; write IPv6 addresses in brackets`);
    if (!HOSTNAME.test(host)) return fail(`${expected}; the host part is not a valid host name or address`);
  }
  if (!DIGITS.test(portText)) return fail(`${expected}; the port is not a number`);
  const port = Number(portText);
  if (port < minPort || port > 65535) return fail(`port must be from ${minPort} to 65535, got ${port}`);
  return { ok: true, value: { host, port } };
}

/**
 * Checks an https:// URL naming a host (and optionally a port) and nothing else: a path,
 * query or credentials would be silently dropped by the gRPC client, so they are refused.
 */
export function checkHttpsUrl(text: string): Parsed<URL> {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return fail('is not a valid URL (expected https://host:port)');
  }
  if (url.protocol !== 'https:') return fail('must be an https:// URL');
  if (url.username !== '' || url.password !== '') return fail('must not contain credentials');
  if (url.pathname !== '/' || url.search !== '' || url.hash !== '') {
    return fail('must not have a path, query or fragment (expected https://host:port)');
  }
  return { ok: true, value: url };
}

/** An audit sink spec before file paths are resolved. */
export type SinkSpec =
  | { readonly kind: 'stdout' }
  | { readonly kind: 'file'; readonly path: string }
  | { readonly kind: 'syslog'; readonly host: string; readonly port: number };

/**
 * Parses `stdout`, `file:<path>` (also `file:///abs/path`) or `syslog+tls://host:port`.
 * A relative file path is returned as written; the caller resolves it.
 */
export function parseSink(text: string): Parsed<SinkSpec> {
  if (text === 'stdout') return { ok: true, value: { kind: 'stdout' } };
  if (text.startsWith('file:')) {
    let file = text.slice('file:'.length);
    if (file.startsWith('//')) {
      // URL form: file:///var/log/x -> /var/log/x; a host part is not supported.
      if (!file.startsWith('///')) return fail('file sink URLs must have an empty host (file:///path)');
      try {
        file = decodeURIComponent(file.slice(2));
      } catch {
        return fail('file sink URL has a malformed %-escape');
      }
    }
    if (file.trim() === '') return fail('file sink needs a path (file:/path/to/audit.jsonl)');
    return { ok: true, value: { kind: 'file', path: file } };
  }
  const syslogPrefix = 'syslog+tls://';
  if (text.startsWith(syslogPrefix)) {
    const address = parseHostPort(text.slice(syslogPrefix.length).replace(/\/$/, ''), 1);
    if (!address.ok) return fail(`syslog sink address ${address.error}`);
    return { ok: true, value: { kind: 'syslog', ...address.value } };
  }
  return fail('must be stdout, file:<path> or syslog+tls://host:port');
}

function fail(error: string): { readonly ok: false; readonly error: string } {
  return { ok: false, error };
}
