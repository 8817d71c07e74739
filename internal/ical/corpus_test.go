package ical

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// corpusDir is the shared corpus of real-world iCalendar files (see
// SOURCES.md there), which lives beside the repository clone, not in it.
var corpusDir = filepath.Join("..", "..", "..", "shared", "corpus")

const corpusExpected = "testdata/corpus_expected.tsv"

// corpusExplained lists the files that the corpus manifest calls complete
// calendars (not malformed on purpose, not fragments) which Parse still
// rejects, and why rejecting them is right for a feed importer.
var corpusExplained = map[string]string{
	"ics/icalevents/empty.ics": "0 bytes: an empty body must never be read as a calendar whose events were all deleted",
	"ics/icalendar/timezone_same_start_and_offset.ics": "its last line is END:VCALENDARD (sic); without END:VCALENDAR " +
		"the file cannot be told from a truncated download",
	"ics/libical/stresstest.ics": "most of its lines are not content lines (free text such as \"Sorry, I cannot " +
		"change this meeting time\" directly in the VCALENDAR); ical.js refuses it too, and a feed like it is a " +
		"broken download whose events must not be read as deleted",
}

type corpusFile struct {
	File      string   `json:"file"`
	Tags      []string `json:"tags"`
	Malformed bool     `json:"malformed_on_purpose"`
}

func (f corpusFile) complete() bool {
	return !f.Malformed && !slices.Contains(f.Tags, "fragment")
}

// corpusOutcome is the stable summary of parsing one file: "events N" or
// "error <sentinel text>".
func corpusOutcome(cal *Calendar, err error) string {
	if err != nil {
		var pe *ParseError
		if errors.As(err, &pe) {
			return "error " + pe.Err.Error()
		}
		return "error " + err.Error()
	}
	return "events " + strconv.Itoa(len(cal.Events))
}

func TestCorpus(t *testing.T) {
	t.Parallel()
	manifest, err := os.ReadFile(filepath.Join(corpusDir, "manifest.json"))
	if errors.Is(err, os.ErrNotExist) {
		t.Skipf("corpus not found at %s (it sits beside the repository clone); skipping", corpusDir)
	}
	if err != nil {
		t.Fatal(err)
	}
	var m struct {
		Files []corpusFile `json:"files"`
	}
	if err := json.Unmarshal(manifest, &m); err != nil {
		t.Fatalf("manifest.json: %v", err)
	}
	if len(m.Files) == 0 {
		t.Fatal("manifest.json lists no files")
	}
	slices.SortFunc(m.Files, func(a, b corpusFile) int { return strings.Compare(a.File, b.File) })

	want := readCorpusExpected(t)
	got := make(map[string]string, len(m.Files))
	var (
		parsed, events, warned int
		errorsByKind           = map[string]int{}
		completeParsed         int
		completeTotal          int
	)
	for _, f := range m.Files {
		data, err := os.ReadFile(filepath.Join(corpusDir, f.File))
		if err != nil {
			t.Errorf("%s: %v", f.File, err)
			continue
		}
		cal, perr := ParseBytes(data, ParseOptions{})
		if errors.Is(perr, ErrInternal) {
			t.Errorf("%s: parser panicked: %v", f.File, perr)
		}
		outcome := corpusOutcome(cal, perr)
		got[f.File] = outcome
		if f.complete() {
			completeTotal++
		}
		if perr != nil {
			errorsByKind[strings.TrimPrefix(outcome, "error ")]++
			if f.complete() && corpusExplained[f.File] == "" {
				t.Errorf("%s: complete calendar rejected without explanation in corpusExplained: %v", f.File, perr)
			}
			continue
		}
		parsed++
		events += len(cal.Events)
		if f.complete() {
			completeParsed++
		}
		if len(cal.Warnings) > 0 {
			warned++
		}
		checkEvents(t, f.File, cal)
	}

	if *update {
		writeCorpusExpected(t, m.Files, got)
	} else if want != nil {
		for _, f := range m.Files {
			if w, ok := want[f.File]; !ok {
				t.Errorf("%s: not in %s; run go test -run Corpus -update", f.File, corpusExpected)
			} else if got[f.File] != w {
				t.Errorf("%s: outcome %q; want %q (run go test -run Corpus -update if intended)", f.File, got[f.File], w)
			}
		}
	}

	kinds := make([]string, 0, len(errorsByKind))
	for k, n := range errorsByKind {
		kinds = append(kinds, fmt.Sprintf("%s: %d", k, n))
	}
	slices.Sort(kinds)
	t.Logf("corpus: %d files; %d parsed (%d events, %d with warnings); %d rejected (%s); complete calendars parsed %d/%d",
		len(m.Files), parsed, events, warned, len(m.Files)-parsed, strings.Join(kinds, ", "), completeParsed, completeTotal)
}

// checkEvents asserts what every parsed event must satisfy.
func checkEvents(t *testing.T, name string, cal *Calendar) {
	t.Helper()
	for i, ev := range cal.Events {
		if ev.UID == "" {
			t.Errorf("%s: event %d has no UID", name, i)
		}
		if ev.End.Before(ev.Start) {
			t.Errorf("%s: event %q ends (%v) before it starts (%v)", name, ev.UID, ev.End, ev.Start)
		}
		if ev.Start.IsZero() {
			t.Errorf("%s: event %q has no start", name, ev.UID)
		}
		switch ev.Status {
		case "tentative", "confirmed", "cancelled":
		default:
			t.Errorf("%s: event %q has status %q", name, ev.UID, ev.Status)
		}
	}
}

// readCorpusExpected reads the expected outcomes, or returns nil when the
// file does not exist yet (with -update it is about to).
func readCorpusExpected(t *testing.T) map[string]string {
	t.Helper()
	f, err := os.Open(corpusExpected)
	if errors.Is(err, os.ErrNotExist) && *update {
		return nil
	}
	if err != nil {
		t.Fatalf("%v (generate it with go test -run Corpus -update)", err)
	}
	defer f.Close()
	want := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		file, outcome, ok := strings.Cut(line, "\t")
		if !ok {
			t.Fatalf("%s: bad line %q", corpusExpected, line)
		}
		want[file] = outcome
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return want
}

func writeCorpusExpected(t *testing.T, files []corpusFile, got map[string]string) {
	t.Helper()
	var b bytes.Buffer
	b.WriteString("# Outcome of ical.Parse on every file of ../shared/corpus: \"events N\" or\n")
	b.WriteString("# \"error <kind>\". Regenerate with: go test -run Corpus -update ./internal/ical\n")
	for _, f := range files {
		fmt.Fprintf(&b, "%s\t%s\n", f.File, got[f.File])
	}
	if err := os.WriteFile(corpusExpected, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}
