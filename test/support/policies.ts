/** Policies shared by integration test files that need nothing more particular. */

/** `root` may read and write everything; `tenant-b` only keys under `/t/`. */
export const ROOT_AND_TENANT_B = {
  roles: {
    root: { keys: [{ all: true, access: 'readwrite' }] },
    tenant: { keys: [{ prefix: '/t/', access: 'readwrite' }] },
  },
  bindings: [
    { match: { cn: 'root' }, roles: ['root'] },
    { match: { cn: 'tenant-b' }, roles: ['tenant'] },
  ],
};
