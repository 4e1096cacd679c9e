package conformance

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jhump/protoreflect/v2/grpcreflect"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/oe-rt/oe-rt/client"
)

// discover asks the runtime's server reflection, where it offers it, which
// services it serves (reported either way). With Config.Service set and no
// Schema, the service's descriptor is fetched the same way and becomes the
// schema the suite calls with; a service the reflection does not know is
// reported as not served, and the call checks do not run. An error means
// the configuration cannot work at all (--service without --proto against
// a runtime with no reflection).
func (r *runner) discover(inst *instance) error {
	ctx, cancel := context.WithTimeout(r.ctx, 3*time.Second)
	defer cancel()
	rc := grpcreflect.NewClientAuto(ctx, inst.conn)
	defer rc.Reset()
	names, err := rc.ListServices()
	wantService := r.cfg.Service != "" && r.cfg.Schema == nil
	if err != nil {
		if wantService {
			return &ConfigError{Err: fmt.Errorf("--service %s without --proto needs server reflection, which the runtime does not offer (%v): pass --proto FILE", r.cfg.Service, err)}
		}
		return nil
	}
	for _, n := range names {
		r.reflection = append(r.reflection, string(n))
	}
	if !wantService {
		return nil
	}
	fd, err := rc.FileContainingSymbol(protoreflect.FullName(r.cfg.Service))
	var sd protoreflect.ServiceDescriptor
	if err == nil {
		sd = fd.Services().ByName(protoreflect.FullName(r.cfg.Service).Name())
	}
	if sd == nil {
		r.mu.Lock()
		r.noService = fmt.Sprintf("the runtime does not serve %s: its server reflection lists %s", r.cfg.Service, strings.Join(r.reflection, ", "))
		r.noServiceBy = "the services its server reflection lists"
		r.mu.Unlock()
		return nil
	}
	schema, err := client.FromService(sd)
	if err != nil {
		return &ConfigError{Err: fmt.Errorf("--service %s: %w", r.cfg.Service, err)}
	}
	r.schemaMu.Lock()
	r.schemaSet = schema
	r.schemaMu.Unlock()
	inst.useSchema(schema)
	return nil
}
