"""Drives etcdgate with Debian's python3-etcd3 (gRPC through grpcio), an etcd client
independent of ours and of grpc-js. Usage: python-etcd3-client.py HOST PORT CA CERT KEY PREFIX
FOREIGN_KEY. Prints one JSON object: what each call returned, or the error it raised."""
import json
import sys
import threading

import etcd3

host, port, ca, cert, key, prefix, foreign = sys.argv[1:8]
client = etcd3.client(host=host, port=int(port), ca_cert=ca, cert_cert=cert, cert_key=key, timeout=10,
                      grpc_options=[('grpc.ssl_target_name_override', 'localhost')])
out = {}

client.put(prefix + 'a', 'value-a')
value, meta = client.get(prefix + 'a')
out['get'] = value.decode()

ok, _ = client.transaction(
    compare=[client.transactions.value(prefix + 'a') == 'value-a'],
    success=[client.transactions.put(prefix + 'b', 'from-txn')],
    failure=[],
)
out['txn'] = ok
out['txn_value'] = client.get(prefix + 'b')[0].decode()

lease = client.lease(60)
client.put(prefix + 'leased', 'x', lease=lease)
out['lease_ttl'] = lease.refresh()[0].TTL
out['lease_keys'] = sorted(k.decode() for k in lease.keys)

events = []
done = threading.Event()
def on_event(response):
    for event in response.events:
        events.append(event.key.decode())
        done.set()
watch_id = client.add_watch_prefix_callback(prefix + 'w/', on_event)
client.put(prefix + 'w/1', 'watched')
done.wait(10)
client.cancel_watch(watch_id)
out['watched'] = events

out['range'] = sorted(m.key.decode() for _, m in client.get_prefix(prefix))
client.delete(prefix + 'a')
out['deleted'] = client.get(prefix + 'a')[0] is None

try:
    client.get(foreign)
    out['foreign'] = 'allowed'
except Exception as error:  # etcd3 raises its own exception types per gRPC status
    out['foreign'] = type(error).__name__ + ': ' + str(error)

print(json.dumps(out))
