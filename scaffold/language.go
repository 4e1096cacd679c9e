package scaffold

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/oe-rt/oe-rt/templates"
)

// ManifestFile is the name of a language's manifest at the root of its
// template directory. It is read by the scaffold and never copied.
const ManifestFile = "template.yml"

// Language is one template: a language a runtime can be generated in.
type Language struct {
	// Name is what --lang takes: go, python, node.
	Name string
	// Description is one line about the template.
	Description string
	// Stack lists the packages of the template's gRPC stack with the
	// versions its dependency file asks for.
	Stack []Package
	// manifest is the parsed template.yml.
	manifest manifest
}

// Package is one dependency of a template, as its dependency file writes it.
type Package struct {
	// Name of the package: google.golang.org/grpc, grpcio, @grpc/grpc-js.
	Name string
	// Version as the dependency file gives it: a version (v1.85.0) or a
	// requirement (>=1.51, ^1.14.0).
	Version string
}

// String formats the package as "name version".
func (p Package) String() string { return p.Name + " " + p.Version }

// manifest is template.yml.
type manifest struct {
	// Description is one line about the template.
	Description string `yaml:"description"`
	// Stack names the dependency file and the packages of the gRPC stack
	// whose versions `oe-rt new --list` shows.
	Stack struct {
		File     string   `yaml:"file"`
		Packages []string `yaml:"packages"`
	} `yaml:"stack"`
	// Executables lists the generated files (paths as written, after
	// rendering, e.g. bin/{{.Name}}) that get mode 0755.
	Executables []string `yaml:"executables"`
	// Next lists the commands to print after generation, run in the
	// project's directory; rendered with the template data.
	Next []struct {
		Doc string `yaml:"doc"`
		Run string `yaml:"run"`
	} `yaml:"next"`
}

// Languages lists the languages of the templates built into oe-rt, sorted by
// name.
func Languages() ([]Language, error) { return LanguagesIn(templates.FS) }

// LanguagesIn lists the languages of a template tree: every top-level
// directory of fsys that holds a template.yml.
func LanguagesIn(fsys fs.FS) ([]Language, error) {
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return nil, fmt.Errorf("read templates: %w", err)
	}
	var langs []Language
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		if _, err := fs.Stat(fsys, path.Join(e.Name(), ManifestFile)); errors.Is(err, fs.ErrNotExist) {
			continue
		}
		l, err := loadLanguage(fsys, e.Name())
		if err != nil {
			return nil, err
		}
		langs = append(langs, l)
	}
	sort.Slice(langs, func(i, j int) bool { return langs[i].Name < langs[j].Name })
	return langs, nil
}

// lookupLanguage finds a language by name; the error lists the known ones.
func lookupLanguage(fsys fs.FS, name string) (Language, error) {
	langs, err := LanguagesIn(fsys)
	if err != nil {
		return Language{}, err
	}
	names := make([]string, 0, len(langs))
	for _, l := range langs {
		if l.Name == name {
			return l, nil
		}
		names = append(names, l.Name)
	}
	if name == "" {
		return Language{}, &notFoundError{fmt.Sprintf("no language given: choose one of %s", strings.Join(names, ", "))}
	}
	return Language{}, &notFoundError{fmt.Sprintf("unknown language %q: choose one of %s", name, strings.Join(names, ", "))}
}

type notFoundError struct{ msg string }

func (e *notFoundError) Error() string { return e.msg }

func loadLanguage(fsys fs.FS, name string) (Language, error) {
	b, err := fs.ReadFile(fsys, path.Join(name, ManifestFile))
	if err != nil {
		return Language{}, fmt.Errorf("template %s: %w", name, err)
	}
	var m manifest
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&m); err != nil {
		return Language{}, fmt.Errorf("template %s: %s: %w", name, ManifestFile, err)
	}
	if m.Description == "" {
		return Language{}, fmt.Errorf("template %s: %s has no description", name, ManifestFile)
	}
	l := Language{Name: name, Description: m.Description, manifest: m}
	if m.Stack.File != "" {
		dep, err := fs.ReadFile(fsys, path.Join(name, m.Stack.File))
		if err != nil {
			return Language{}, fmt.Errorf("template %s: stack file: %w", name, err)
		}
		versions, err := parseDependencies(strings.TrimSuffix(path.Base(m.Stack.File), tmplSuffix), dep)
		if err != nil {
			return Language{}, fmt.Errorf("template %s: %s: %w", name, m.Stack.File, err)
		}
		for _, p := range m.Stack.Packages {
			v, ok := versions[p]
			if !ok {
				return Language{}, fmt.Errorf("template %s: %s does not require %s", name, m.Stack.File, p)
			}
			l.Stack = append(l.Stack, Package{Name: p, Version: v})
		}
	}
	return l, nil
}

// parseDependencies reads package versions from a dependency file, chosen
// by its name: go.mod, requirements.txt or package.json.
func parseDependencies(file string, b []byte) (map[string]string, error) {
	switch file {
	case "go.mod":
		return parseGoMod(b), nil
	case "requirements.txt":
		return parseRequirements(b), nil
	case "package.json":
		var p struct {
			Dependencies map[string]string `json:"dependencies"`
		}
		if err := json.Unmarshal(b, &p); err != nil {
			return nil, err
		}
		return p.Dependencies, nil
	}
	return nil, fmt.Errorf("cannot read versions from %s: want go.mod, requirements.txt or package.json", file)
}

// parseGoMod reads the require directives of a go.mod (a template: the
// module line may hold an action, so it is not parsed as Go would).
func parseGoMod(b []byte) map[string]string {
	out := map[string]string{}
	inBlock := false
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if i := strings.Index(line, "//"); i >= 0 {
			line = strings.TrimSpace(line[:i])
		}
		switch {
		case line == "require (":
			inBlock = true
			continue
		case inBlock && line == ")":
			inBlock = false
			continue
		case strings.HasPrefix(line, "require "):
			line = strings.TrimSpace(strings.TrimPrefix(line, "require "))
		case !inBlock:
			continue
		}
		if f := strings.Fields(line); len(f) == 2 {
			out[f[0]] = f[1]
		}
	}
	return out
}

var requirement = regexp.MustCompile(`^([A-Za-z0-9][A-Za-z0-9._-]*)\s*(\[[^\]]*\])?\s*(.*)$`)

// parseRequirements reads a pip requirements file: name, optional extras,
// then the version specifier (kept as written, markers dropped).
func parseRequirements(b []byte) map[string]string {
	out := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := sc.Text()
		if i := strings.Index(line, "#"); i >= 0 {
			line = line[:i]
		}
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "-") {
			continue
		}
		if i := strings.Index(line, ";"); i >= 0 {
			line = strings.TrimSpace(line[:i])
		}
		if m := requirement.FindStringSubmatch(line); m != nil {
			out[m[1]] = strings.ReplaceAll(m[3], " ", "")
		}
	}
	return out
}
