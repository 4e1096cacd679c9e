package conformance

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/oe-rt/oe-rt/client"
	"github.com/oe-rt/oe-rt/internal/launch"
	bytesize "github.com/oe-rt/oe-rt/internal/size"
)

// config.baetyl-forms: the runtime's own configuration, rewritten into the
// forms Baetyl's Python and Node runtimes read (server.timeout as an
// integer of nanoseconds, server.message.length.max as an integer of
// bytes; docs/convention.md, "Value forms"), given to a fresh instance as
// the original was given. It must start, answer and stop as the main
// instance did: a user who writes one service.yml for Baetyl's runtime and
// this one writes these forms.

const formsCheckID = "config.baetyl-forms"

var configBaetylForms = &Check{ID: formsCheckID, Level: SHOULD, phase: phaseEnd, Needs: []string{"echo"}, Requires: []Requirement{formsScenario},
	Description: "starts, answers and stops with its configuration in the forms Baetyl's runtimes read (timeout in integer nanoseconds, sizes in integer bytes)",
	Hint: "Read a duration given as an integer as nanoseconds (Baetyl's runtimes divide server.timeout by 1e9) and a size given as an integer as bytes, besides 30s and 4m (docs/convention.md, \"Value forms\").\n" +
		"grpc-go: strconv.ParseInt before time.ParseDuration. Python: int(text) / 1e9 when the text is all digits. Node: Number(text) / 1e6 milliseconds.",
	run: checkBaetylForms}

// formsScenario runs late, once the address-alias instances are done, so
// that neither slows the other's start.
var formsScenario = &Scenario[*formsResult]{Name: "the Baetyl-forms instance", late: true, after: aliasScenario, run: runFormsScenario}

// formsResult is what the scenario did.
type formsResult struct {
	skip     string // why it could not run ("" = it ran)
	harness  error
	from     string   // where the configuration came from
	changes  []string // "server.timeout: 5s → 5000000000"
	file     string   // the rewritten configuration
	inst     *instance
	notReady error
	callErr  *callErr
	exited   bool
	exit     string
	clean    bool // exit status 0 after SIGTERM
	took     time.Duration
}

// formsSource finds the runtime's configuration file: --config, a -c or
// --config argument (its index in the arguments, and whether it is
// -c=FILE), else the profile's default file in --dir.
func (r *runner) formsSource() (file, from string, arg int, inline bool) {
	if r.cfg.ConfigFile != "" {
		return r.cfg.ConfigFile, "--config " + r.cfg.ConfigFile, -1, false
	}
	args := r.cfg.Command[1:]
	for i, a := range args {
		for _, flag := range []string{"-c", "--config", "-config"} {
			switch {
			case a == flag && i+1 < len(args):
				return r.inDir(args[i+1]), flag + " " + args[i+1], i + 1, false
			case strings.HasPrefix(a, flag+"="):
				return r.inDir(strings.TrimPrefix(a, flag+"=")), a, i, true
			}
		}
	}
	def := configPath(string(r.cfg.Profile))
	if st, err := os.Stat(filepath.Join(r.master.src, def)); err == nil && st.Mode().IsRegular() {
		return filepath.Join(r.master.src, def), def + " (read without -c)", -1, false
	}
	return "", "", -1, false
}

// inDir resolves a path as the runtime sees it from its working directory.
func (r *runner) inDir(p string) string {
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(r.master.src, p)
}

func runFormsScenario(r *runner) *formsResult {
	res := &formsResult{}
	select {
	case <-r.schemaReady:
	case <-r.ctx.Done():
	}
	if r.ctx.Err() != nil {
		res.skip = "interrupted"
		return res
	}
	if r.first.readyErr != nil {
		res.skip = "the runtime did not start (see start.listen)"
		return res
	}
	arg, inline, ok := r.formsConfig(res)
	if !ok {
		return res
	}
	inst, err := r.startProcess(r.formsOpts(res.file, arg, inline))
	if err != nil {
		res.harness = err
		return res
	}
	res.inst = inst
	inst.checked(formsCheckID)
	defer inst.proc.Cleanup()
	r.driveForms(inst, res)
	return res
}

// formsConfig writes the runtime's configuration in Baetyl's forms to
// res.file and says where the runtime's arguments name it (arg: its index,
// or -1; inline: -c=FILE). It reports false when the scenario stops there:
// res says why, or that the main instance already ran with these forms.
func (r *runner) formsConfig(res *formsResult) (arg int, inline, ok bool) {
	file, from, arg, inline := r.formsSource()
	var b []byte
	if file == "" {
		// No configuration: one with only these keys, where the master
		// would mount one.
		from = ""
	} else {
		var err error
		if b, err = os.ReadFile(file); err != nil {
			res.skip = fmt.Sprintf("read the configuration: %v", err)
			return arg, inline, false
		}
	}
	res.from = from
	grace := min(5*time.Second, r.cfg.Grace/2)
	out, changes, err := baetylForms(b, grace, int64(r.cfg.maxMessageSize()))
	if err != nil {
		res.skip = fmt.Sprintf("the configuration %s: %v", file, err)
		return arg, inline, false
	}
	res.changes = changes
	if len(changes) == 0 && file != "" {
		return arg, inline, false // the main instance already ran with these forms
	}
	res.file = filepath.Join(r.master.root, "baetyl-forms", "service.yml")
	if err := os.MkdirAll(filepath.Dir(res.file), 0o755); err != nil {
		res.harness = err
		return arg, inline, false
	}
	if err := os.WriteFile(res.file, out, 0o644); err != nil {
		res.harness = err
		return arg, inline, false
	}
	return arg, inline, true
}

// formsOpts starts the instance with the rewritten file: in its arguments
// where they named the configuration, else where the master puts it.
func (r *runner) formsOpts(file string, arg int, inline bool) instanceOpts {
	o := instanceOpts{role: formsCheckID}
	if arg >= 0 {
		o.args = append([]string(nil), r.cfg.Command[1:]...)
		given := file
		if r.contained() {
			// In a container the file is where the master mounts the
			// configuration.
			o.config, given = file, containerConfigPath(string(r.cfg.Profile))
		}
		if inline {
			flag, _, _ := strings.Cut(o.args[arg], "=")
			o.args[arg] = flag + "=" + given
		} else {
			o.args[arg] = given
		}
	} else {
		o.config = file
	}
	return o
}

// driveForms waits for the instance, calls its echo and stops it as the
// master does, recording in res what it did.
func (r *runner) driveForms(inst *instance, res *formsResult) {
	started := time.Now()
	err := inst.waitReady(r.ctx, r.cfg.StartTimeout, nil)
	if err == nil {
		// The connection must be this instance's: on a busy machine
		// another program may hold the port conform picked, and a runtime
		// still starting would take SIGTERM before it handles it.
		err = inst.waitOwnListener(r.ctx, r.cfg.StartTimeout-time.Since(started))
	}
	if err != nil {
		inst.notReady(err)
		if budgetSpent(err) {
			res.skip = fmt.Sprintf("conform's time budget ran out while instance #%d was starting (%s after its exec)", inst.n, time.Since(started).Round(time.Millisecond))
		} else {
			res.notReady = err
		}
		inst.kill("it did not become ready")
		return
	}
	m := &client.Message{FunctionName: r.cfg.fn("echo"), Payload: []byte(`{"forms":true}`)}
	if _, cerr := inst.call(r.ctx, formsCheckID, m, callTimeout); cerr != nil && cerr.kind != kindMissing {
		if r.ctx.Err() != nil {
			res.skip = fmt.Sprintf("conform's time budget ran out during the echo call to instance #%d", inst.n)
		} else {
			res.callErr = cerr
		}
		inst.kill(formsCheckID + " was done with it")
		return
	}
	// As the master stops it: SIGTERM to the PID; a runtime that misreads
	// its grace period fails here (Baetyl's own Python runtime, given 5s).
	inst.ask("SIGTERM (" + formsCheckID + ")")
	sent := time.Now()
	_ = inst.proc.Signal(syscall.SIGTERM)
	select {
	case <-inst.proc.Done():
		res.exited = true
	case <-time.After(r.cfg.Grace):
	case <-r.ctx.Done():
		// The budget (or an interrupt): the grace period is not waited
		// out past it, and what was not seen is not judged.
		if r.parent.Err() == nil {
			res.skip = fmt.Sprintf("conform's time budget ran out %s after SIGTERM to instance #%d, before it exited or its grace period of %s was over", time.Since(sent).Round(time.Millisecond), inst.n, r.cfg.Grace)
		}
	}
	if !res.exited {
		inst.kill(fmt.Sprintf("it had not exited %s after SIGTERM", r.cfg.Grace))
	}
	if x, ok := inst.proc.ExitStatus(); ok {
		res.exit, res.clean, res.took = x.String(), x.Signal == 0 && x.Code == 0, x.At.Sub(sent)
	}
}

// baetylForms rewrites a configuration's server.timeout into integer
// nanoseconds and server.message.length.max into integer bytes, adding
// them (grace, maxMsg) where they are missing. changes lists what it did;
// none when the configuration already had those forms.
func baetylForms(b []byte, grace time.Duration, maxMsg int64) ([]byte, []string, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return nil, nil, fmt.Errorf("not YAML: %w", err)
	}
	if doc.Kind != yaml.DocumentNode {
		doc = yaml.Node{Kind: yaml.DocumentNode}
	}
	if len(doc.Content) == 0 { // empty, or only comments
		doc.Content = []*yaml.Node{{Kind: yaml.MappingNode, Tag: "!!map"}}
	}
	root := doc.Content[0]
	if root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
		*root = yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
	}
	if root.Kind != yaml.MappingNode {
		return nil, nil, errors.New("not a YAML mapping")
	}
	var changes []string
	server := mappingAt(root, "server")
	if server == nil {
		return nil, nil, errors.New("server is not a mapping")
	}
	set := func(m *yaml.Node, key, path, value string, convert func(string) (string, error)) error {
		v := valueAt(m, key)
		if v == nil {
			m.Content = append(m.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: key}, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!int", Value: value})
			changes = append(changes, fmt.Sprintf("%s: %s (added)", path, value))
			return nil
		}
		if v.Kind != yaml.ScalarNode {
			return fmt.Errorf("%s is not a value", path)
		}
		if _, err := strconv.ParseInt(strings.TrimSpace(v.Value), 10, 64); err == nil {
			return nil // already an integer
		}
		n, err := convert(v.Value)
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		changes = append(changes, fmt.Sprintf("%s: %s → %s", path, v.Value, n))
		*v = yaml.Node{Kind: yaml.ScalarNode, Tag: "!!int", Value: n, Line: v.Line, Column: v.Column}
		return nil
	}
	err := set(server, "timeout", "server.timeout", strconv.FormatInt(int64(grace), 10), func(s string) (string, error) {
		d, err := time.ParseDuration(strings.TrimSpace(s))
		return strconv.FormatInt(int64(d), 10), err
	})
	if err != nil {
		return nil, nil, err
	}
	length := mappingAt(mappingAt(server, "message"), "length")
	if length == nil {
		return nil, nil, errors.New("server.message.length is not a mapping")
	}
	err = set(length, "max", "server.message.length.max", strconv.FormatInt(maxMsg, 10), func(s string) (string, error) {
		n, err := bytesize.Parse(s)
		return strconv.FormatInt(n, 10), err
	})
	if err != nil {
		return nil, nil, err
	}
	var out bytes.Buffer
	enc := yaml.NewEncoder(&out)
	enc.SetIndent(2)
	if err := enc.Encode(&doc); err != nil {
		return nil, nil, err
	}
	return out.Bytes(), changes, nil
}

// valueAt is the value of key in the mapping m, or nil.
func valueAt(m *yaml.Node, key string) *yaml.Node {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

// mappingAt returns the mapping at key in m, made when missing (or null);
// nil when m is nil or key holds something else.
func mappingAt(m *yaml.Node, key string) *yaml.Node {
	if m == nil {
		return nil
	}
	v := valueAt(m, key)
	switch {
	case v == nil:
		v = &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
		m.Content = append(m.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: key}, v)
	case v.Kind == yaml.ScalarNode && v.Tag == "!!null":
		*v = yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
	case v.Kind != yaml.MappingNode:
		return nil
	}
	return v
}

func checkBaetylForms(c *checkCtx) Outcome {
	res := resultOf(c, formsScenario)
	given := func() string {
		if res.from == "" {
			keys := strings.ReplaceAll(strings.Join(res.changes, ", "), " (added)", "")
			at := configPath(string(c.cfg().Profile))
			if c.contained() {
				at = containerConfigPath(string(c.cfg().Profile))
			}
			return fmt.Sprintf("given no configuration, so conform wrote one of Baetyl's forms with only %s (at %s: %s)", keys, at, res.file)
		}
		return fmt.Sprintf("given %s rewritten into Baetyl's forms (%s; the copy: %s)", res.from, strings.Join(res.changes, ", "), res.file)
	}
	switch {
	case res.skip != "":
		return notRun("%s", res.skip)
	case res.harness != nil:
		return harnessError("could not start an instance with the rewritten configuration: %v", res.harness)
	case len(res.changes) == 0:
		return pass("%s already writes server.timeout and server.message.length.max as Baetyl's runtimes read them (integer nanoseconds, integer bytes), and the main instance ran with it", res.from)
	case res.notReady != nil:
		o := fail("%s, instance #%d did not start: %v", given(), res.inst.n, res.notReady)
		o.output = res.inst.lines(res.inst.proc.StartTime(), time.Now())
		return o
	case res.callErr != nil:
		return c.failed(res.callErr, fmt.Sprintf("%s, the echo call to instance #%d", given(), res.inst.n))
	case !res.exited:
		return fail("%s, instance #%d did not exit within %s of SIGTERM (%s)", given(), res.inst.n, c.cfg().Grace, res.exit)
	case !res.clean:
		o := fail("%s, instance #%d ended with %s at SIGTERM, not exit status 0", given(), res.inst.n, res.exit)
		o.output = res.inst.lines(res.inst.proc.StartTime(), time.Now())
		return o
	}
	return pass("instance #%d %s started, answered echo and exited 0 %s after SIGTERM", res.inst.n, given(), res.took.Round(time.Millisecond))
}

// waitOwnListener waits (up to d) until the instance's own process tree
// listens on its address.
func (inst *instance) waitOwnListener(ctx context.Context, d time.Duration) error {
	deadline := time.Now().Add(max(d, time.Second))
	for {
		addrs, err := launch.TreeListeners(inst.proc.PID())
		if err == nil && slices.ContainsFunc(addrs, inst.listensOn) {
			return nil
		}
		if inst.proc.Exited() {
			return fmt.Errorf("it exited (%s) while another program answered on %s", inst.exitWords(), inst.addr)
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("a connection to %s opened, but the runtime itself does not listen there (another program holds the port)", inst.addr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
