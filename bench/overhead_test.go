package bench

// Benchmarks of the load generator's own cost. Run them with
//
//	go test -run '^$' -bench . -benchmem ./bench/
//
// BenchmarkCall compares one call the way the generator makes it (request
// encoded once, reply not decoded) with the same call through client.Call
// (encode and decode every time), both over loopback to the reference
// runtime in this process; the difference is what the generator saves per
// call. BenchmarkRecord is the cost of counting one call's latency.

import (
	"context"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/oe-rt/oe-rt/client"
	"github.com/oe-rt/oe-rt/serve"
)

func serveForBench(b *testing.B) string {
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- serve.Run(ctx, serve.Options{Address: "127.0.0.1:0", Ready: func(a net.Addr) { ready <- a.String() }})
	}()
	b.Cleanup(func() {
		cancel()
		<-done
	})
	select {
	case a := <-ready:
		return a
	case err := <-done:
		b.Fatal(err)
	case <-time.After(10 * time.Second):
		b.Fatal("serve did not start")
	}
	return ""
}

func BenchmarkCall(b *testing.B) {
	addr := serveForBench(b)
	conn, err := client.Dial(addr, client.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	payload := RandomPayload("1k", 1024).Data
	msg := &client.Message{ID: 1, Topic: "oe-rt/bench", Payload: payload, FunctionName: "echo", FunctionInvokeID: "oe-rt-bench"}
	ctx := context.Background()

	b.Run("pre-encoded", func(b *testing.B) {
		r := &runner{cfg: Config{Schema: client.OpenEdge(), Function: "echo"}, method: client.OpenEdge().FullMethod()}
		r.opts = []grpc.CallOption{grpc.ForceCodecV2(codec{})}
		raw, err := r.encode(payload)
		if err != nil {
			b.Fatal(err)
		}
		req := newRequest(raw)
		var resp response
		b.ReportAllocs()
		for b.Loop() {
			if err := conn.Invoke(ctx, r.method, req, &resp, r.opts...); err != nil {
				b.Fatal(err)
			}
		}
		if resp.size < len(payload) {
			b.Fatalf("reply of %d bytes for a %d-byte echo", resp.size, len(payload))
		}
	})
	b.Run("client.Call", func(b *testing.B) {
		c := client.New(conn, nil)
		b.ReportAllocs()
		for b.Loop() {
			if _, err := c.Call(ctx, msg); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkRecord(b *testing.B) {
	w := &worker{rec: &recorder{hist: newHistogram()}, recording: true}
	lat := 730 * time.Microsecond
	b.ReportAllocs()
	for b.Loop() {
		w.record(lat, nil)
		lat += time.Microsecond
		if lat > 50*time.Millisecond {
			lat = 100 * time.Microsecond
		}
	}
}

// BenchmarkRun is a whole run of b.N calls by one caller: the generator and
// the runtime together, per call.
func BenchmarkRun(b *testing.B) {
	addr := serveForBench(b)
	cfg := NewConfig()
	cfg.Address = addr
	cfg.Concurrency = 1
	cfg.Payloads = []Payload{RandomPayload("1k", 1024)}
	b.ReportAllocs()
	b.ResetTimer()
	cfg.Total = b.N
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		b.Fatal(err)
	}
	if rep.OK != int64(b.N) {
		b.Fatalf("%d of %d calls ok", rep.OK, b.N)
	}
}
