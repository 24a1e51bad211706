/**
 * Turning raw measurements into the three outputs: JSON (everything), a Markdown table
 * (medians over rounds, ratios to direct etcd, goals) and an SVG bar chart of the
 * throughput ratios, drawn by hand so the benchmark needs no chart library.
 */

/** One measured point: one target, one workload, one concurrency, one round. */
export interface Point {
  readonly workload: string;
  readonly clients: number;
  readonly target: string;
  readonly round: number;
  readonly requests: number;
  readonly errors: number;
  readonly seconds: number;
  readonly throughput: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  /** CPU of the proxy process per request, µs (undefined for direct etcd). */
  readonly proxyCpuUs: number | undefined;
  readonly etcdCpuUs: number;
  /** CPU of the whole load generator (all threads), as a share of one core. */
  readonly loadgenCores: number;
  readonly firstError?: string;
}

/** The watch fan-out result of one target and round. */
export interface WatchPoint {
  readonly target: string;
  readonly round: number;
  readonly watchers: number;
  readonly puts: number;
  readonly delivered: number;
  readonly expected: number;
  readonly complete: boolean;
  readonly inOrder: boolean;
  readonly eventsPerSecond: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly proxyCpuUs: number | undefined;
}

/** RSS with many open watchers. */
export interface MemoryPoint {
  readonly target: string;
  readonly watchers: number;
  readonly connections: number;
  readonly created: number;
  readonly rssBeforeBytes: number;
  readonly rssWithWatchersBytes: number;
}

/** The q-quantile (0..1) of `values`, which it sorts in place. */
export function quantile(values: Float64Array, q: number): number {
  if (values.length === 0) return Number.NaN;
  values.sort();
  const index = Math.min(values.length - 1, Math.max(0, Math.ceil(q * values.length) - 1));
  return values[index] ?? Number.NaN;
}

function median(values: readonly number[]): number {
  const finite = values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
  if (finite.length === 0) return Number.NaN;
  const mid = Math.floor(finite.length / 2);
  return finite.length % 2 === 1 ? (finite[mid] as number) : ((finite[mid - 1] as number) + (finite[mid] as number)) / 2;
}

/** Medians over rounds of one (workload, clients, target). */
export interface Summary {
  readonly workload: string;
  readonly clients: number;
  readonly target: string;
  readonly rounds: number;
  readonly throughput: number;
  /** Median over rounds of this round's throughput / direct's in the same round. */
  readonly ratio: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  /** Added median latency vs direct etcd, ms. */
  readonly addedP50Ms: number;
  readonly proxyCpuUs: number | undefined;
  readonly etcdCpuUs: number;
  readonly loadgenCores: number;
  readonly errors: number;
}

/** Summarizes points per (workload, clients, target), pairing each round with direct's. */
export function summarize(points: readonly Point[]): Summary[] {
  const groups = new Map<string, Point[]>();
  for (const point of points) {
    const key = `${point.workload}\u0000${point.clients}\u0000${point.target}`;
    const list = groups.get(key) ?? [];
    list.push(point);
    groups.set(key, list);
  }
  const direct = (p: Point): Point | undefined => points.find((d) => d.target === 'direct' && d.workload === p.workload && d.clients === p.clients && d.round === p.round);
  const out: Summary[] = [];
  for (const list of groups.values()) {
    const first = list[0] as Point;
    const ratios = list.map((p) => {
      const d = direct(p);
      return d === undefined ? Number.NaN : p.throughput / d.throughput;
    });
    const added = list.map((p) => {
      const d = direct(p);
      return d === undefined ? Number.NaN : p.p50Ms - d.p50Ms;
    });
    const cpu = list.map((p) => p.proxyCpuUs).filter((v): v is number => v !== undefined);
    out.push({
      workload: first.workload,
      clients: first.clients,
      target: first.target,
      rounds: list.length,
      throughput: median(list.map((p) => p.throughput)),
      ratio: median(ratios),
      p50Ms: median(list.map((p) => p.p50Ms)),
      p99Ms: median(list.map((p) => p.p99Ms)),
      addedP50Ms: median(added),
      proxyCpuUs: cpu.length === 0 ? undefined : median(cpu),
      etcdCpuUs: median(list.map((p) => p.etcdCpuUs)),
      loadgenCores: median(list.map((p) => p.loadgenCores)),
      errors: list.reduce((sum, p) => sum + p.errors, 0),
    });
  }
  return out;
}

const fmt = (value: number | undefined, digits = 2): string => (value === undefined || !Number.isFinite(value) ? '–' : value.toFixed(digits));
const mib = (bytes: number): string => (bytes / 1024 / 1024).toFixed(0);

/** A goal and whether the run met it. */
export interface GoalCheck {
  readonly goal: string;
  readonly measured: string;
  readonly met: boolean | undefined;
}

/** Evaluates the performance goals against one run's summaries. */
export function checkGoals(summaries: readonly Summary[], watch: readonly WatchPoint[], memory: readonly MemoryPoint[], memoryBoundMiB: number): GoalCheck[] {
  const find = (workload: string, clients: number, target: string): Summary | undefined => summaries.find((s) => s.workload === workload && s.clients === clients && s.target === target);
  const goals: GoalCheck[] = [];
  const core = ['range-linearizable', 'put', 'txn'];
  for (const workload of core) {
    const gate = find(workload, 64, 'etcdgate')?.proxyCpuUs;
    const go = find(workload, 64, 'grpc-proxy')?.proxyCpuUs;
    const ratio = gate !== undefined && go !== undefined ? gate / go : undefined;
    goals.push({ goal: `${workload}: CPU/request ≤ 0.8× grpc-proxy's`, measured: ratio === undefined ? '–' : `${fmt(ratio)}× (${fmt(gate, 0)} vs ${fmt(go, 0)} µs)`, met: ratio === undefined ? undefined : ratio <= 0.8 });
  }
  for (const workload of core) {
    const gate = find(workload, 64, 'etcdgate');
    const go = find(workload, 64, 'grpc-proxy');
    goals.push({
      goal: `${workload}: throughput ratio to direct ≥ grpc-proxy's`,
      measured: gate === undefined || go === undefined ? '–' : `${fmt(gate.ratio)} vs ${fmt(go.ratio)}`,
      met: gate === undefined || go === undefined ? undefined : gate.ratio >= go.ratio,
    });
  }
  for (const workload of core) {
    const gate = find(workload, 1, 'etcdgate')?.addedP50Ms;
    const go = find(workload, 1, 'grpc-proxy')?.addedP50Ms;
    goals.push({
      goal: `${workload}: added p50 at 1 client ≤ grpc-proxy's`,
      measured: gate === undefined || go === undefined ? '–' : `${fmt(gate, 3)} vs ${fmt(go, 3)} ms`,
      met: gate === undefined || go === undefined ? undefined : gate <= go,
    });
  }
  const hot = find('range-hot', 64, 'etcdgate-cache');
  if (hot !== undefined) goals.push({ goal: 'serializable hot key with the cache ≥ 3× direct', measured: `${fmt(hot.ratio)}× (load generator ${fmt(hot.loadgenCores)} cores)`, met: hot.ratio >= 3 });
  const gateWatch = watch.filter((w) => w.target === 'etcdgate');
  if (gateWatch.length > 0) {
    const allDelivered = gateWatch.every((w) => w.complete && w.inOrder);
    goals.push({ goal: 'watch fan-out: every event delivered, in order', measured: allDelivered ? 'yes' : 'no', met: allDelivered });
    const cpu = median(gateWatch.map((w) => w.proxyCpuUs).filter((v): v is number => v !== undefined));
    const goCpu = median(watch.filter((w) => w.target === 'grpc-proxy').map((w) => w.proxyCpuUs).filter((v): v is number => v !== undefined));
    goals.push({ goal: "watch fan-out: CPU per event ≤ grpc-proxy's", measured: `${fmt(cpu)} vs ${fmt(goCpu)} µs`, met: Number.isFinite(cpu) && Number.isFinite(goCpu) ? cpu <= goCpu : undefined });
    const p99 = median(gateWatch.map((w) => w.p99Ms));
    const direct = median(watch.filter((w) => w.target === 'direct').map((w) => w.p99Ms));
    goals.push({ goal: 'watch fan-out: p99 delivery ≤ 1.2× direct', measured: `${fmt(p99)} vs ${fmt(direct)} ms`, met: Number.isFinite(p99) && Number.isFinite(direct) ? p99 <= 1.2 * direct : undefined });
  }
  const mem = memory.find((m) => m.target === 'etcdgate');
  if (mem !== undefined) {
    goals.push({ goal: `${mem.watchers} watchers over ${mem.connections} connections: RSS ≤ ${memoryBoundMiB} MiB`, measured: `${mib(mem.rssWithWatchersBytes)} MiB`, met: mem.rssWithWatchersBytes <= memoryBoundMiB * 1024 * 1024 });
  }
  const audited = ['range-linearizable', 'range-serializable', 'put', 'txn', 'range-hot']
    .map((workload) => {
      const on = find(workload, 64, 'etcdgate');
      const off = find(workload, 64, 'etcdgate-audit-off');
      return on === undefined || off === undefined ? undefined : { workload, share: on.throughput / off.throughput };
    })
    .filter((entry): entry is { workload: string; share: number } => entry !== undefined);
  if (audited.length > 0) {
    const worst = audited.reduce((a, b) => (b.share < a.share ? b : a));
    goals.push({ goal: 'audit on ≥ 0.95 of audit off (throughput, every workload)', measured: `worst ${fmt(worst.share)} (${worst.workload})`, met: worst.share >= 0.95 });
  }
  for (const workload of ['put', 'range-linearizable', 'range-serializable']) {
    const plain = find(workload, 64, 'etcdgate');
    const sealed = find(workload, 64, 'etcdgate-encrypted');
    if (plain === undefined || sealed === undefined) continue;
    const share = sealed.throughput / plain.throughput;
    const added = sealed.proxyCpuUs !== undefined && plain.proxyCpuUs !== undefined ? sealed.proxyCpuUs - plain.proxyCpuUs : undefined;
    goals.push({ goal: `${workload}: encrypted ≥ 0.90 of unencrypted throughput`, measured: `${fmt(share)} (CPU ${added === undefined ? '–' : `${added >= 0 ? '+' : ''}${fmt(added, 0)}`} µs/req)`, met: share >= 0.9 });
  }
  return goals;
}

/** The Markdown report. */
export function markdown(run: { readonly command: string; readonly date: string; readonly host: string; readonly notes: readonly string[] }, summaries: readonly Summary[], watch: readonly WatchPoint[], memory: readonly MemoryPoint[], goals: readonly GoalCheck[]): string {
  const lines: string[] = [];
  lines.push(`Benchmark run ${run.date} on ${run.host}: \`${run.command}\``, '');
  for (const note of run.notes) lines.push(`- ${note}`);
  lines.push('', '| workload | clients | target | req/s | ratio to direct | p50 ms | p99 ms | added p50 ms | proxy CPU µs/req | etcd CPU µs/req | load gen cores | errors |');
  lines.push('|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const s of summaries) {
    lines.push(`| ${s.workload} | ${s.clients} | ${s.target} | ${fmt(s.throughput, 0)} | ${fmt(s.ratio)} | ${fmt(s.p50Ms, 3)} | ${fmt(s.p99Ms, 3)} | ${s.target === 'direct' ? '' : fmt(s.addedP50Ms, 3)} | ${fmt(s.proxyCpuUs, 0)} | ${fmt(s.etcdCpuUs, 0)} | ${fmt(s.loadgenCores)} | ${s.errors} |`);
  }
  if (watch.length > 0) {
    lines.push('', '| watch fan-out target | round | watchers × puts | delivered | in order | events/s | p50 ms | p99 ms | proxy CPU µs/event |');
    lines.push('|---|---:|---|---:|---|---:|---:|---:|---:|');
    for (const w of watch) {
      lines.push(`| ${w.target} | ${w.round} | ${w.watchers} × ${w.puts} | ${w.delivered}/${w.expected} | ${w.inOrder ? 'yes' : 'NO'} | ${fmt(w.eventsPerSecond, 0)} | ${fmt(w.p50Ms)} | ${fmt(w.p99Ms)} | ${fmt(w.proxyCpuUs)} |`);
    }
  }
  if (memory.length > 0) {
    lines.push('', '| memory target | watchers | connections | created | RSS before MiB | RSS with watchers MiB |');
    lines.push('|---|---:|---:|---:|---:|---:|');
    for (const m of memory) lines.push(`| ${m.target} | ${m.watchers} | ${m.connections} | ${m.created} | ${mib(m.rssBeforeBytes)} | ${mib(m.rssWithWatchersBytes)} |`);
  }
  lines.push('', '| goal | measured | met |', '|---|---|---|');
  for (const g of goals) lines.push(`| ${g.goal} | ${g.measured} | ${g.met === undefined ? '–' : g.met ? 'yes' : 'no'} |`);
  return `${lines.join('\n')}\n`;
}

const COLORS: Readonly<Record<string, string>> = {
  'grpc-proxy': '#6b7280',
  etcdgate: '#2563eb',
  'etcdgate-audit-off': '#93c5fd',
  'etcdgate-cache': '#16a34a',
  'etcdgate-baseline': '#f59e0b',
  'etcdgate-encrypted': '#9333ea',
};

function escapeXml(text: string): string {
  return text.replace(/[<>&"]/gu, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;' })[c] ?? c);
}

/** A grouped bar chart: one group per workload×clients, one bar per proxy, height = throughput ratio to direct. */
export function svgChart(summaries: readonly Summary[], title: string): string {
  const proxies = Object.keys(COLORS).filter((t) => summaries.some((s) => s.target === t));
  const groups: { label: string; bars: { target: string; ratio: number }[] }[] = [];
  for (const s of summaries) {
    if (s.target !== 'direct') continue;
    const bars = proxies
      .map((target) => ({ target, ratio: summaries.find((x) => x.workload === s.workload && x.clients === s.clients && x.target === target)?.ratio ?? Number.NaN }))
      .filter((b) => Number.isFinite(b.ratio));
    if (bars.length > 0) groups.push({ label: `${s.workload} ×${s.clients}`, bars });
  }
  const maxRatio = Math.max(1.2, ...groups.flatMap((g) => g.bars.map((b) => b.ratio)));
  const top = Math.ceil(maxRatio * 5) / 5;
  const barWidth = 14;
  const groupGap = 18;
  const left = 48;
  const plotHeight = 220;
  const plotTop = 40;
  const groupWidth = proxies.length * barWidth + groupGap;
  const width = left + Math.max(1, groups.length) * groupWidth + 20;
  const height = plotTop + plotHeight + 110;
  const y = (ratio: number): number => plotTop + plotHeight - (ratio / top) * plotHeight;
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="11">`);
  out.push(`<rect width="100%" height="100%" fill="#fff"/>`);
  out.push(`<text x="${left}" y="18" font-size="13" font-weight="bold">${escapeXml(title)}</text>`);
  for (let tick = 0; tick <= top + 1e-9; tick += top > 2 ? 0.5 : 0.2) {
    const ty = y(tick);
    out.push(`<line x1="${left}" x2="${width - 10}" y1="${ty.toFixed(1)}" y2="${ty.toFixed(1)}" stroke="#e5e7eb"/>`);
    out.push(`<text x="${left - 6}" y="${(ty + 4).toFixed(1)}" text-anchor="end">${tick.toFixed(1)}</text>`);
  }
  for (const [ratio, label, color] of [[1, 'direct etcd', '#111'], [0.8, 'goal 0.8', '#dc2626']] as const) {
    const ty = y(ratio).toFixed(1);
    out.push(`<line x1="${left}" x2="${width - 10}" y1="${ty}" y2="${ty}" stroke="${color}" stroke-dasharray="4 3"/>`);
    out.push(`<text x="${width - 12}" y="${Number(ty) - 3}" text-anchor="end" fill="${color}">${label}</text>`);
  }
  groups.forEach((group, gi) => {
    const gx = left + gi * groupWidth + groupGap / 2;
    group.bars.forEach((bar) => {
      const bx = gx + proxies.indexOf(bar.target) * barWidth;
      const by = y(Math.min(bar.ratio, top));
      out.push(`<rect x="${bx}" y="${by.toFixed(1)}" width="${barWidth - 2}" height="${(plotTop + plotHeight - by).toFixed(1)}" fill="${COLORS[bar.target] ?? '#000'}"><title>${escapeXml(`${group.label} ${bar.target}: ${bar.ratio.toFixed(2)}`)}</title></rect>`);
    });
    const lx = gx + (proxies.length * barWidth) / 2;
    const ly = plotTop + plotHeight + 8;
    out.push(`<text x="${lx}" y="${ly}" transform="rotate(40 ${lx} ${ly})">${escapeXml(group.label)}</text>`);
  });
  proxies.forEach((target, i) => {
    const lx = left + i * 150;
    out.push(`<rect x="${lx}" y="26" width="10" height="10" fill="${COLORS[target] ?? '#000'}"/><text x="${lx + 14}" y="35">${escapeXml(target)}</text>`);
  });
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}
