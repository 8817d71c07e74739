package bench

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"runtime"
	"strings"
)

// machineResult describes where the numbers were measured.
func machineResult(ctx context.Context, scenario string, lg loadGenerator, nginxBin string) Result {
	info := map[string]any{
		"nproc":      runtime.NumCPU(),
		"gomaxprocs": runtime.GOMAXPROCS(0),
		"cpu":        cpuModel(),
		"loadgen":    lg.Name(),
		"go":         runtime.Version(),
	}
	if nginxBin != "" {
		// nginx -v prints "nginx version: nginx/1.22.1" on stderr.
		if out, err := exec.CommandContext(ctx, nginxBin, "-v").CombinedOutput(); err == nil {
			info["nginx"] = strings.TrimPrefix(strings.TrimSpace(string(out)), "nginx version: ")
		}
	}
	return Result{
		Scenario: scenario,
		Metric:   "machine",
		Value:    float64(runtime.NumCPU()),
		Unit:     "cpus",
		Info:     info,
	}
}

// cpuModel returns the first "model name" of /proc/cpuinfo, or "unknown".
func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return "unknown"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}
