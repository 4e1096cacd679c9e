package conformance

import (
	"embed"
	"errors"
	"fmt"
	"strings"
)

// The explain pages: one Markdown file per check in explain/, named by its
// ID, with the sections pageSections in that order. `oe-rt conform
// --explain ID` prints one; Validate rejects a check without one.

//go:embed explain/*.md
var pages embed.FS

// pageSections are the headings every explain page has, in order: why the
// rule exists (quoting the convention, docs/convention.md), how conform
// measures it, and how to fix a failure.
var pageSections = []string{"## Why", "## How conform measures it", "## How to fix"}

func page(id string) (string, error) {
	b, err := pages.ReadFile("explain/" + id + ".md")
	if err != nil {
		return "", errors.New("no explain page (conformance/explain/" + id + ".md)")
	}
	return string(b), nil
}

// validPage says what is wrong with a check's explain page, or nil.
func validPage(id string) error {
	p, err := page(id)
	if err != nil {
		return err
	}
	at := 0
	for i, h := range pageSections {
		j := strings.Index(p[at:], h+"\n")
		if j < 0 {
			return fmt.Errorf("explain page: no %q section (or out of order)", h)
		}
		body := p[at+j+len(h):]
		if i+1 < len(pageSections) {
			if k := strings.Index(body, pageSections[i+1]+"\n"); k >= 0 {
				body = body[:k]
			}
		}
		if strings.TrimSpace(body) == "" {
			return fmt.Errorf("explain page: the %q section is empty", h)
		}
		at += j + len(h)
	}
	if ph := placeholder.FindString(descriptionVars(NewConfig()).Replace(p)); ph != "" {
		return fmt.Errorf("explain page: unknown placeholder %s", ph)
	}
	return nil
}

// Explain returns the explain page of a check: its rule (with the limits
// of cfg filled in; nil means the defaults), why it exists, how conform
// measures it and how to fix a failure. An unknown ID is an error that
// says what is known.
func Explain(id string, cfg *Config) (string, error) {
	if cfg == nil {
		cfg = NewConfig()
	}
	c := Lookup(id)
	if c == nil {
		if v := Retired(id); v != 0 {
			return "", fmt.Errorf("%s was retired in catalog version %d: it is no longer checked", id, v)
		}
		var near []string
		for _, k := range catalog {
			if strings.HasPrefix(k.ID, strings.SplitN(id, ".", 2)[0]+".") {
				near = append(near, k.ID)
			}
		}
		msg := fmt.Sprintf("no check %q", id)
		if len(near) > 0 {
			msg += " (did you mean " + strings.Join(near, ", ") + "?)"
		}
		return "", errors.New(msg + "; see --list")
	}
	p, err := page(c.ID)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s — %s (since catalog version %d)\n\n", c.ID, c.Level, c.Since())
	fmt.Fprintf(&b, "## Rule\n\n%s.\n", c.Describe(cfg))
	if len(c.Needs) > 0 {
		fmt.Fprintf(&b, "\nFixtures it calls: %s (docs/conformance.md#fixtures).\n", strings.Join(c.Needs, ", "))
	}
	if c.OptIn {
		b.WriteString("\nOpt-in: it runs only when its flag turns it on, or when --run names it.\n")
	}
	b.WriteString("\n")
	b.WriteString(descriptionVars(cfg).Replace(strings.TrimSpace(p)))
	b.WriteString("\n")
	return b.String(), nil
}
