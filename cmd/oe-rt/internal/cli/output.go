package cli

import (
	"fmt"
	"io"
	"os"

	"github.com/spf13/pflag"
)

// output is where a command writes its result: standard output, or the
// file of -o/--output, created before the command does its work so that a
// path that cannot be written is found first.
type output struct {
	w    io.Writer
	file *os.File
	path string
}

// openOutput opens -o's file, or returns standard output when path is "".
func openOutput(path string, stdout io.Writer) (*output, error) {
	if path == "" {
		return &output{w: stdout}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, usageError("-o/--output: %w", err)
	}
	return &output{w: f, file: f, path: path}, nil
}

// Write writes to the output.
func (o *output) Write(p []byte) (int, error) { return o.w.Write(p) }

// close closes the file, if any; a failed close is a failed write.
func (o *output) close() error {
	if o.file == nil {
		return nil
	}
	err := o.file.Close()
	o.file = nil
	return err
}

// refuseFormatAsOutput refuses -o/--output given a --format value (-o json),
// most likely meant as the format: it names the flag to use.
func refuseFormatAsOutput(fs *pflag.FlagSet, output string, formats ...string) error {
	for _, f := range formats {
		if output != f {
			continue
		}
		also := ""
		if fs != nil && fs.Lookup(f) != nil && f != "text" {
			also = fmt.Sprintf(", or --%s FILE to write it beside the text report", f)
		}
		return usageError("-o/--output %q names the file to write the output to; for %s output use --format %s%s (for a file of that name, give ./%s)", output, f, f, also, f)
	}
	return nil
}

// writeFailed is the error of a report that could not be written: exit 2,
// the same for every command (the verdict is unknown to whoever reads it).
func writeFailed(what string, err error) error {
	if err == nil {
		return nil
	}
	return &ExitError{Code: ExitUsage, Err: fmt.Errorf("write %s: %w", what, err)}
}
