/**
 * Placeholders in key selectors, filled from the caller's verified identity, e.g.
 * `prefix: "/tenants/{cn}/"`. Supported: `{cn}`, `{o}`, `{ou}`, `{dns}` and
 * `{spiffe.path.last}` (last path segment of a `spiffe://` URI SAN). `{{` is a literal `{`.
 *
 * Safety invariant: filling never widens access. A value that is empty or contains `/`,
 * `*`, NUL or any other control character does not fill a placeholder; an allow rule then
 * simply does not apply for that value (a deny rule fails closed, see compile.ts).
 * Multi-valued fields give one instance of the rule per usable value.
 */
import type { Identity } from '../tls/identity.js';

/** The placeholder names a key selector may use. */
export const PLACEHOLDERS = ['cn', 'o', 'ou', 'dns', 'spiffe.path.last'] as const;
export type Placeholder = (typeof PLACEHOLDERS)[number];

/** A parsed template: literal text and placeholders, in order. */
export type TemplatePart = { readonly literal: string } | { readonly placeholder: Placeholder };

/** Parses `text`; returns the parts or a message naming what is wrong. */
export function parseTemplate(text: string): { parts: TemplatePart[] } | { error: string } {
  const parts: TemplatePart[] = [];
  let literal = '';
  let i = 0;
  while (i < text.length) {
    const ch = text[i];
    if (ch === '{' && text[i + 1] === '{') {
      literal += '{';
      i += 2;
      continue;
    }
    if (ch !== '{') {
      literal += ch;
      i++;
      continue;
    }
    const close = text.indexOf('}', i + 1);
    if (close < 0) return { error: `unclosed "{" (write "{{" for a literal brace)` };
    const name = text.slice(i + 1, close);
    if (!isPlaceholder(name)) {
      const hint = name === 'uri' ? ' ({uri} always contains "/"; use {spiffe.path.last})' : '';
      return { error: `unknown placeholder {${name}}${hint}; supported: ${PLACEHOLDERS.map((p) => `{${p}}`).join(', ')}` };
    }
    if (literal !== '') parts.push({ literal });
    literal = '';
    parts.push({ placeholder: name });
    i = close + 1;
  }
  if (literal !== '') parts.push({ literal });
  return { parts };
}

function isPlaceholder(name: string): name is Placeholder {
  return (PLACEHOLDERS as readonly string[]).includes(name);
}

/** Whether a template contains at least one placeholder. */
export function hasPlaceholder(parts: readonly TemplatePart[]): boolean {
  return parts.some((p) => 'placeholder' in p);
}

/** Whether an identity value may fill a placeholder (see the safety invariant above). */
export function isFillable(value: string): boolean {
  if (value === '') return false;
  for (let i = 0; i < value.length; i++) {
    const code = value.charCodeAt(i);
    if (code < 0x20 || code === 0x7f || code === 0x2f /* / */ || code === 0x2a /* * */) return false;
  }
  return true;
}

/** Last path segment of a spiffe:// URI; "" when it has no path (never fillable). */
function spiffeLastSegment(uri: string): string | undefined {
  if (!uri.toLowerCase().startsWith('spiffe://')) return undefined;
  const rest = uri.slice('spiffe://'.length);
  const slash = rest.indexOf('/');
  if (slash < 0) return '';
  const path = rest.slice(slash);
  // SPIFFE IDs carry no query or fragment; one that does is not a usable identity value.
  if (path.includes('?') || path.includes('#')) return '\u0000';
  return path.slice(path.lastIndexOf('/') + 1);
}

/** The values an identity has for a placeholder (present values, fillable or not). */
export function placeholderValues(identity: Identity, name: Placeholder): readonly string[] {
  switch (name) {
    case 'cn':
      return identity.cn === '' ? [] : [identity.cn];
    case 'o':
      return identity.o;
    case 'ou':
      return identity.ou;
    case 'dns':
      return identity.dns;
    case 'spiffe.path.last':
      return identity.uri.map(spiffeLastSegment).filter((v): v is string => v !== undefined);
  }
}

/** Fills a template with one assignment of placeholder values. */
export function fillTemplate(parts: readonly TemplatePart[], values: ReadonlyMap<Placeholder, string>): string {
  return parts.map((p) => ('literal' in p ? p.literal : (values.get(p.placeholder) ?? ''))).join('');
}

/**
 * Every assignment of usable values to `names` (the cartesian product), and whether some
 * present value had to be skipped because it is not fillable.
 */
export function assignments(
  identity: Identity,
  names: readonly Placeholder[],
): { assignments: Map<Placeholder, string>[]; skipped: boolean } {
  let result: Map<Placeholder, string>[] = [new Map()];
  let skipped = false;
  for (const name of names) {
    const values = placeholderValues(identity, name);
    const usable = [...new Set(values.filter(isFillable))];
    if (values.some((v) => !isFillable(v))) skipped = true;
    const next: Map<Placeholder, string>[] = [];
    for (const partial of result) {
      for (const value of usable) next.push(new Map(partial).set(name, value));
    }
    result = next;
  }
  return { assignments: result, skipped };
}
