package cli

import (
	"bytes"
	"testing"
)

func TestWriteVersion(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   buildInfo
		want string
	}{
		{"release", buildInfo{Version: "1.2.3", Commit: "abc123", Date: "2026-12-06T23:00:00Z", GoVersion: "go1.26.8", Platform: "linux/amd64"},
			"calhook 1.2.3\ncommit: abc123\nbuilt: 2026-12-06T23:00:00Z\ngo: go1.26.8 linux/amd64\n"},
		{"dirty work tree", buildInfo{Version: "0.1.0-dev", Commit: "abc123", Modified: true, GoVersion: "go1.26.8", Platform: "linux/arm64"},
			"calhook 0.1.0-dev\ncommit: abc123 (modified)\nbuilt: unknown\ngo: go1.26.8 linux/arm64\n"},
		{"no vcs stamp", buildInfo{Version: "0.1.0-dev", GoVersion: "go1.26.8", Platform: "darwin/arm64"},
			"calhook 0.1.0-dev\ncommit: unknown\nbuilt: unknown\ngo: go1.26.8 darwin/arm64\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var b bytes.Buffer
			writeVersion(&b, tt.in)
			if b.String() != tt.want {
				t.Errorf("writeVersion(%+v) = %q; want %q", tt.in, b.String(), tt.want)
			}
		})
	}
}

func TestLocalURL(t *testing.T) {
	t.Parallel()
	tests := []struct {
		addr, want string
		wantErr    bool
	}{
		{addr: "127.0.0.1:8080", want: "http://127.0.0.1:8080/readyz"},
		{addr: ":8080", want: "http://127.0.0.1:8080/readyz"},
		{addr: "0.0.0.0:9000", want: "http://127.0.0.1:9000/readyz"},
		{addr: "[::]:8080", want: "http://[::1]:8080/readyz"},
		{addr: "calhook.internal:8080", want: "http://calhook.internal:8080/readyz"},
		{addr: "8080", wantErr: true},
	}
	for _, tt := range tests {
		got, err := localURL(tt.addr, "/readyz")
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("localURL(%q, \"/readyz\") = %q, %v; want %q (error: %v)", tt.addr, got, err, tt.want, tt.wantErr)
		}
	}
}
