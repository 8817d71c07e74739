package bench

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"runtime"
	"strings"
)

// machineResult describes where the feed numbers were measured.
func machineResult(ctx context.Context, scenario string, lg loadGenerator, nginxBin string) Result {
	r := hostResult(scenario)
	info := r.Info
	info["loadgen"] = lg.Name()
	if nginxBin != "" {
		// nginx -v prints "nginx version: nginx/1.22.1" on stderr.
		if out, err := exec.CommandContext(ctx, nginxBin, "-v").CombinedOutput(); err == nil {
			info["nginx"] = strings.TrimPrefix(strings.TrimSpace(string(out)), "nginx version: ")
		}
	}
	return r
}

// hostResult is the machine line every scenario prints: the CPUs and the
// Go version; scenarios add their settings to its Info.
func hostResult(scenario string) Result {
	info := map[string]any{
		"nproc":      runtime.NumCPU(),
		"gomaxprocs": runtime.GOMAXPROCS(0),
		"cpu":        cpuModel(),
		"go":         runtime.Version(),
	}
	// Other work on the machine lowers every figure. The load average
	// when the results are written counts the scenario's own processes
	// too, but one well above their number means something else ran.
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		if f := strings.Fields(string(b)); len(f) >= 3 {
			info["loadavg"] = strings.Join(f[:3], " ")
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
