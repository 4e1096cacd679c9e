package cli

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/spf13/cobra"
	"google.golang.org/grpc/status"

	"github.com/oe-rt/oe-rt/client"
	"github.com/oe-rt/oe-rt/internal/convention"
)

// callOptions are oe-rt call's flags and arguments.
type callOptions struct {
	address    string
	id         uint64
	qos        uint32
	topic      string
	invokeID   string
	timestamp  int64
	timeout    time.Duration
	wait       time.Duration
	maxMsgSize int64
	format     string
	output     string
	tls        tlsFlags
	schema     schemaFlags

	function string
	payload  string // the PAYLOAD argument as given
	hasArg   bool   // PAYLOAD was given

	// Filled by check.
	addr    string
	tlsConf *client.TLS
}

func newCallCmd(e *env, runF func(context.Context, *callOptions) error) *cobra.Command {
	o := &callOptions{maxMsgSize: convention.DefaultMaxMessageSize}
	cmd := &cobra.Command{
		Use:   "call [flags] FUNCTION [PAYLOAD]",
		Short: "Invoke one Call on a runtime",
		Long: `Invoke one Call on a function runtime and print the response payload.

PAYLOAD is sent as raw bytes: the argument itself, @FILE for a file's
contents, or - for standard input; no payload sends an empty one. The
address is --address, else the same environment variables serve reads.
When nothing listens there, call fails at once; with --wait it waits for
the runtime, so that it can follow a runtime started in the background.

The raw response payload goes to standard output (or -o FILE); with
--format json the whole response message, the status and the latency.

Exit status: 0 when the call returned OK; 1 when it did not, or no runtime
listened (within --wait) or answered within --timeout (the gRPC code and
message go to standard error);
2 for bad flags or arguments, a missing @FILE or TLS file, no address or a
bad one, an output that could not be written, or an interruption.`,
		Example: `  oe-rt call --address 127.0.0.1:50051 echo 'hello'
  oe-rt call --address 127.0.0.1:50051 context '{"a":1}' --topic t --qos 1 --format json
  oe-rt call --address 127.0.0.1:50051 echo @in.bin -o out.bin
  echo '{"ms":100}' | oe-rt call --address 127.0.0.1:50051 sleep -
  oe-rt call --wait 10s --address 127.0.0.1:50051 echo hi   # a runtime started a moment ago`,
		Args: cobra.RangeArgs(1, 2),
		ValidArgsFunction: func(_ *cobra.Command, args []string, _ string) ([]cobra.Completion, cobra.ShellCompDirective) {
			if len(args) == 0 {
				return []cobra.Completion{"echo", "context", "none", "fail", "sleep"}, cobra.ShellCompDirectiveNoFileComp
			}
			return nil, cobra.ShellCompDirectiveDefault
		},
		RunE: runE(o, runF, func(ctx context.Context, o *callOptions) error { return runCall(ctx, e, o) }, nil),
	}
	f := cmd.Flags()
	f.StringVar(&o.address, "address", "", "runtime `host:port` (default: $"+strings.Join(convention.AddressEnv, ", $")+")")
	f.Uint64Var(&o.id, "id", 0, "message ID")
	f.Uint32Var(&o.qos, "qos", 0, "message QOS")
	f.StringVar(&o.topic, "topic", "", "message topic")
	f.StringVar(&o.invokeID, "invoke-id", "", "FunctionInvokeID (default: a fresh random id)")
	f.Int64Var(&o.timestamp, "timestamp", 0, "message Timestamp (baetyl profile only)")
	f.DurationVar(&o.timeout, "timeout", 30*time.Second, "deadline of the call, as the function manager sets it")
	f.DurationVar(&o.wait, "wait", 0, "wait up to `DURATION` for a runtime to listen at the address (default: fail at once when nothing listens)")
	f.Var(sizeValue{&o.maxMsgSize}, "max-msg-size", "largest response accepted, e.g. 4m or 4194304; requests may be up to 1.5x this plus 1k, so that the runtime's own limit answers them")
	f.StringVar(&o.format, "format", "raw", "output `format`: raw (the payload) or json (message, status, latency)")
	bindOutput(f, &o.output, "the output")
	o.tls.bind(f)
	o.schema.bind(f)
	completeFormats(cmd, formatRaw, formatJSON)
	o.tls.complete(cmd)
	o.schema.complete(cmd)
	for _, n := range []string{"address", "id", "qos", "topic", "invoke-id", "timestamp", "timeout", "wait", "max-msg-size"} {
		_ = cmd.RegisterFlagCompletionFunc(n, cobra.NoFileCompletions)
	}
	return cmd
}

// check fills FUNCTION and PAYLOAD from args and checks the options; every
// error is a usage error that names the flag or argument at fault.
func (o *callOptions) check(cmd *cobra.Command, args []string) error {
	o.function = args[0] // cobra's Args checked the count
	if len(args) > 1 {
		o.payload, o.hasArg = args[1], true
	}
	fs := cmd.Flags()
	if err := oneOf(fs, "format", o.format, "raw", "json"); err != nil {
		return err
	}
	if err := refuseFormatAsOutput(fs, o.output, "raw", "json"); err != nil {
		return err
	}
	if err := positive(fs, "timeout", o.timeout); err != nil {
		return err
	}
	if err := notNegative(fs, "wait", o.wait); err != nil {
		return err
	}
	if err := o.schema.checkProfile(); err != nil {
		return err
	}
	o.addr = o.address
	from := "--address"
	if o.addr == "" {
		var name string
		o.addr, name = convention.Lookup(convention.AddressEnv, nil)
		from = "$" + name
	}
	if o.addr == "" {
		return usageError("no address: pass --address or set %s", strings.Join(convention.AddressEnv, ", "))
	}
	if err := checkAddress(o.addr, from); err != nil {
		return err
	}
	var err error
	o.tlsConf, err = o.tls.config()
	return err
}

// callResult is the --format json output.
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

func runCall(ctx context.Context, e *env, o *callOptions) error {
	payload, err := o.readPayload(e.stdin)
	if err != nil {
		return err
	}
	schema, err := o.schema.schema(ctx)
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
	out, err := openOutput(o.output, e.stdout)
	if err != nil {
		return err
	}
	defer out.close()
	conn, err := client.Dial(o.addr, client.Options{TLS: o.tlsConf, MaxMsgSize: int(o.maxMsgSize)})
	if err != nil {
		return usageError("%w", err)
	}
	defer conn.Close()
	req := &client.Message{ID: o.id, QOS: o.qos, Topic: o.topic, Payload: payload, Timestamp: o.timestamp, FunctionName: o.function, FunctionInvokeID: invokeID}
	if err := waitListening(ctx, e.stderr, o.addr, o.wait); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	start := time.Now()
	var res *client.Message
	callErr := ctx.Err()
	if callErr == nil {
		res, callErr = client.New(conn, schema).Call(ctx, req)
	}
	latency := time.Since(start)
	st := status.Convert(callErr)
	if o.format == "json" {
		r := callResult{
			Function: o.function, Address: o.addr,
			Status:    callStatus{Code: client.CodeName(st.Code()), Message: st.Message()},
			LatencyMS: float64(latency.Microseconds()) / 1000,
			Request:   jsonMessageReq{ID: req.ID, QOS: req.QOS, Topic: req.Topic, FunctionInvokeID: invokeID, PayloadBytes: len(payload)},
		}
		if res != nil {
			r.Response = toJSONMessage(res)
		}
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		if err := enc.Encode(r); err != nil {
			return writeFailed("output", err)
		}
	} else if callErr == nil {
		p := res.Payload
		// On a terminal, a final newline, so that the prompt does not
		// follow the payload on its line; a file or a pipe gets the
		// payload as it is.
		if out.file == nil && isTerminal(out.w) && len(p) > 0 && p[len(p)-1] != '\n' {
			p = append(p[:len(p):len(p)], '\n')
		}
		if _, err := out.Write(p); err != nil {
			return writeFailed("output", err)
		}
	}
	if err := out.close(); err != nil {
		return writeFailed("output", err)
	}
	if callErr != nil {
		return failure(fmt.Errorf("call %q at %s: %s: %s%s", o.function, o.addr, client.CodeName(st.Code()), st.Message(), o.tlsHint(st.Message())))
	}
	return nil
}

// tlsHint suggests the likely cause of a failed handshake: TLS against a
// plaintext runtime, or plaintext against a TLS one.
func (o *callOptions) tlsHint(msg string) string {
	switch {
	case o.tlsConf != nil && (strings.Contains(msg, "first record does not look like a TLS handshake") || strings.Contains(msg, "tls:") || strings.Contains(msg, "handshake")):
		return "\n(TLS against a plaintext runtime? a runtime serves plaintext unless its configuration sets server.cert; drop --tls, --cacert and --insecure for a plaintext one)"
	case o.tlsConf == nil && (strings.Contains(msg, "server preface") || strings.Contains(msg, "EOF") || strings.Contains(msg, "handshake")):
		return "\n(plaintext against a TLS runtime? a runtime with server.cert in its configuration wants --cacert, or --insecure)"
	}
	return ""
}

// waitListening looks whether something accepts TCP connections at addr.
// When nothing does, it fails at once, unless wait is above zero: then it
// says so on stderr and polls every 20ms, at most for wait, so that a
// runtime started a moment before (in the background, by a script) is
// waited for, the way gRPC's wait-for-ready would. A runtime that is up
// but refuses the handshake (TLS against plaintext) is not waited for: the
// call fails with the handshake's error.
func waitListening(ctx context.Context, stderr io.Writer, addr string, wait time.Duration) error {
	hp := convention.HostPort(addr)
	dial := func(ctx context.Context) error {
		d := net.Dialer{Timeout: 5 * time.Second}
		c, err := d.DialContext(ctx, "tcp", hp)
		if err == nil {
			c.Close()
		}
		return err
	}
	err := dial(ctx)
	if err == nil {
		return nil
	}
	if wait <= 0 {
		return failure(fmt.Errorf("%s: %s; start the runtime first, or give --wait 10s to wait for it", addr, notListening(err)))
	}
	fmt.Fprintf(stderr, "oe-rt: nothing listens at %s yet: waiting up to %s (--wait) for a runtime to listen\n", addr, wait)
	wctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	last := err
	for {
		t := time.NewTimer(20 * time.Millisecond)
		select {
		case <-wctx.Done():
			t.Stop()
			if ctx.Err() != nil {
				return ctx.Err() // interrupted: exitCode says so
			}
			return failure(fmt.Errorf("%s: %s within --wait %s", addr, notListening(last), wait))
		case <-t.C:
		}
		err := dial(wctx)
		if err == nil {
			return nil
		}
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() {
			last = err // rather a refusal than the dial the deadline cut short
		}
	}
}

// notListening says what a failed TCP dial means.
func notListening(err error) string {
	if errors.Is(err, syscall.ECONNREFUSED) {
		return "nothing listens there (connection refused)"
	}
	return fmt.Sprintf("no connection: %v", err)
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

// readPayload reads the PAYLOAD argument: text, @FILE or - for stdin.
func (o *callOptions) readPayload(stdin io.Reader) ([]byte, error) {
	if !o.hasArg {
		return nil, nil
	}
	p := o.payload
	switch {
	case p == "-":
		b, err := io.ReadAll(stdin)
		if err != nil {
			return nil, usageError("read PAYLOAD from standard input: %w", err)
		}
		return b, nil
	case strings.HasPrefix(p, "@"):
		b, err := os.ReadFile(p[1:])
		if err != nil {
			return nil, usageError("read PAYLOAD: %w", err)
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
