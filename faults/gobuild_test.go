package faults

import (
	"os/exec"
)

// runGo runs the go command on PATH (.ci/run puts the toolchain there).
func runGo(args ...string) ([]byte, error) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		return nil, err
	}
	return exec.Command(goBin, args...).CombinedOutput()
}
