/**
 * What one append of an audit batch costs the process, written the two ways Node offers:
 * fs.write (asynchronous, through libuv's thread pool) and fs.writeSync. The file sink
 * (src/audit/sinks/file.ts) chose by these figures. CPU is the process's own user+system
 * time, so the thread pool's share is counted too.
 *
 *   node --import ./scripts/ts-loader.mjs bench/fs-write.ts [bytes] [writes]
 */
import { closeSync, mkdtempSync, openSync, rmSync, write, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

const bytes = Number(process.argv[2] ?? 3000);
const writes = Number(process.argv[3] ?? 20_000);
const dir = mkdtempSync(path.join(tmpdir(), 'etcdgate-fs-write-'));
const fd = openSync(path.join(dir, 'audit.jsonl'), 'a', 0o600);
const batch = Buffer.alloc(bytes, 0x61);

function report(name: string, cpu: NodeJS.CpuUsage, wallMs: number): void {
  const cpuUs = (cpu.user + cpu.system) / writes;
  process.stdout.write(`${name.padEnd(14)} ${cpuUs.toFixed(1).padStart(6)} µs CPU per write, ${((wallMs * 1000) / writes).toFixed(1).padStart(6)} µs wall\n`);
}

function appendAsync(): Promise<void> {
  return new Promise((resolve, reject) => {
    write(fd, batch, 0, batch.length, null, (error) => (error === null ? resolve() : reject(error)));
  });
}

try {
  process.stdout.write(`${writes} appends of ${bytes} bytes\n`);
  let cpu = process.cpuUsage();
  let wall = performance.now();
  for (let i = 0; i < writes; i++) await appendAsync();
  report('fs.write', process.cpuUsage(cpu), performance.now() - wall);

  cpu = process.cpuUsage();
  wall = performance.now();
  for (let i = 0; i < writes; i++) writeSync(fd, batch);
  report('fs.writeSync', process.cpuUsage(cpu), performance.now() - wall);
} finally {
  closeSync(fd);
  rmSync(dir, { recursive: true, force: true });
}
