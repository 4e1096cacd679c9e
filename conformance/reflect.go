package conformance

import (
	"context"
	"fmt"
	"time"

	"github.com/jhump/protoreflect/v2/grpcreflect"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/oe-rt/oe-rt/client"
)

// discover asks the runtime's server reflection, where it offers it, which
// services it serves. With Config.Service set and no Schema, the service's
// descriptor is fetched the same way and becomes the schema the suite calls
// with. It returns the services (nil when reflection is not offered).
func (r *runner) discover(ctx context.Context, inst *instance) ([]string, error) {
	cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	rc := grpcreflect.NewClientAuto(cctx, inst.conn)
	defer rc.Reset()
	names, err := rc.ListServices()
	if err != nil {
		if r.cfg.Service != "" && r.cfg.Schema == nil {
			return nil, fmt.Errorf("--service %s without --proto needs server reflection, which the runtime does not offer (%v): pass --proto FILE", r.cfg.Service, err)
		}
		return nil, nil
	}
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = string(n)
	}
	if r.cfg.Service == "" || r.cfg.Schema != nil {
		return out, nil
	}
	fd, err := rc.FileContainingSymbol(protoreflect.FullName(r.cfg.Service))
	if err != nil {
		return out, fmt.Errorf("server reflection does not know service %s (it lists %v): %w", r.cfg.Service, out, err)
	}
	sd := fd.Services().ByName(protoreflect.FullName(r.cfg.Service).Name())
	if sd == nil {
		return out, fmt.Errorf("server reflection has no service %s", r.cfg.Service)
	}
	schema, err := client.FromService(sd)
	if err != nil {
		return out, err
	}
	inst.cli = client.New(inst.conn, schema)
	r.cfg.Schema = schema
	return out, nil
}
