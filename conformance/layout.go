package conformance

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"
)

// The master's working directory, under --config. Baetyl's native engine
// (baetyl 1.0.0, master/engine/native/engine.go: Run, mountAll) runs a
// service's instances in var/run/baetyl/services/<service>, a directory
// that holds only a link per declared volume, at the volume's target (the
// configuration at etc/baetyl, each function's code at its codedir, the
// package at lib/baetyl/<image>), and a link to the API socket at
// var/run/baetyl.sock; the program it runs is lib/baetyl/<image>/<entry>,
// the entry of the package's package.yml. OpenEdge 0.1.2's
// (master/engine/native/engine.go: Run, mount) is the same under
// var/run/openedge and lib/openedge, without the socket. So under --config
// the working directory holds the configuration volume, the package (a
// link to --dir, from which the runtime is run when it is in --dir), the
// codedirs the configuration names (links into --dir), the socket, and
// nothing else of --dir.

// packagePath is where the master mounts the runtime's package, relative to
// the working directory: lib/<era>/<image>.
func packagePath(era string) string { return "lib/" + era + "/" + serviceName }

// closedLayout reports whether the working directory holds only what the
// master mounts (under --config), rather than every entry of --dir.
func (m *master) closedLayout() bool { return m.cfg.ConfigFile != "" }

// placeMounts adds to l the package and the codedirs of the configuration
// file config, as the master mounts them.
func (m *master) placeMounts(l layout, era, config string) {
	l.place[packagePath(era)] = m.src
	for _, d := range codeDirs(config) {
		if _, err := os.Stat(filepath.Join(m.src, d)); err == nil {
			l.place[d] = filepath.Join(m.src, d)
		}
	}
}

// codeDirs returns the relative codedirs the configuration's functions
// name, cleaned, outside etc/ (the configuration volume) and lib/ (the
// package), in order; those that climb out of the working directory are
// left out.
func codeDirs(config string) []string {
	b, err := os.ReadFile(config)
	if err != nil {
		return nil
	}
	var c struct {
		Functions []struct {
			CodeDir string `yaml:"codedir"`
		} `yaml:"functions"`
	}
	if yaml.Unmarshal(b, &c) != nil {
		return nil
	}
	seen := map[string]bool{}
	var out []string
	for _, f := range c.Functions {
		d := path.Clean(filepath.ToSlash(strings.TrimSpace(f.CodeDir)))
		if f.CodeDir == "" || path.IsAbs(d) || d == "." || d == ".." || strings.HasPrefix(d, "../") ||
			d == "etc" || strings.HasPrefix(d, "etc/") || d == "lib" || strings.HasPrefix(d, "lib/") || seen[d] {
			continue
		}
		seen[d] = true
		out = append(out, d)
	}
	// A codedir inside another is reached through the outer one's link.
	sort.Strings(out)
	var kept []string
	for _, d := range out {
		if len(kept) > 0 && strings.HasPrefix(d, kept[len(kept)-1]+"/") {
			continue
		}
		kept = append(kept, d)
	}
	return kept
}

// entry is the program the master runs for the runtime command cmd0 (an
// absolute path, or a name looked up in PATH) in the working directory
// dir: under --config, a program inside --dir is run through the package's
// link (lib/<era>/<image>/<entry>), as the master runs a package's entry.
func (m *master) entry(era, dir, cmd0 string) string {
	if !m.closedLayout() || !filepath.IsAbs(cmd0) {
		return cmd0
	}
	rel, err := filepath.Rel(m.src, cmd0)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return cmd0
	}
	return filepath.Join(dir, filepath.FromSlash(packagePath(era)), rel)
}

// layoutHint, when the working directory holds only the master's mounts
// and the instance did not start, names what is there: a runtime that
// reaches for another file of --dir by a path relative to the working
// directory does not find it under the master either.
func (r *runner) layoutHint(inst *instance) string {
	if !r.master.closedLayout() {
		return ""
	}
	era := string(r.cfg.Profile)
	mounts := []string{configPath(era) + " (the configuration, with the files beside " + filepath.Base(r.cfg.ConfigFile) + ")",
		packagePath(era) + " (the package: --dir " + r.master.src + ", from which the runtime is run)"}
	for _, d := range codeDirs(r.cfg.ConfigFile) {
		mounts = append(mounts, d+" (a codedir of the configuration)")
	}
	if era == "baetyl" {
		mounts = append(mounts, "var/run/baetyl.sock (the API socket)")
	}
	return fmt.Sprintf(". Under --config the runtime's working directory holds only what the master mounts there: %s, and nothing else of --dir. "+
		"A path relative to the working directory to any other file of --dir is not there under the master either: find the runtime's own files from its own path ($0 in a start script, __file__, __dirname, os.Executable), as the master runs %s/<entry>",
		strings.Join(mounts, ", "), packagePath(era))
}

// defaultConfigFile is the configuration to give as the master gives it:
// --config; else, for the baetyl profile, whose master always mounts a
// configuration volume at etc/baetyl, --dir's etc/baetyl/service.yml when
// there is one and the runtime is given no -c or --config of its own.
func defaultConfigFile(cfg *Config) string {
	if cfg.ConfigFile != "" || cfg.Profile != ProfileBaetyl {
		return cfg.ConfigFile
	}
	for _, a := range cfg.Command[1:] {
		if a == "-c" || a == "--config" || a == "-config" || strings.HasPrefix(a, "-c=") || strings.HasPrefix(a, "--config=") || strings.HasPrefix(a, "-config=") {
			return ""
		}
	}
	dir := cfg.Dir
	if dir == "" {
		dir = "."
	}
	p := filepath.Join(dir, configPath(string(ProfileBaetyl)))
	if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() {
		return p
	}
	return ""
}
