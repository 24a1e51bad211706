/**
 * A small parser for the Prometheus text exposition format (version 0.0.4), enough for
 * tests to read back what etcdgate's registry serves: samples with their labels, and
 * the TYPE declared for each metric family.
 */

/** One sample line: metric name, labels, value. */
export interface Sample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

/** Everything parsed from one exposition. */
export interface Exposition {
  readonly samples: readonly Sample[];
  /** Family name -> declared type (counter, gauge, histogram, ...). */
  readonly types: ReadonlyMap<string, string>;
}

function unescapeLabel(raw: string): string {
  return raw.replace(/\\(.)/g, (_m, ch: string) => (ch === 'n' ? '\n' : ch));
}

function parseValue(raw: string): number {
  if (raw === '+Inf') return Number.POSITIVE_INFINITY;
  if (raw === '-Inf') return Number.NEGATIVE_INFINITY;
  return Number(raw);
}

const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\S+)?$/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)",?/g;

/** Parses exposition text; throws on a line it does not understand, so a malformed exposition fails the test. */
export function parseExposition(text: string): Exposition {
  const samples: Sample[] = [];
  const types = new Map<string, string>();
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    if (line.startsWith('#')) {
      const typeLine = /^# TYPE (\S+) (\S+)$/.exec(line);
      if (typeLine?.[1] !== undefined && typeLine[2] !== undefined) types.set(typeLine[1], typeLine[2]);
      continue;
    }
    const match = SAMPLE.exec(line);
    if (match?.[1] === undefined || match[3] === undefined) throw new Error(`unparsable exposition line: ${line}`);
    const labels: Record<string, string> = {};
    const body = match[2] ?? '';
    let consumed = 0;
    for (const label of body.matchAll(LABEL)) {
      if (label.index !== consumed || label[1] === undefined || label[2] === undefined) {
        throw new Error(`unparsable labels: ${line}`);
      }
      labels[label[1]] = unescapeLabel(label[2]);
      consumed += label[0].length;
    }
    if (consumed !== body.length) throw new Error(`unparsable labels: ${line}`);
    samples.push({ name: match[1], labels, value: parseValue(match[3]) });
  }
  return { samples, types };
}

/** The samples named `name` whose labels include every pair in `labels`. */
export function findSamples(exposition: Exposition, name: string, labels: Record<string, string> = {}): Sample[] {
  return exposition.samples.filter(
    (sample) => sample.name === name && Object.entries(labels).every(([key, value]) => sample.labels[key] === value),
  );
}

/** The value of the single sample matching `name` and `labels`; throws when there is not exactly one. */
export function sampleValue(exposition: Exposition, name: string, labels: Record<string, string> = {}): number {
  const found = findSamples(exposition, name, labels);
  if (found.length !== 1) {
    throw new Error(`expected one sample ${name} ${JSON.stringify(labels)}, found ${found.length}`);
  }
  return (found[0] as Sample).value;
}

/** Every name a query could use: the declared family names plus each sample's name (so histograms' _bucket/_sum/_count too). */
export function exposedNames(exposition: Exposition): Set<string> {
  const names = new Set<string>(exposition.types.keys());
  for (const sample of exposition.samples) names.add(sample.name);
  return names;
}
