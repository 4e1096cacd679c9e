package cli

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/spf13/cobra"
	"google.golang.org/grpc/status"

	"github.com/oe-rt/oe-rt/client"
	"github.com/oe-rt/oe-rt/internal/convention"
)

func init() { register(newCallCmd) }

type callOptions struct {
	address    string
	id         uint64
	qos        uint32
	topic      string
	invokeID   string
	timestamp  int64
	timeout    time.Duration
	maxMsgSize int64
	output     string
	tls        tlsFlags
	schema     schemaFlags
}

func newCallCmd(e *env) *cobra.Command {
	o := &callOptions{maxMsgSize: convention.DefaultMaxMessageSize}
	cmd := &cobra.Command{
		Use:   "call [flags] FUNCTION [PAYLOAD]",
		Short: "Invoke one Call on a runtime",
		Long: `Invoke one Call on a function runtime and print the response payload.

PAYLOAD is sent as raw bytes: the argument itself, @FILE for a file's
contents, or - for standard input; no payload sends an empty one. The
address is --address, else the same environment variables serve reads.
The raw response payload goes to standard output; with -o json the whole
response message, the status and the latency. Any error exits non-zero with
the gRPC code and message on standard error.`,
		Example: `  oe-rt call --address 127.0.0.1:50051 echo 'hello'
  oe-rt call --address 127.0.0.1:50051 context '{"a":1}' --topic t --qos 1 -o json
  oe-rt call --address 127.0.0.1:50051 echo @image.png > out.png
  echo '{"ms":100}' | oe-rt call --address 127.0.0.1:50051 sleep -`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runCall(cmd, e, o, args)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.address, "address", "", "runtime `host:port` (default: $"+strings.Join(convention.AddressEnv, ", $")+")")
	f.Uint64Var(&o.id, "id", 0, "message ID")
	f.Uint32Var(&o.qos, "qos", 0, "message QOS")
	f.StringVar(&o.topic, "topic", "", "message topic")
	f.StringVar(&o.invokeID, "invoke-id", "", "FunctionInvokeID (default: a fresh random id)")
	f.Int64Var(&o.timestamp, "timestamp", 0, "message Timestamp (baetyl profile only)")
	f.DurationVar(&o.timeout, "timeout", 30*time.Second, "deadline of the call, as the function manager sets it")
	f.Var(sizeValue{&o.maxMsgSize}, "max-msg-size", "largest message to send or receive, e.g. 4m or 4194304")
	f.StringVarP(&o.output, "output", "o", "raw", "output `format`: raw (the payload) or json (message, status, latency)")
	o.tls.add(f)
	o.schema.add(f)
	return cmd
}

// callResult is the -o json output.
type callResult struct {
	Function  string         `json:"function"`
	Address   string         `json:"address"`
	Status    callStatus     `json:"status"`
	LatencyMS float64        `json:"latency_ms"`
	Response  *jsonMessage   `json:"response,omitempty"`
	Request   jsonMessageReq `json:"request"`
}

type callStatus struct {
	Code    string `json:"code"`
	Message string `json:"message,omitempty"`
}

type jsonMessageReq struct {
	ID               uint64 `json:"id"`
	QOS              uint32 `json:"qos"`
	Topic            string `json:"topic"`
	FunctionInvokeID string `json:"functionInvokeID"`
	PayloadBytes     int    `json:"payload_bytes"`
}

// jsonMessage shows a payload as a string when it is UTF-8 text and as hex
// when it is not.
type jsonMessage struct {
	ID               uint64 `json:"id"`
	QOS              uint32 `json:"qos"`
	Topic            string `json:"topic"`
	Timestamp        int64  `json:"timestamp,omitempty"`
	FunctionName     string `json:"functionName"`
	FunctionInvokeID string `json:"functionInvokeID"`
	Payload          string `json:"payload,omitempty"`
	PayloadHex       string `json:"payload_hex,omitempty"`
	PayloadBytes     int    `json:"payload_bytes"`
}

func runCall(cmd *cobra.Command, e *env, o *callOptions, args []string) error {
	if o.output != "raw" && o.output != "json" {
		return usageError("--output %q: want raw or json", o.output)
	}
	if o.timeout <= 0 {
		return usageError("--timeout must be positive")
	}
	addr := o.address
	if addr == "" {
		addr, _ = convention.Lookup(convention.AddressEnv, nil)
	}
	if addr == "" {
		return usageError("no address: pass --address or set %s", strings.Join(convention.AddressEnv, ", "))
	}
	payload, err := readPayload(args, e.stdin)
	if err != nil {
		return err
	}
	schema, err := o.schema.schema(cmd.Context())
	if err != nil {
		return err
	}
	if o.timestamp != 0 && !schema.HasTimestamp() {
		return usageError("--timestamp needs a schema with Timestamp (--profile baetyl)")
	}
	invokeID := o.invokeID
	if invokeID == "" {
		invokeID = newInvokeID()
	}
	conn, err := client.Dial(addr, client.Options{TLS: o.tls.config(), MaxMsgSize: int(o.maxMsgSize)})
	if err != nil {
		return usageError("%w", err)
	}
	defer conn.Close()
	req := &client.Message{ID: o.id, QOS: o.qos, Topic: o.topic, Payload: payload, Timestamp: o.timestamp, FunctionName: args[0], FunctionInvokeID: invokeID}
	ctx, cancel := contextWithTimeout(cmd, o.timeout)
	defer cancel()
	start := time.Now()
	res, callErr := client.New(conn, schema).Call(ctx, req)
	latency := time.Since(start)
	st := status.Convert(callErr)
	if o.output == "json" {
		out := callResult{
			Function: args[0], Address: addr,
			Status:    callStatus{Code: codeName(st.Code()), Message: st.Message()},
			LatencyMS: float64(latency.Microseconds()) / 1000,
			Request:   jsonMessageReq{ID: req.ID, QOS: req.QOS, Topic: req.Topic, FunctionInvokeID: invokeID, PayloadBytes: len(payload)},
		}
		if res != nil {
			out.Response = toJSONMessage(res)
		}
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(out); err != nil {
			return err
		}
	} else if callErr == nil {
		if _, err := e.stdout.Write(res.Payload); err != nil {
			return err
		}
	}
	if callErr != nil {
		return &ExitError{Code: ExitFailure, Err: fmt.Errorf("call %q at %s: %s: %s", args[0], addr, codeName(st.Code()), st.Message())}
	}
	return nil
}

func toJSONMessage(m *client.Message) *jsonMessage {
	j := &jsonMessage{ID: m.ID, QOS: m.QOS, Topic: m.Topic, Timestamp: m.Timestamp, FunctionName: m.FunctionName, FunctionInvokeID: m.FunctionInvokeID, PayloadBytes: len(m.Payload)}
	if utf8.Valid(m.Payload) {
		j.Payload = string(m.Payload)
	} else {
		j.PayloadHex = fmt.Sprintf("%x", m.Payload)
	}
	return j
}

// readPayload reads the payload argument: text, @FILE or - for stdin.
func readPayload(args []string, stdin io.Reader) ([]byte, error) {
	if len(args) < 2 {
		return nil, nil
	}
	p := args[1]
	switch {
	case p == "-":
		b, err := io.ReadAll(stdin)
		if err != nil {
			return nil, fmt.Errorf("read payload from standard input: %w", err)
		}
		return b, nil
	case strings.HasPrefix(p, "@"):
		b, err := os.ReadFile(p[1:])
		if err != nil {
			return nil, usageError("read payload: %w", err)
		}
		return b, nil
	}
	return []byte(p), nil
}

// newInvokeID returns a random version-4 UUID.
func newInvokeID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}
