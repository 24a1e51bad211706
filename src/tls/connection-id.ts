/**
 * Ids of verified client connections, as audit records carry them
 * (`etcdgate.connection_id`): a random prefix chosen once per process and a counter, so
 * ids are unique across restarts and hosts in practice, sortable within a process, and
 * cost one increment each. The `connection.open` record with that id holds the client
 * certificate in full; every call record on the connection names it.
 */
import { randomBytes } from 'node:crypto';

/** Returns a generator of connection ids: 12 hex digits of process prefix, "-", a hex counter. */
export function connectionIds(): () => string {
  const prefix = randomBytes(6).toString('hex');
  let counter = 0;
  return () => {
    counter += 1;
    return `${prefix}-${counter.toString(16)}`;
  };
}
