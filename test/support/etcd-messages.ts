/**
 * Encodes etcd request messages from plain objects with protobufjs and etcdgate's own
 * protos/, so decoder tests feed real wire bytes (the same a client would send).
 */
import protobuf from 'protobufjs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const protoRoot = fileURLToPath(new URL('../../protos/', import.meta.url));

let root: protobuf.Root | undefined;

function loadRoot(): protobuf.Root {
  if (root !== undefined) return root;
  const r = new protobuf.Root();
  r.resolvePath = (_origin, target) => path.join(protoRoot, target);
  r.loadSync(
    ['etcdserverpb/rpc.proto', 'v3lockpb/v3lock.proto', 'v3electionpb/v3election.proto'],
    { keepCase: true },
  );
  root = r;
  return r;
}

/** Throws on a property that is not a field of `t` (fromObject would silently drop it). */
function checkFields(t: protobuf.Type, value: Record<string, unknown>, where: string): void {
  for (const [name, v] of Object.entries(value)) {
    const field = t.fields[name];
    if (field === undefined) throw new Error(`${where}: ${t.name} has no field ${name}`);
    field.resolve();
    const sub = field.resolvedType;
    if (!(sub instanceof protobuf.Type)) continue;
    for (const item of Array.isArray(v) ? v : [v]) {
      checkFields(sub, item as Record<string, unknown>, `${where}.${name}`);
    }
  }
}

/** Encodes `value` as the fully-qualified message `type` (e.g. "etcdserverpb.PutRequest"). */
export function encode(type: string, value: Record<string, unknown>): Buffer {
  const t = loadRoot().lookupType(type);
  checkFields(t, value, type);
  const message = t.fromObject(value);
  const err = t.verify(message);
  if (err !== null) throw new Error(`${type}: ${err}`);
  return Buffer.from(t.encode(message).finish());
}

/** Decodes `bytes` as the fully-qualified message `type` into a plain object (bytes as Buffer, int64 as string). */
export function decode(type: string, bytes: Buffer): Record<string, unknown> {
  const t = loadRoot().lookupType(type);
  return t.toObject(t.decode(bytes), { longs: String, bytes: Buffer, defaults: false }) as Record<string, unknown>;
}
