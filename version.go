package main

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
)

const versionAbout = "Prints the version, commit and Go version."

func runVersion(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("version", "", versionAbout, stderr)
	if _, err := parseArgs(fs, args); err != nil {
		return err
	}
	fmt.Fprintln(stdout, versionString())
	return nil
}

// versionString is what `version` prints and the start-up log carries.
func versionString() string {
	c := commit
	if c == "unknown" {
		if bi, ok := debug.ReadBuildInfo(); ok {
			for _, s := range bi.Settings {
				if s.Key == "vcs.revision" {
					c = s.Value
				}
			}
		}
	}
	return fmt.Sprintf("pipedrive-gateway %s (commit %s, %s)", version, c, runtime.Version())
}
