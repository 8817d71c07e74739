package main

import (
	"bytes"
	"errors"
	"flag"
	"strings"
	"testing"
)

func TestRun(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		args       []string
		wantErr    string // empty: no error
		wantStdout string
	}{
		{"list", []string{"list"}, "", "feed "},
		{"help", []string{"help"}, "", "usage:"},
		{"unknown scenario", []string{"nope"}, `unknown scenario "nope"`, ""},
		{"unknown flag", []string{"feed", "--bogus"}, "flag provided but not defined", ""},
		{"stray argument", []string{"feed", "extra"}, "unexpected arguments", ""},
		{"invalid setting", []string{"feed", "--runs", "-1"}, "runs -1", ""},
		{"invalid loadgen", []string{"feed", "--loadgen", "ab"}, `loadgen "ab"`, ""},
		{"list has webhooks", []string{"list"}, "", "webhooks-throughput "},
		{"feed flag elsewhere", []string{"webhooks-latency", "--loadgen", "go"}, "flag provided but not defined", ""},
		{"invalid changes", []string{"webhooks-baseline", "--changes", "-5"}, "changes -5", ""},
		{"invalid rate", []string{"webhooks-latency", "--rate", "-1"}, "rate -1", ""},
		{"invalid writers", []string{"webhooks-throughput", "--writers", "-2"}, "writers -2", ""},
		{"invalid per-endpoint", []string{"webhooks-throughput", "--delivery-per-endpoint", "-1"}, "delivery-per-endpoint -1", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var stdout, stderr bytes.Buffer
			err := run(t.Context(), tt.args, &stdout, &stderr)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("run(%q) = %v; want nil", tt.args, err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("run(%q) = %v; want an error containing %q", tt.args, err, tt.wantErr)
			}
			if !strings.Contains(stdout.String(), tt.wantStdout) {
				t.Errorf("run(%q) stdout = %q; want it to contain %q", tt.args, stdout.String(), tt.wantStdout)
			}
		})
	}
}

func TestRunNoArgsIsHelp(t *testing.T) {
	t.Parallel()
	var stdout, stderr bytes.Buffer
	if err := run(t.Context(), nil, &stdout, &stderr); !errors.Is(err, flag.ErrHelp) || !strings.Contains(stderr.String(), "usage:") {
		t.Errorf("run(nil) = %v, stderr %q; want flag.ErrHelp and usage on stderr", err, stderr.String())
	}
}
