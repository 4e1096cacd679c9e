package conformance

import (
	"errors"
	"fmt"
	"go/ast"
	"go/build"
	"go/parser"
	"go/token"
	"go/types"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The checks' door into the engine is the check context: a check's
// function (any function or method, outside checkctx.go, that takes a
// *checkCtx) names no runner and takes no lock, and an instance's state
// changes only in the instance's own methods. The compiler's type checker
// reads the package's files, so that a check reaching past the door is
// found by type, not by spelling.

// TestChecksSeeOnlyTheirContext fails when a check reaches past its
// context, or code other than an instance's methods writes an instance's
// fields or takes its lock.
func TestChecksSeeOnlyTheirContext(t *testing.T) {
	t.Parallel()
	files := packageFiles(t)
	assert.Empty(t, seamViolations(t, files), "the checks' door is the check context (checkctx.go); instance state changes in instance methods")
}

// TestSeamTestFindsAHostileCheck: a check that takes the runner's lock,
// reads the runner through a helper, writes an instance's field and takes
// its lock is found, each way.
func TestSeamTestFindsAHostileCheck(t *testing.T) {
	t.Parallel()
	files := packageFiles(t)
	files["hostile.go"] = `package conformance

func checkHostile(c *checkCtx) Outcome {
	c.r.mu.Lock()
	c.r.mu.Unlock()
	r := c.r
	_ = r
	c.inst.asked = "by a check"
	c.inst.mu.Lock()
	c.inst.mu.Unlock()
	return pass("")
}

func (r *runner) hostileRunner(inst *instance) {
	inst.end = nil
}
`
	got := strings.Join(seamViolations(t, files), "\n")
	assert.Contains(t, got, "hostile.go:4:")
	assert.Contains(t, got, "checkHostile names the runner")
	assert.Contains(t, got, "hostile.go:8:")
	assert.Contains(t, got, "checkHostile writes instance.asked outside the instance's methods")
	assert.Contains(t, got, "checkHostile takes instance.mu outside the instance's methods")
	assert.Contains(t, got, "hostileRunner writes instance.end outside the instance's methods")
}

// packageFiles reads the package's non-test Go files for this platform.
func packageFiles(t *testing.T) map[string]string {
	t.Helper()
	ents, err := os.ReadDir(".")
	require.NoError(t, err)
	files := map[string]string{}
	for _, e := range ents {
		name := e.Name()
		if !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			continue
		}
		if ok, err := build.Default.MatchFile(".", name); err != nil || !ok {
			continue
		}
		b, err := os.ReadFile(filepath.Join(".", name))
		require.NoError(t, err)
		files[name] = string(b)
	}
	require.Contains(t, files, "checkctx.go")
	return files
}

// noImports makes every import fail: the checker then knows the package's
// own types (the runner, the instance, the check context) exactly, which
// is all the rules need, in milliseconds.
type noImports struct{}

func (noImports) Import(string) (*types.Package, error) { return nil, errors.New("not loaded") }

// seamViolations type-checks files (name: source) as the package and
// returns what breaks the rules, as "file:line: words".
func seamViolations(t *testing.T, files map[string]string) []string {
	t.Helper()
	fset := token.NewFileSet()
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	var parsed []*ast.File
	for _, n := range names {
		f, err := parser.ParseFile(fset, n, files[n], parser.SkipObjectResolution)
		require.NoError(t, err)
		parsed = append(parsed, f)
	}
	info := &types.Info{Types: map[ast.Expr]types.TypeAndValue{}, Selections: map[*ast.SelectorExpr]*types.Selection{}}
	conf := types.Config{Importer: noImports{}, Error: func(error) {}}
	pkg, _ := conf.Check("github.com/oe-rt/oe-rt/conformance", fset, parsed, info)
	lookup := func(name string) types.Type {
		o := pkg.Scope().Lookup(name)
		require.NotNil(t, o, "type %s", name)
		return o.Type()
	}
	runnerT, instT, endT, ctxT := lookup("runner"), lookup("instance"), lookup("instanceEnd"), lookup("checkCtx")
	is := func(typ, named types.Type) bool {
		if p, ok := typ.(*types.Pointer); ok {
			typ = p.Elem()
		}
		return types.Identical(typ, named)
	}
	takesCtx := func(fd *ast.FuncDecl) bool {
		var fields []*ast.Field
		if fd.Recv != nil {
			fields = append(fields, fd.Recv.List...)
		}
		fields = append(fields, fd.Type.Params.List...)
		for _, f := range fields {
			if tv, ok := info.Types[f.Type]; ok && is(tv.Type, ctxT) {
				return true
			}
		}
		return false
	}
	instanceMethod := func(fd *ast.FuncDecl) bool {
		if fd.Recv == nil || len(fd.Recv.List) == 0 {
			return false
		}
		tv, ok := info.Types[fd.Recv.List[0].Type]
		return ok && is(tv.Type, instT)
	}
	var out []string
	for i, f := range parsed {
		file := names[i]
		for _, d := range f.Decls {
			fd, ok := d.(*ast.FuncDecl)
			if !ok || fd.Body == nil {
				continue
			}
			check := file != "checkctx.go" && takesCtx(fd)
			// The instance's own file (its constructors) and its methods
			// may change it.
			inst := file == "instance.go" || instanceMethod(fd)
			report := func(n ast.Node, words string) {
				out = append(out, fmt.Sprintf("%s: %s %s", fset.Position(n.Pos()), fd.Name.Name, words))
			}
			instField := func(e ast.Expr) (string, bool) {
				sel, ok := e.(*ast.SelectorExpr)
				if !ok {
					return "", false
				}
				s, ok := info.Selections[sel]
				if !ok || s.Kind() != types.FieldVal {
					return "", false
				}
				switch {
				case is(s.Recv(), instT):
					return "instance." + sel.Sel.Name, true
				case is(s.Recv(), endT):
					return "instanceEnd." + sel.Sel.Name, true
				}
				return "", false
			}
			ast.Inspect(fd.Body, func(n ast.Node) bool {
				switch n := n.(type) {
				case ast.Expr:
					if tv, ok := info.Types[n]; check && ok && tv.Type != nil && is(tv.Type, runnerT) {
						report(n, "names the runner: a check reaches the engine through its context's methods (checkctx.go)")
						return false
					}
					if sel, ok := n.(*ast.SelectorExpr); ok && !inst {
						if name, ok := instField(sel); ok && sel.Sel.Name == "mu" {
							report(n, "takes "+name+" outside the instance's methods")
						}
					}
				case *ast.AssignStmt:
					if inst || n.Tok == token.DEFINE {
						return true
					}
					for _, lhs := range n.Lhs {
						if name, ok := instField(lhs); ok {
							report(lhs, "writes "+name+" outside the instance's methods")
						}
					}
				case *ast.IncDecStmt:
					if name, ok := instField(n.X); ok && !inst {
						report(n.X, "writes "+name+" outside the instance's methods")
					}
				}
				return true
			})
		}
	}
	return out
}
