package client

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/bufbuild/protocompile"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/dynamicpb"

	"github.com/oe-rt/oe-rt/internal/convention"
	"github.com/oe-rt/oe-rt/proto/baetyl"
	"github.com/oe-rt/oe-rt/proto/openedge"
)

// Schema describes the Call method a runtime serves: its full gRPC method
// name and the message types of request and response. The fields of
// FunctionMessage are found by name, so a runtime's own .proto works as long
// as it keeps the convention's field names (matched without regard to case or
// underscores: Payload, payload and PAYLOAD are the same field).
type Schema struct {
	method   protoreflect.MethodDescriptor
	request  protoreflect.MessageType
	response protoreflect.MessageType
	reqField fieldSet
	resField fieldSet
}

type fieldSet struct {
	id, qos, topic, payload, timestamp, function, invoke protoreflect.FieldDescriptor
}

// OpenEdge is the schema of the OpenEdge convention: openedge.Function/Call.
func OpenEdge() *Schema {
	s, err := newSchema(openedge.File_openedge_function_proto.Services().ByName("Function").Methods().ByName("Call"), protoregistry.GlobalTypes)
	if err != nil {
		panic(err) // the compiled-in descriptor is known to be good
	}
	return s
}

// Baetyl is the schema of the Baetyl convention: baetyl.Function/Call, whose
// message adds Timestamp.
func Baetyl() *Schema {
	s, err := newSchema(baetyl.File_baetyl_function_proto.Services().ByName("Function").Methods().ByName("Call"), protoregistry.GlobalTypes)
	if err != nil {
		panic(err)
	}
	return s
}

// ForProfile is the schema the function manager of the profile's era
// calls: /<its proto package>.Function/Call.
func ForProfile(p convention.Profile) *Schema {
	if s, ok := eraSchemas[p.Info().ProtoPackage]; ok {
		return s()
	}
	return OpenEdge()
}

// eraSchemas are the compiled-in schemas by proto package
// (convention.EraInfo.ProtoPackage).
var eraSchemas = map[string]func() *Schema{"openedge": OpenEdge, "baetyl": Baetyl}

// FromService builds a schema from a service descriptor, obtained for example
// from a parsed .proto file or from server reflection. The method is Call, or
// the service's only method.
func FromService(sd protoreflect.ServiceDescriptor) (*Schema, error) {
	md := sd.Methods().ByName("Call")
	if md == nil {
		if sd.Methods().Len() != 1 {
			return nil, fmt.Errorf("service %s has no method Call", sd.FullName())
		}
		md = sd.Methods().Get(0)
	}
	return newSchema(md, nil)
}

// LoadProto parses a .proto file at run time and returns the schema of the
// named service (its full name, e.g. "openedge.Function"; empty means the
// file's only service). Imports are resolved relative to the file's directory
// and importPaths; the well-known types are always available.
func LoadProto(ctx context.Context, file, service string, importPaths ...string) (*Schema, error) {
	if _, err := os.Stat(file); err != nil {
		return nil, fmt.Errorf("load proto: %w", err)
	}
	dir, base := filepath.Split(file)
	if dir == "" {
		dir = "."
	}
	c := protocompile.Compiler{
		Resolver: protocompile.WithStandardImports(&protocompile.SourceResolver{
			ImportPaths: append([]string{dir}, importPaths...),
		}),
	}
	files, err := c.Compile(ctx, base)
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", file, err)
	}
	svcs := files[0].Services()
	var sd protoreflect.ServiceDescriptor
	switch {
	case service != "":
		sd = svcs.ByName(protoreflect.FullName(service).Name())
		if sd == nil || (strings.Contains(service, ".") && string(sd.FullName()) != service) {
			return nil, fmt.Errorf("%s has no service %q (it has: %s)", file, service, names(svcs))
		}
	case svcs.Len() == 1:
		sd = svcs.Get(0)
	default:
		return nil, fmt.Errorf("%s has %d services (%s): choose one with --service", file, svcs.Len(), names(svcs))
	}
	return FromService(sd)
}

func names(svcs protoreflect.ServiceDescriptors) string {
	var out []string
	for i := 0; i < svcs.Len(); i++ {
		out = append(out, string(svcs.Get(i).FullName()))
	}
	if len(out) == 0 {
		return "none"
	}
	return strings.Join(out, ", ")
}

func newSchema(md protoreflect.MethodDescriptor, types *protoregistry.Types) (*Schema, error) {
	if md.IsStreamingClient() || md.IsStreamingServer() {
		return nil, fmt.Errorf("method %s is streaming; the convention's Call is unary", md.FullName())
	}
	s := &Schema{method: md}
	s.request = messageType(md.Input(), types)
	s.response = messageType(md.Output(), types)
	var err error
	if s.reqField, err = findFields(md.Input()); err != nil {
		return nil, err
	}
	if s.resField, err = findFields(md.Output()); err != nil {
		return nil, err
	}
	return s, nil
}

func messageType(md protoreflect.MessageDescriptor, types *protoregistry.Types) protoreflect.MessageType {
	if types != nil {
		if mt, err := types.FindMessageByName(md.FullName()); err == nil {
			return mt
		}
	}
	return dynamicpb.NewMessageType(md)
}

func norm(s string) string { return strings.ToLower(strings.ReplaceAll(s, "_", "")) }

func findFields(md protoreflect.MessageDescriptor) (fieldSet, error) {
	var fs fieldSet
	byName := map[string]protoreflect.FieldDescriptor{}
	for i := 0; i < md.Fields().Len(); i++ {
		f := md.Fields().Get(i)
		byName[norm(string(f.Name()))] = f
	}
	want := []struct {
		name  string
		kinds []protoreflect.Kind
		dst   *protoreflect.FieldDescriptor
		must  bool
	}{
		{"ID", []protoreflect.Kind{protoreflect.Uint64Kind, protoreflect.Fixed64Kind}, &fs.id, false},
		{"QOS", []protoreflect.Kind{protoreflect.Uint32Kind, protoreflect.Fixed32Kind}, &fs.qos, false},
		{"Topic", []protoreflect.Kind{protoreflect.StringKind}, &fs.topic, false},
		{"Payload", []protoreflect.Kind{protoreflect.BytesKind}, &fs.payload, true},
		{"Timestamp", []protoreflect.Kind{protoreflect.Sint64Kind, protoreflect.Int64Kind, protoreflect.Sfixed64Kind}, &fs.timestamp, false},
		{"FunctionName", []protoreflect.Kind{protoreflect.StringKind}, &fs.function, true},
		{"FunctionInvokeID", []protoreflect.Kind{protoreflect.StringKind}, &fs.invoke, false},
	}
	for _, w := range want {
		f, ok := byName[norm(w.name)]
		if !ok {
			if w.must {
				return fs, fmt.Errorf("message %s has no field %s", md.FullName(), w.name)
			}
			continue
		}
		if f.Cardinality() == protoreflect.Repeated || !kindIn(f.Kind(), w.kinds) {
			return fs, fmt.Errorf("field %s of %s is %s, want %s", f.Name(), md.FullName(), f.Kind(), w.kinds[0])
		}
		*w.dst = f
	}
	return fs, nil
}

func kindIn(k protoreflect.Kind, ks []protoreflect.Kind) bool {
	for _, x := range ks {
		if k == x {
			return true
		}
	}
	return false
}

// FullMethod is the gRPC method path, e.g. "/openedge.Function/Call".
func (s *Schema) FullMethod() string {
	return "/" + string(s.method.Parent().FullName()) + "/" + string(s.method.Name())
}

// Service is the full name of the service, e.g. "openedge.Function".
func (s *Schema) Service() string { return string(s.method.Parent().FullName()) }

// Method is the descriptor of the Call method.
func (s *Schema) Method() protoreflect.MethodDescriptor { return s.method }

// HasTimestamp reports whether the request carries Timestamp (Baetyl).
func (s *Schema) HasTimestamp() bool { return s.reqField.timestamp != nil }

// Encode builds a request message from m.
func (s *Schema) Encode(m *Message) protoreflect.ProtoMessage {
	pm := s.request.New()
	set := func(f protoreflect.FieldDescriptor, v protoreflect.Value, zero bool) {
		if f != nil && !zero {
			pm.Set(f, v)
		}
	}
	fs := s.reqField
	set(fs.id, protoreflect.ValueOfUint64(m.ID), m.ID == 0)
	set(fs.qos, protoreflect.ValueOfUint32(m.QOS), m.QOS == 0)
	set(fs.topic, protoreflect.ValueOfString(m.Topic), m.Topic == "")
	set(fs.payload, protoreflect.ValueOfBytes(m.Payload), len(m.Payload) == 0)
	set(fs.timestamp, protoreflect.ValueOfInt64(m.Timestamp), m.Timestamp == 0)
	set(fs.function, protoreflect.ValueOfString(m.FunctionName), m.FunctionName == "")
	set(fs.invoke, protoreflect.ValueOfString(m.FunctionInvokeID), m.FunctionInvokeID == "")
	return pm.Interface()
}

// NewResponse returns an empty response message to decode into.
func (s *Schema) NewResponse() protoreflect.ProtoMessage { return s.response.New().Interface() }

// Decode reads a response message into a Message.
func (s *Schema) Decode(pm protoreflect.ProtoMessage) *Message {
	r := pm.ProtoReflect()
	fs := s.resField
	m := &Message{}
	if fs.id != nil {
		m.ID = r.Get(fs.id).Uint()
	}
	if fs.qos != nil {
		m.QOS = uint32(r.Get(fs.qos).Uint())
	}
	if fs.topic != nil {
		m.Topic = r.Get(fs.topic).String()
	}
	m.Payload = r.Get(fs.payload).Bytes()
	if fs.timestamp != nil {
		m.Timestamp = r.Get(fs.timestamp).Int()
	}
	m.FunctionName = r.Get(fs.function).String()
	if fs.invoke != nil {
		m.FunctionInvokeID = r.Get(fs.invoke).String()
	}
	return m
}
