package bench

import (
	"fmt"

	"google.golang.org/grpc/mem"
)

// request is a request message encoded once, before the run, and sent as
// is by every call: the generator spends no time marshalling. The buffer is
// a mem.SliceBuffer, whose reference counting is a no-op, so gRPC can share
// it between calls and goroutines without copying it.
type request struct {
	data mem.BufferSlice
}

func newRequest(b []byte) *request {
	return &request{data: mem.BufferSlice{mem.SliceBuffer(b)}}
}

// response receives a reply: only its size is kept, the bytes are not
// copied or decoded.
type response struct {
	size int
}

// codec writes a pre-encoded request and skips the reply. Its name is
// "proto" so that the content type on the wire is the usual
// application/grpc+proto (sent as application/grpc).
type codec struct{}

func (codec) Name() string { return "proto" }

func (codec) Marshal(v any) (mem.BufferSlice, error) {
	r, ok := v.(*request)
	if !ok {
		return nil, fmt.Errorf("bench codec: cannot marshal %T", v)
	}
	return r.data, nil
}

func (codec) Unmarshal(data mem.BufferSlice, v any) error {
	r, ok := v.(*response)
	if !ok {
		return fmt.Errorf("bench codec: cannot unmarshal into %T", v)
	}
	r.size = data.Len()
	return nil
}
