package runtimeproc

import (
	"context"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc"
)

// How long after a runtime starts listening WaitReady sees it ready: the
// lateness a load test's startup figure and conform's start.time carry.
// The runtime listens 500 ms after the wait began, as one that starts
// slowly does (a runtime that listens before the first attempt is seen at
// once).
func BenchmarkReadyAfterListen(b *testing.B) {
	var late time.Duration
	for b.Loop() {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close()
		conn := dial(b, addr)
		s := grpc.NewServer()
		listened := make(chan time.Time, 1)
		time.AfterFunc(500*time.Millisecond, func() {
			l, err := net.Listen("tcp", addr)
			listened <- time.Now()
			if err == nil {
				go s.Serve(l)
			}
		})
		if _, err := WaitReady(context.Background(), conn, Wait{Addr: addr, Timeout: 10 * time.Second}); err != nil {
			b.Fatal(err)
		}
		late += time.Since(<-listened)
		conn.Close()
		s.Stop()
	}
	b.ReportMetric(float64(late.Microseconds())/1000/float64(b.N), "ms-late")
}
