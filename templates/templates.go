// Package templates holds the project templates of `oe-rt new`, one
// directory per language (go, python, node), embedded in the oe-rt binary.
// The scaffold package renders them; this package only carries the files.
//
// # Layout of a language
//
// templates/<lang>/template.yml is the language's manifest: read by the
// scaffold, never copied into a project. It gives a one-line description,
// the dependency file and packages that make up the language's gRPC stack
// (their versions are read from that file, so they are written down once),
// the files to make executable (mode 0755), and the next steps printed after
// generation. Every other file is part of the generated project:
//
//   - A file whose name ends in .tmpl is rendered with text/template
//     (Option("missingkey=error")) and written without the suffix. The data
//     is .Name (the runtime's name), .Module (the Go module path) and
//     .OERTVersion (the version of oe-rt that generated it).
//   - Any other file is copied byte for byte.
//   - A path element may hold a template action, such as bin/{{.Name}}, to
//     be named after the runtime.
//
// go:embed skips a directory that holds a go.mod, so the Go template names
// it go.mod.tmpl. The Go template's .go sources are .tmpl too: they import
// the project's own packages by module path, and as plain .go files they
// would be compiled, vetted and tidied as packages of oe-rt itself.
//
// A new language is a new directory with a template.yml: the embed pattern
// below takes every entry of this directory (all: keeps dotfiles such as
// .github/ and .gitignore), so nothing here needs to change.
package templates

import "embed"

// FS holds templates/<lang>/... for every language. Entries of this
// directory that are not languages (this file) hold no template.yml and are
// ignored by the scaffold.
//
//go:embed all:*
var FS embed.FS
