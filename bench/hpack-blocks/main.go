// Writes grpc-go-blocks.json, the header blocks bench/hpack.ts decodes: what grpc-go's
// HPACK encoder (golang.org/x/net/http2/hpack, which grpc-go uses) produces for 256
// requests on one connection, with the header list etcdctl 3.4.23 sends (captured from
// `etcdctl get` against a plain TCP listener), cycling Range/Put/Txn with a different
// grpc-timeout each time; and for 256 answers from a grpc-go server (headers, trailers).
//
// Regenerate with Debian's Go sources (golang-golang-x-net-dev):
//
//	cd bench/hpack-blocks && GO111MODULE=off GOPATH=/usr/share/gocode go run main.go
package main

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"

	"golang.org/x/net/http2/hpack"
)

func block(enc *hpack.Encoder, buf *bytes.Buffer, fields ...string) string {
	buf.Reset()
	for i := 0; i < len(fields); i += 2 {
		if err := enc.WriteField(hpack.HeaderField{Name: fields[i], Value: fields[i+1]}); err != nil {
			panic(err)
		}
	}
	return hex.EncodeToString(buf.Bytes())
}

func main() {
	paths := []string{"/etcdserverpb.KV/Range", "/etcdserverpb.KV/Put", "/etcdserverpb.KV/Txn"}
	var requests, responses []string
	var reqBuf, resBuf bytes.Buffer
	reqEnc := hpack.NewEncoder(&reqBuf)
	resEnc := hpack.NewEncoder(&resBuf)
	for i := 0; i < 256; i++ {
		timeout := fmt.Sprintf("%du", 4999000+(i*7919)%1000)
		requests = append(requests, block(reqEnc, &reqBuf,
			":method", "POST", ":scheme", "https", ":path", paths[i%3], ":authority", "127.0.0.1:2379",
			"content-type", "application/grpc", "user-agent", "grpc-go/1.33.3", "te", "trailers",
			"grpc-timeout", timeout, "client-api-version", "3.4"))
		responses = append(responses,
			block(resEnc, &resBuf, ":status", "200", "content-type", "application/grpc"),
			block(resEnc, &resBuf, "grpc-status", "0", "grpc-message", ""))
	}
	out, err := json.MarshalIndent(map[string][]string{"requests": requests, "responses": responses}, "", " ")
	if err != nil {
		panic(err)
	}
	if err := os.WriteFile("grpc-go-blocks.json", append(out, '\n'), 0o644); err != nil {
		panic(err)
	}
}
