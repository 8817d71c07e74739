package bench

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// userHZ is the unit of the CPU times in /proc/<pid>/stat. It is 100 on
// every Linux build that matters (USER_HZ, fixed for user space).
const userHZ = 100

// procCPU returns the user plus system CPU time process pid has used, from
// /proc/<pid>/stat; it fails where there is no /proc.
func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, fmt.Errorf("cpu time of %d: %w", pid, err)
	}
	return parseProcStat(string(b))
}

// parseProcStat reads utime and stime (fields 14 and 15) of a
// /proc/<pid>/stat line. The command name, field 2, is in parentheses and
// may hold spaces, so fields are counted from the last ')'.
func parseProcStat(s string) (time.Duration, error) {
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("parse /proc stat %q: no command name", truncate([]byte(s), 60))
	}
	f := strings.Fields(s[i+1:])
	// f[0] is field 3 (state), so utime (14) is f[11] and stime f[12].
	if len(f) < 13 {
		return 0, fmt.Errorf("parse /proc stat: %d fields after the command name", len(f))
	}
	var ticks int64
	for _, field := range f[11:13] {
		n, err := strconv.ParseInt(field, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("parse /proc stat: %w", err)
		}
		ticks += n
	}
	return time.Duration(ticks) * time.Second / userHZ, nil
}

// selfCPU returns the CPU time the bench process itself has used.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// cpuMeter measures the CPU time calhook and the bench use over a span.
type cpuMeter struct {
	pid           int
	server, bench time.Duration
	ok            bool
}

// startCPU starts measuring; the calhook figure is left out where /proc is
// missing.
func startCPU(pid int) cpuMeter {
	m := cpuMeter{pid: pid, bench: selfCPU()}
	if d, err := procCPU(pid); err == nil {
		m.server, m.ok = d, true
	}
	return m
}

// stop returns the CPU time calhook (ok false when unknown) and the bench
// used since startCPU.
func (m cpuMeter) stop() (server, bench time.Duration, ok bool) {
	bench = selfCPU() - m.bench
	if !m.ok {
		return 0, bench, false
	}
	d, err := procCPU(m.pid)
	if err != nil {
		return 0, bench, false
	}
	return d - m.server, bench, true
}
