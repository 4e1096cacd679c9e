// Package scaffold generates new function runtime projects from the
// templates built into oe-rt (package templates): `oe-rt new NAME --lang
// go|python|node`. Each generated project follows the runtime convention,
// ships the conformance fixtures and passes `oe-rt conform --strict` as
// generated.
//
// Generate renders the whole project in memory first (every .tmpl file with
// text/template and missingkey=error, parsed once), then writes it into a
// temporary directory next to the target and renames it into place, so a
// failure leaves no half-written project behind. The target directory must
// not exist or must be empty, unless Force is set; with Force, generated
// files replace existing files of the same name and other files are kept.
//
// File modes: files are written 0644 and directories 0755; the files listed
// under `executables` in the language's template.yml are written 0755 (see
// package templates for the template layout).
//
// The library works from plain Go programs and tests; the command layer
// (cmd/oe-rt/internal/cli/new.go) only maps flags onto Options and prints the Result.
package scaffold

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"text/template"

	"golang.org/x/mod/module"

	"github.com/oe-rt/oe-rt/internal/convention"
	"github.com/oe-rt/oe-rt/templates"
)

const tmplSuffix = ".tmpl"

// Options says what to generate and where.
type Options struct {
	// Name is the runtime's name: lowercase letters, digits and dashes,
	// starting with a letter (see ValidateName).
	Name string
	// Lang is the template: go, python or node (see Languages).
	Lang string
	// Dir is the directory to create; empty means ./Name.
	Dir string
	// Module is the Go module path of a Go project; empty means
	// example.com/Name. Only the go template uses it.
	Module string
	// Force allows a non-empty Dir: generated files replace files of the
	// same name, other files are kept.
	Force bool
	// DryRun renders the project and reports what would be written,
	// writing nothing.
	DryRun bool
	// OERTVersion is the version of oe-rt written into the project (the
	// CI workflow installs it); empty or "dev" means "latest".
	OERTVersion string
	// Templates is the template tree; nil means the templates built into
	// oe-rt.
	Templates fs.FS
}

// Data is what templates see.
type Data struct {
	// Name is the runtime's name.
	Name string
	// Module is the Go module path.
	Module string
	// OERTVersion is a version of oe-rt that `go install ...@` accepts.
	OERTVersion string
	// ValueForms is the convention's table of configuration value forms,
	// rendered into each project's configuration tests.
	ValueForms []convention.ValueForm
}

// Result describes a generated (or, with DryRun, a planned) project.
type Result struct {
	// Dir is the project directory as given (Options.Dir or ./Name).
	Dir string
	// Lang is the language used.
	Lang Language
	// Data is what the templates were rendered with.
	Data Data
	// Files lists the project's files, sorted by path.
	Files []File
	// DryRun reports that nothing was written.
	DryRun bool
	// NextSteps are the commands to run next, in the project directory.
	NextSteps []Step
	// OtherLang, with Force over a project of another language, is that
	// language, and OtherMarker the file that says so: its files stay
	// beside the new ones.
	OtherLang, OtherMarker string
}

// File is one generated file.
type File struct {
	// Path is slash-separated, relative to the project directory.
	Path string
	// Mode is 0644, or 0755 for executables.
	Mode fs.FileMode
	// Size in bytes.
	Size    int
	content []byte
}

// Step is one next step: a command and what it does.
type Step struct {
	// Doc says what the command does.
	Doc string
	// Run is the command, run in the project directory.
	Run string
}

var nameRE = regexp.MustCompile(`^[a-z][a-z0-9-]*$`)

// MaxNameLength bounds a runtime's name (a DNS label, so it fits in image
// and host names).
const MaxNameLength = 63

// ValidateName checks a runtime name: lowercase letters, digits and dashes,
// starting with a letter and not ending with a dash, at most 63
// characters. The name becomes a directory, a binary, an image and a
// package name, so nothing else (no dots, slashes or spaces) is allowed.
func ValidateName(name string) error {
	const rule = "use lowercase letters, digits and dashes, starting with a letter (e.g. myruntime or my-runtime)"
	switch {
	case name == "":
		return fmt.Errorf("the runtime needs a name: %s", rule)
	case len(name) > MaxNameLength:
		return fmt.Errorf("invalid name %q: longer than %d characters", name, MaxNameLength)
	case strings.ContainsAny(name, `/\`) || strings.Contains(name, ".."):
		return fmt.Errorf("invalid name %q: a name is not a path (use --dir to choose where the project goes); %s", name, rule)
	case name[0] < 'a' || name[0] > 'z':
		return fmt.Errorf("invalid name %q: it must start with a lowercase letter; %s", name, rule)
	case !nameRE.MatchString(name):
		return fmt.Errorf("invalid name %q: %s", name, rule)
	case strings.HasSuffix(name, "-"):
		return fmt.Errorf("invalid name %q: it must not end with a dash", name)
	}
	return nil
}

// OptionError reports Options that cannot work: a bad name, an unknown
// language, a bad module path. The command layer maps it to a usage error.
type OptionError struct{ Err error }

func (e *OptionError) Error() string { return e.Err.Error() }

// Unwrap returns the underlying error.
func (e *OptionError) Unwrap() error { return e.Err }

// Generate renders the template of opts.Lang into opts.Dir. On error
// nothing is left behind: neither the target directory (unless it existed)
// nor temporary files. ctx is checked between files.
func Generate(ctx context.Context, opts Options) (*Result, error) {
	if err := ValidateName(opts.Name); err != nil {
		return nil, &OptionError{err}
	}
	fsys := opts.Templates
	if fsys == nil {
		fsys = templates.FS
	}
	lang, err := lookupLanguage(fsys, opts.Lang)
	if err != nil {
		var nf *notFoundError
		if errors.As(err, &nf) {
			return nil, &OptionError{err}
		}
		return nil, err
	}
	data := Data{Name: opts.Name, Module: opts.Module, OERTVersion: opts.OERTVersion, ValueForms: convention.ValueForms}
	if data.Module == "" {
		data.Module = "example.com/" + opts.Name
	} else if lang.Name != "go" {
		return nil, &OptionError{fmt.Errorf("a module path is for the go template; the %s template has none", lang.Name)}
	} else if err := module.CheckImportPath(data.Module); err != nil {
		return nil, &OptionError{fmt.Errorf("invalid module path: %w", err)}
	}
	if data.OERTVersion == "" || data.OERTVersion == "dev" {
		data.OERTVersion = "latest"
	}
	dir := opts.Dir
	if dir == "" {
		dir = opts.Name
	}
	exists, err := checkTarget(dir, opts.Force)
	if err != nil {
		return nil, err
	}
	files, err := render(ctx, fsys, lang, data)
	if err != nil {
		return nil, err
	}
	res := &Result{Dir: dir, Lang: lang, Data: data, Files: files, DryRun: opts.DryRun}
	if exists {
		res.OtherLang, res.OtherMarker = otherLanguage(dir, lang.Name)
	}
	if res.NextSteps, err = nextSteps(lang, data); err != nil {
		return nil, err
	}
	if opts.DryRun {
		return res, nil
	}
	if err := write(ctx, dir, exists, files); err != nil {
		return nil, err
	}
	return res, nil
}

// languageMarkers are the files that say which language a project is in.
var languageMarkers = []struct{ lang, file string }{
	{"go", "go.mod"},
	{"node", "package.json"},
	{"python", "requirements.txt"},
}

// otherLanguage returns the language of the project already in dir, with
// the file that says so, when it is not lang.
func otherLanguage(dir, lang string) (other, marker string) {
	for _, m := range languageMarkers {
		if m.lang == lang {
			continue
		}
		if _, err := os.Stat(filepath.Join(dir, m.file)); err == nil {
			return m.lang, m.file
		}
	}
	return "", ""
}

// checkTarget refuses a target that is not a directory, or that is a
// non-empty directory without force. It reports whether it exists.
func checkTarget(dir string, force bool) (exists bool, err error) {
	st, err := os.Stat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("check target directory: %w", err)
	}
	if !st.IsDir() {
		return false, fmt.Errorf("target %s exists and is not a directory", dir)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return false, fmt.Errorf("check target directory: %w", err)
	}
	if len(entries) > 0 && !force {
		return false, fmt.Errorf("target directory %s is not empty (%d entries): choose another --dir, empty it, or pass --force to write over it", dir, len(entries))
	}
	return true, nil
}

// skipName reports names that are build or editor leftovers in a template
// directory, never template content (go:embed's all: would embed them).
func skipName(name string) bool {
	switch name {
	case "__pycache__", "node_modules", ".DS_Store", ".pytest_cache":
		return true
	}
	return strings.HasSuffix(name, ".pyc") || strings.HasSuffix(name, "~")
}

// render reads the language's tree, parses every .tmpl file once into one
// template set, and renders the project into memory.
func render(ctx context.Context, fsys fs.FS, lang Language, data Data) ([]File, error) {
	entries, set, err := readTree(fsys, lang.Name)
	if err != nil {
		return nil, fmt.Errorf("read template %s: %w", lang.Name, err)
	}
	exec := map[string]bool{}
	for _, x := range lang.manifest.Executables {
		out, err := renderString(ManifestFile, x, data)
		if err != nil {
			return nil, fmt.Errorf("template %s: executables: %w", lang.Name, err)
		}
		exec[out] = true
	}
	files := make([]File, 0, len(entries))
	seen := map[string]bool{}
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		out, err := renderPath(e.out, data)
		if err != nil {
			return nil, fmt.Errorf("template %s: %w", e.src, err)
		}
		if seen[out] {
			return nil, fmt.Errorf("template %s: two files render to %s", lang.Name, out)
		}
		seen[out] = true
		content, err := e.content(fsys, set, data)
		if err != nil {
			return nil, err
		}
		mode := fs.FileMode(0o644)
		if exec[out] {
			mode = 0o755
			delete(exec, out)
		}
		files = append(files, File{Path: out, Mode: mode, Size: len(content), content: content})
	}
	for x := range exec {
		return nil, fmt.Errorf("template %s: %s lists executable %s, which the template does not hold", lang.Name, ManifestFile, x)
	}
	sort.Slice(files, func(i, j int) bool { return files[i].Path < files[j].Path })
	return files, nil
}

// treeEntry is a file of a language's tree: its path in the tree, its
// path in the project (before rendering), whether it is a template.
type treeEntry struct {
	src, out string
	tmpl     bool
}

// readTree lists the files of the tree at root (less build leftovers and
// the manifest) and parses its .tmpl files into one template set.
func readTree(fsys fs.FS, root string) ([]treeEntry, *template.Template, error) {
	var entries []treeEntry
	set := template.New("").Option("missingkey=error")
	err := fs.WalkDir(fsys, root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == root {
			return nil
		}
		if skipName(d.Name()) {
			if d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		rel := strings.TrimPrefix(p, root+"/")
		if d.IsDir() || rel == ManifestFile {
			return nil
		}
		e := treeEntry{src: p, out: rel}
		if strings.HasSuffix(rel, tmplSuffix) {
			b, err := fs.ReadFile(fsys, p)
			if err != nil {
				return err
			}
			if _, err := set.New(p).Parse(string(b)); err != nil {
				return fmt.Errorf("template %w", err)
			}
			e.tmpl, e.out = true, strings.TrimSuffix(rel, tmplSuffix)
		}
		entries = append(entries, e)
		return nil
	})
	return entries, set, err
}

// content is the entry's content in the project: rendered, or copied.
func (e treeEntry) content(fsys fs.FS, set *template.Template, data Data) ([]byte, error) {
	if !e.tmpl {
		b, err := fs.ReadFile(fsys, e.src)
		if err != nil {
			return nil, fmt.Errorf("read template: %w", err)
		}
		return b, nil
	}
	var buf bytes.Buffer
	if err := set.ExecuteTemplate(&buf, e.src, data); err != nil {
		return nil, fmt.Errorf("render %w", err)
	}
	return buf.Bytes(), nil
}

// renderPath renders the path elements that hold template actions, and
// checks that the result stays a clean relative path.
func renderPath(p string, data Data) (string, error) {
	if !strings.Contains(p, "{{") {
		return p, nil
	}
	out, err := renderString(p, p, data)
	if err != nil {
		return "", err
	}
	if !fs.ValidPath(out) || path.Clean(out) != out {
		return "", fmt.Errorf("path %q renders to %q, which is not a clean relative path", p, out)
	}
	return out, nil
}

func renderString(name, text string, data Data) (string, error) {
	t, err := template.New(name).Option("missingkey=error").Parse(text)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	if err := t.Execute(&b, data); err != nil {
		return "", err
	}
	return b.String(), nil
}

func nextSteps(lang Language, data Data) ([]Step, error) {
	var steps []Step
	for _, n := range lang.manifest.Next {
		run, err := renderString(ManifestFile, n.Run, data)
		if err != nil {
			return nil, fmt.Errorf("template %s: next: %w", lang.Name, err)
		}
		doc, err := renderString(ManifestFile, n.Doc, data)
		if err != nil {
			return nil, fmt.Errorf("template %s: next: %w", lang.Name, err)
		}
		steps = append(steps, Step{Doc: doc, Run: run})
	}
	return steps, nil
}

// write puts the files into dir: they are written into a temporary
// directory beside it, which is then renamed to dir (when dir does not
// exist) or whose entries are moved into dir (when it exists: empty, or
// with force).
func write(ctx context.Context, dir string, exists bool, files []File) (err error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return fmt.Errorf("target directory: %w", err)
	}
	parent := filepath.Dir(abs)
	created, err := mkdirAll(parent)
	if err != nil {
		return fmt.Errorf("create parent directory: %w", err)
	}
	tmp, err := os.MkdirTemp(parent, "."+filepath.Base(abs)+".oe-rt-new-")
	if err != nil {
		_ = removeCreated(created)
		return fmt.Errorf("create temporary directory: %w", err)
	}
	defer func() {
		_ = os.RemoveAll(tmp)
		if err != nil {
			_ = removeCreated(created)
		}
	}()
	for _, f := range files {
		if err := ctx.Err(); err != nil {
			return err
		}
		p := filepath.Join(tmp, filepath.FromSlash(f.Path))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return fmt.Errorf("write %s: %w", f.Path, err)
		}
		if err := os.WriteFile(p, f.content, f.Mode); err != nil {
			return fmt.Errorf("write %s: %w", f.Path, err)
		}
		// The umask may have narrowed the mode.
		if err := os.Chmod(p, f.Mode); err != nil {
			return fmt.Errorf("write %s: %w", f.Path, err)
		}
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		return fmt.Errorf("write %s: %w", dir, err)
	}
	if !exists {
		if err := os.Rename(tmp, abs); err != nil {
			return fmt.Errorf("move the project into place: %w", err)
		}
		return nil
	}
	return moveInto(tmp, abs)
}

// moveInto moves the entries of src into the existing directory dst,
// merging directories and replacing files. Entries it created are removed
// again if a later one fails; replaced files cannot be restored.
func moveInto(src, dst string) error {
	var moved []string
	var mv func(src, dst string) error
	mv = func(src, dst string) error {
		entries, err := os.ReadDir(src)
		if err != nil {
			return err
		}
		for _, e := range entries {
			s, d := filepath.Join(src, e.Name()), filepath.Join(dst, e.Name())
			st, err := os.Lstat(d)
			switch {
			case err == nil && e.IsDir() && st.IsDir():
				if err := mv(s, d); err != nil {
					return err
				}
				continue
			case err == nil && (e.IsDir() || st.IsDir()):
				return fmt.Errorf("cannot replace %s: one of the generated and the existing entry is a directory, the other not", d)
			case err == nil:
				// An existing file is replaced, not created.
			case errors.Is(err, fs.ErrNotExist):
				moved = append(moved, d)
			default:
				return err
			}
			if err := os.Rename(s, d); err != nil {
				return err
			}
		}
		return nil
	}
	if err := mv(src, dst); err != nil {
		for i := len(moved) - 1; i >= 0; i-- {
			_ = os.RemoveAll(moved[i])
		}
		return fmt.Errorf("move the project into %s: %w", dst, err)
	}
	return nil
}

// mkdirAll creates dir and its missing parents, and returns the topmost
// directory it created ("" when dir existed).
func mkdirAll(dir string) (string, error) {
	top := ""
	for p := dir; ; p = filepath.Dir(p) {
		if _, err := os.Stat(p); err == nil {
			break
		} else if !errors.Is(err, fs.ErrNotExist) {
			return "", err
		}
		top = p
		if filepath.Dir(p) == p {
			break
		}
	}
	if top == "" {
		return "", nil
	}
	return top, os.MkdirAll(dir, 0o755)
}

func removeCreated(top string) error {
	if top == "" {
		return nil
	}
	return os.RemoveAll(top)
}
