/**
 * Runs the repository's TypeScript in place, for dev scripts that share test/support/
 * with the tests (whose files find protos/ and certs-dev/ relative to their own path,
 * so they must run from where they are): `node --import ./scripts/ts-loader.mjs FILE.ts`.
 * Imports written as `./x.js` resolve to `./x.ts` when that file exists; .ts files are
 * transpiled one by one with the TypeScript compiler (no type check: `npm run typecheck`
 * does that). On the main thread this module registers itself as the module hooks.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { register } from 'node:module';
import { URL, fileURLToPath } from 'node:url';
import { isMainThread } from 'node:worker_threads';

if (isMainThread) register(import.meta.url);

/** Maps a relative `.js` import to the `.ts` file beside it, outside node_modules. */
export async function resolve(specifier, context, nextResolve) {
  const parent = context.parentURL;
  if (parent?.startsWith('file:') && specifier.startsWith('.') && specifier.endsWith('.js')) {
    const candidate = new URL(`${specifier.slice(0, -3)}.ts`, parent);
    if (!candidate.pathname.includes('/node_modules/') && existsSync(fileURLToPath(candidate))) {
      return { url: candidate.href, format: 'module', shortCircuit: true };
    }
  }
  return nextResolve(specifier, context);
}

/** Transpiles a .ts file to an ES module (types erased, nothing else changed). */
export async function load(url, context, nextLoad) {
  if (!url.startsWith('file:') || !url.endsWith('.ts')) return nextLoad(url, context);
  const { default: ts } = await import('typescript');
  const fileName = fileURLToPath(url);
  const output = ts.transpileModule(await readFile(fileName, 'utf8'), {
    fileName,
    compilerOptions: {
      module: ts.ModuleKind.ESNext,
      target: ts.ScriptTarget.ES2022,
      verbatimModuleSyntax: true,
      inlineSourceMap: true,
    },
  });
  return { format: 'module', source: output.outputText, shortCircuit: true };
}
