"""An independent HPACK implementation for etcdgate's differential tests: Debian's
python3-hpack, driven by JSON lines on stdin, one answer line per request on stdout.

Strings travel as JSON strings holding one char per octet (latin1), so any octet survives.
Requests (every one carries "conn", a connection id; its encoder and decoder are made on
first use):
  {"op": "encode", "conn": c, "headers": [[name, value, neverIndexed], ...],
   "huffman": bool, "tableSize": n or null}
      -> {"ok": true, "block": hex, "table": [[name, value], ...]}   (table newest first)
  {"op": "decode", "conn": c, "block": hex, "maxTableSize": n}
      -> {"ok": true, "headers": [[name, value, neverIndexed], ...], "table": [...]}
  {"op": "close", "conn": c} -> {"ok": true}
  {"op": "version", "conn": 0} -> {"ok": true, "version": "4.0.0"}
Any failure -> {"ok": false, "error": "..."}.
"""
import json
import sys

import hpack

encoders = {}
decoders = {}


def latin1(b):
    return bytes(b).decode('latin1')


def table_of(header_table):
    return [[latin1(n), latin1(v)] for (n, v) in header_table.dynamic_entries]


def handle(req):
    conn = req['conn']
    op = req['op']
    if op == 'encode':
        enc = encoders.setdefault(conn, hpack.Encoder())
        if req.get('tableSize') is not None:
            enc.header_table_size = req['tableSize']
        headers = []
        for name, value, never in req['headers']:
            n, v = name.encode('latin1'), value.encode('latin1')
            headers.append(hpack.NeverIndexedHeaderTuple(n, v) if never else hpack.HeaderTuple(n, v))
        block = enc.encode(headers, huffman=req['huffman'])
        return {'ok': True, 'block': block.hex(), 'table': table_of(enc.header_table)}
    if op == 'decode':
        dec = decoders.get(conn)
        if dec is None:
            dec = decoders[conn] = hpack.Decoder(max_header_list_size=1 << 30)
        dec.max_allowed_table_size = req['maxTableSize']
        headers = dec.decode(bytes.fromhex(req['block']), raw=True)
        out = [[latin1(h[0]), latin1(h[1]), not h.indexable] for h in headers]
        return {'ok': True, 'headers': out, 'table': table_of(dec.header_table)}
    if op == 'version':
        return {'ok': True, 'version': hpack.__version__}
    if op == 'close':
        encoders.pop(conn, None)
        decoders.pop(conn, None)
        return {'ok': True}
    raise ValueError('unknown op ' + str(op))


for line in sys.stdin:
    try:
        answer = handle(json.loads(line))
    except Exception as err:  # every failure is reported to the test, which decides
        answer = {'ok': False, 'error': type(err).__name__ + ': ' + str(err)}
    sys.stdout.write(json.dumps(answer) + '\n')
    sys.stdout.flush()
