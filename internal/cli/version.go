package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"runtime/debug"
	"time"
)

// Commit and BuildDate describe the build. Release builds set them, with
// Version, through -ldflags "-X github.com/calhook/calhook/internal/cli.Commit=…";
// otherwise they come from the VCS stamp Go records in the binary.
var (
	Commit    = ""
	BuildDate = ""
)

// buildInfo is what `calhook version` prints.
type buildInfo struct {
	Version, Commit, Date, GoVersion, Platform string
	// Modified is true when the binary was built from a work tree with
	// uncommitted changes (known only from Go's VCS stamp).
	Modified bool
}

// readBuildInfo combines the -ldflags values with the module and VCS
// information that `go build` embeds, preferring the former.
func readBuildInfo() buildInfo {
	b := buildInfo{Version: Version, Commit: Commit, Date: BuildDate,
		GoVersion: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return b
	}
	// A binary installed with `go install …@v1.2.3` knows its module
	// version; a local build says "(devel)".
	if b.Version == defaultVersion && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		b.Version = bi.Main.Version
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			if b.Commit == "" {
				b.Commit = s.Value
			}
		case "vcs.time":
			if b.Date == "" {
				b.Date = s.Value
			}
		case "vcs.modified":
			b.Modified = s.Value == "true" && Commit == ""
		}
	}
	return b
}

// defaultVersion is Version when no -ldflags set it.
const defaultVersion = "0.1.0-dev"

func versionCmd(env Env, args []string) error {
	fs := flag.NewFlagSet("version", flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	if err := fs.Parse(args); err != nil {
		return err
	}
	writeVersion(env.Stdout, readBuildInfo())
	return nil
}

// writeVersion prints b as "calhook VERSION" and one "key: value" line per
// detail, easy to read and to grep.
func writeVersion(w io.Writer, b buildInfo) {
	commit := b.Commit
	if commit == "" {
		commit = "unknown"
	} else if b.Modified {
		commit += " (modified)"
	}
	date := b.Date
	if date == "" {
		date = "unknown"
	}
	fmt.Fprintf(w, "calhook %s\ncommit: %s\nbuilt: %s\ngo: %s %s\n", b.Version, commit, date, b.GoVersion, b.Platform)
}

// healthcheck asks a running calhook whether it is ready, for container
// health checks in images that have no curl: exit code 0 when the URL
// answers 2xx within the timeout, 1 otherwise.
func healthcheck(ctx context.Context, env Env, args []string) error {
	cfg := defaultConfig()
	fs := flag.NewFlagSet("healthcheck", flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	addr := fs.String("addr", envDefault(env.Getenv, "ADDR", cfg.Addr),
		"the server's listen address, probed at /readyz (env CALHOOK_ADDR)")
	target := fs.String("url", "", "URL to probe instead (default http://ADDR/readyz)")
	timeout := fs.Duration("timeout", 5*time.Second, "how long to wait for the answer")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *target == "" {
		u, err := localURL(*addr, "/readyz")
		if err != nil {
			return err
		}
		*target = u
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, *target, nil)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	req.Header.Set("User-Agent", "calhook-healthcheck/"+Version)
	// A fresh transport: no proxy from the environment, no kept
	// connections in a process that exits at once.
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("healthcheck: %s answered %s: %s", *target, resp.Status, body)
	}
	fmt.Fprintf(env.Stdout, "%s %s\n", *target, resp.Status)
	return nil
}

// localURL turns a listen address into the URL of path on it; a wildcard
// host (":8080", "0.0.0.0:8080", "[::]:8080") is reached on loopback.
func localURL(addr, path string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("healthcheck: address %q: %w", addr, err)
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
		if ip != nil && ip.To4() == nil {
			host = "::1"
		}
	}
	return "http://" + net.JoinHostPort(host, port) + path, nil
}

// envDefault returns CALHOOK_<name> or def.
func envDefault(getenv func(string) string, name, def string) string {
	if v := getenv("CALHOOK_" + name); v != "" {
		return v
	}
	return def
}
