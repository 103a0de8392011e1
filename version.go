package main

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

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
