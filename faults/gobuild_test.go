package faults

import (
	"os/exec"
	"path/filepath"
	"runtime"
)

// runGo runs the go command: the one on PATH, else the toolchain's own.
func runGo(args ...string) ([]byte, error) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	return exec.Command(goBin, args...).CombinedOutput()
}
