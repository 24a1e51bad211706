/**
 * Prometheus's own tools from tests: whether a tool is installed, whether we run under
 * CI (where a missing tool must fail rather than skip), and `promtool check metrics`.
 */
import { spawn, spawnSync } from 'node:child_process';

/** True when `command --version` can be run (the tool is on PATH). */
export function commandPresent(command: string): boolean {
  return spawnSync(command, ['--version'], { stdio: 'ignore' }).error === undefined;
}

/** True when CI is set to anything but '' or 'false'. */
export function runningInCI(): boolean {
  const ci = process.env['CI'];
  return ci !== undefined && ci !== '' && ci !== 'false';
}

/** Runs `promtool check metrics` on `text`, returning its exit code and combined output. */
export function promtoolCheckMetrics(text: string): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('promtool', ['check', 'metrics'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, output }));
    child.stdin.end(text);
  });
}
