package ical

import (
	"fmt"
	"slices"
	"strings"
)

// component is one BEGIN…END block that Parse keeps: a VCALENDAR, a VEVENT,
// a VTIMEZONE or one of its STANDARD/DAYLIGHT observances. Everything else
// (VTODO, VALARM, X- components…) is read for its structure and dropped.
// A VEVENT is kept as an eventSpan while the structure is read, and becomes
// a component (one at a time) only when it is converted.
type component struct {
	name     string
	line     int
	props    []contentLine
	children []*component
}

// prop returns the first property called name, or nil.
func (c *component) prop(name string) *contentLine {
	for i := range c.props {
		if c.props[i].name == name {
			return &c.props[i]
		}
	}
	return nil
}

// value returns the value of the first property called name, or "".
func (c *component) value(name string) string {
	if p := c.prop(name); p != nil {
		return p.value
	}
	return ""
}

// keepComponent reports whether Parse needs a component called name inside
// one called parent.
func keepComponent(parent, name string) bool {
	switch parent {
	case "VCALENDAR":
		return name == "VEVENT" || name == "VTIMEZONE"
	case "VTIMEZONE":
		return name == "STANDARD" || name == "DAYLIGHT"
	}
	return false
}

// lineRun is n consecutive content lines, the first of which starts at
// pos in the lexer's source, on line line: enough to read them again.
type lineRun struct{ pos, line, n int32 }

// eventSpan is a VEVENT as the structure pass keeps it: its calendar (an
// index into parser.cals), its BEGIN line and its properties, the lines
// of runs[first:end] of parser.runs (one run unless something else, such
// as a VALARM, sits between them). Reading a VEVENT's properties again
// when it is converted costs little CPU and saves holding every property
// of a big feed at once.
type eventSpan struct{ cal, line, first, end int32 }

// parser holds the state of one Parse call.
type parser struct {
	opts   ParseOptions
	lex    *lexer
	cals   []*component
	events []eventSpan // every kept VEVENT, in stream order
	runs   []lineRun   // the properties of the events
	// lines counts the logical lines read; lastRun is the count at the
	// last line added to runs.
	lines, lastRun int
	arena          []Param // parameters of all kept properties but events'
	warnings       []string
	dropped        int // warnings beyond maxWarnings
	// ev is the event being converted.
	ev Event
	// extra is an emptied Event.Extra map for the next event to reuse.
	extra map[string]string
	// late holds the warnings about duplicate events, which follow all
	// others; lateDropped counts those beyond maxWarnings.
	late        []string
	lateDropped int
	// zoneLookups counts the TZIDs resolved so far, across calendars.
	zoneLookups int
	// malformed is the first structural defect found inside a
	// VCALENDAR; parse returns it once the input is read (a truncation
	// found later takes precedence, being the likelier cause).
	malformed *ParseError
	// scratch collects the properties of the open components, by depth;
	// each kept component gets an exact-size copy when it ends.
	scratch [maxDepth][]contentLine
}

func newParser(data string, opts ParseOptions) *parser {
	l := newLexer(data)
	// Most VEVENTs are one BEGIN line and one run of properties: room
	// for them saves growing both slices (copies that a big feed would
	// leave as garbage). A VEVENT the count misses (lower case, folded)
	// only costs a growth; text that only looks like one is bounded by
	// the shortest VEVENT, BEGIN:VEVENT and END:VEVENT lines.
	n := min(strings.Count(l.src, "BEGIN:VEVENT"), len(l.src)/len("BEGIN:VEVENT\nEND:VEVENT\n"))
	return &parser{opts: opts, lex: l, events: make([]eventSpan, 0, n), runs: make([]lineRun, 0, n)}
}

// warnf records a warning; line 0 means "no line".
func (p *parser) warnf(line int, format string, args ...any) {
	if len(p.warnings) >= maxWarnings {
		p.dropped++
		return
	}
	p.warnings = append(p.warnings, warning(line, format, args...))
}

// lateWarnf records a warning that is listed after all that warnf records.
func (p *parser) lateWarnf(line int, format string, args ...any) {
	if len(p.late) >= maxWarnings {
		p.lateDropped++
		return
	}
	p.late = append(p.late, warning(line, format, args...))
}

// warning formats a warning; line 0 means "no line".
func warning(line int, format string, args ...any) string {
	msg := fmt.Sprintf(format, args...)
	if line > 0 {
		msg = fmt.Sprintf("line %d: %s", line, msg)
	}
	return msg
}

// defect records a structural defect inside a VCALENDAR; the first one
// makes parse fail with ErrMalformed.
func (p *parser) defect(line int, format string, args ...any) {
	if p.malformed == nil {
		p.malformed = newParseError(line, ErrMalformed, format, args...)
	}
}

// structural reports whether parseContentLine's msg means the line has no
// name/value structure at all (as opposed to a bad parameter, which is a
// harmless quirk).
func structural(msg string) bool {
	return msg == "no property name" || msg == "no colon" || strings.HasPrefix(msg, "invalid character ")
}

// frame is an open component on the parser's stack.
type frame struct {
	name string
	comp *component // nil for a component that is dropped, and for a VEVENT
	line int
	// event is 1 + the index in parser.events of a kept VEVENT, else 0.
	event int
	// cal is the index in parser.cals of a VCALENDAR's component.
	cal int
}

// parse reads the structure of the stream into p.cals.
func (p *parser) parse() error {
	src := p.lex.src
	if len(src) == 0 {
		return newParseError(0, ErrEmpty, "")
	}
	if src[0] == '<' {
		return newParseError(p.lex.line, ErrHTML, "input starts with %q", snippet(src))
	}
	var (
		stack       []frame
		trailWarned bool
		// afterProp reports that the previous line was a property, or
		// a lost continuation of one.
		afterProp bool
	)
	for {
		text, line, ok, tooLong := p.lex.next()
		if !ok {
			break
		}
		p.lines++
		if tooLong {
			return newParseError(line, ErrLineTooLong, "longer than %d bytes", maxLineBytes)
		}
		mark := len(p.arena)
		name, params, value, msg := parseContentLine(text, p.arena)
		p.arena = params
		prevProp := afterProp
		afterProp = msg != "" || (name != "BEGIN" && name != "END")
		if len(p.cals) == 0 && (msg != "" || name != "BEGIN" || upperASCII(strings.TrimSpace(value)) != "VCALENDAR") {
			return newParseError(line, ErrNotCalendar, "expected BEGIN:VCALENDAR, found %q", snippet(text))
		}
		if msg != "" {
			p.arena = p.arena[:mark]
			// A line without structure right after a property of an
			// event (or of anything below the VCALENDAR) is read as a
			// continuation line that lost its leading space, a common
			// exporter bug that costs at most part of a value. Anywhere
			// else it is content that is not iCalendar.
			if len(stack) > 0 && structural(msg) && !(len(stack) > 1 && prevProp) {
				p.defect(line, "%s: %q", msg, snippet(text))
			}
			p.warnf(line, "%s, line skipped: %q", msg, snippet(text))
			continue
		}
		switch name {
		case "BEGIN", "END":
			p.arena = p.arena[:mark]
			cname := upperASCII(strings.TrimSpace(value))
			if !isName(cname) {
				p.defect(line, "invalid component name: %q", snippet(text))
				p.warnf(line, "invalid component name, line skipped: %q", snippet(text))
				continue
			}
			if name == "BEGIN" {
				if len(stack) >= maxDepth {
					return newParseError(line, ErrTooDeep, "more than %d levels", maxDepth)
				}
				stack = p.begin(stack, cname, line)
				continue
			}
			stack = p.end(stack, cname, line)
		default:
			if len(stack) == 0 {
				p.arena = p.arena[:mark]
				if !trailWarned {
					p.warnf(line, "text after END:VCALENDAR ignored: %q", snippet(text))
					trailWarned = true
				}
				continue
			}
			depth := len(stack) - 1
			if stack[depth].comp == nil {
				p.arena = p.arena[:mark]
				if stack[depth].event > 0 {
					// At most one kept VEVENT is open at a time (none is
					// kept inside another component than a VCALENDAR),
					// so its properties are contiguous in p.refs.
					p.addLine(&p.events[stack[depth].event-1], line)
				}
				continue
			}
			p.scratch[depth] = append(p.scratch[depth], contentLine{
				name:   name,
				params: p.arena[mark:len(p.arena):len(p.arena)],
				value:  value,
				line:   line,
			})
		}
	}
	if len(p.cals) == 0 {
		// Only blank lines after the BOM and white space.
		return newParseError(0, ErrEmpty, "no content lines")
	}
	if len(stack) > 0 {
		open := stack[len(stack)-1]
		msg := fmt.Sprintf("END:VCALENDAR missing: input ends inside %s opened on line %d", open.name, open.line)
		if open.name == "VCALENDAR" {
			msg = fmt.Sprintf("END:VCALENDAR missing for VCALENDAR opened on line %d", open.line)
		}
		return &ParseError{Line: p.lex.line - 1, Msg: ErrTruncated.Error() + ": " + msg, Err: ErrTruncated}
	}
	if p.malformed != nil {
		return p.malformed
	}
	if p.lex.repaired > 0 {
		p.warnf(0, "%d line(s) were not valid UTF-8 and were decoded as Windows-1252 or repaired with U+FFFD", p.lex.repaired)
	}
	return nil
}

// addLine adds the line just read, on line line, to the properties of
// ev, the open VEVENT.
func (p *parser) addLine(ev *eventSpan, line int) {
	if p.lastRun == p.lines-1 && ev.first < int32(len(p.runs)) {
		p.runs[len(p.runs)-1].n++
	} else {
		p.runs = append(p.runs, lineRun{pos: int32(p.lex.start), line: int32(line), n: 1})
	}
	p.lastRun = p.lines
}

// begin opens component cname.
func (p *parser) begin(stack []frame, cname string, line int) []frame {
	p.scratch[len(stack)] = p.scratch[len(stack)][:0]
	if len(stack) == 0 {
		if cname == "VCALENDAR" {
			c := &component{name: cname, line: line}
			p.cals = append(p.cals, c)
			return append(stack, frame{name: cname, comp: c, line: line, cal: len(p.cals) - 1})
		}
		// RFC 5545 example files list VEVENTs after END:VCALENDAR; read
		// them as part of the calendar before them rather than lose them.
		p.warnf(line, "BEGIN:%s outside VCALENDAR, read as part of the calendar before it", cname)
		return append(stack, p.child(len(p.cals)-1, "VCALENDAR", cname, line))
	}
	parent := stack[len(stack)-1]
	var c *component
	if cname == "VCALENDAR" && parent.name == "VCALENDAR" {
		// BEGIN:VCALENDAR twice (concatenated exports): read the inner
		// one as a calendar of its own.
		p.warnf(line, "VCALENDAR nested in the VCALENDAR opened on line %d, read as a calendar of its own", parent.line)
		c = &component{name: cname, line: line}
		p.cals = append(p.cals, c)
		return append(stack, frame{name: cname, comp: c, line: line, cal: len(p.cals) - 1})
	}
	if parent.comp == nil {
		return append(stack, frame{name: cname, line: line})
	}
	if parent.name == "VCALENDAR" {
		return append(stack, p.child(parent.cal, "VCALENDAR", cname, line))
	}
	if keepComponent(parent.name, cname) {
		c = &component{name: cname, line: line}
		parent.comp.children = append(parent.comp.children, c)
	}
	return append(stack, frame{name: cname, comp: c, line: line})
}

// child opens component cname inside calendar p.cals[cal]: a VEVENT as an
// eventSpan, a VTIMEZONE as a component, anything else dropped.
func (p *parser) child(cal int, parentName, cname string, line int) frame {
	f := frame{name: cname, line: line}
	switch {
	case cname == "VEVENT":
		n := int32(len(p.runs))
		p.events = append(p.events, eventSpan{cal: int32(cal), line: int32(line), first: n, end: n})
		f.event = len(p.events)
	case keepComponent(parentName, cname):
		f.comp = &component{name: cname, line: line}
		p.cals[cal].children = append(p.cals[cal].children, f.comp)
	}
	return f
}

// end closes component cname: the innermost open one of that name, along
// with any left open inside it.
func (p *parser) end(stack []frame, cname string, line int) []frame {
	if len(stack) == 0 {
		p.warnf(line, "END:%s without BEGIN ignored", cname)
		return stack
	}
	for k := len(stack) - 1; k >= 0; k-- {
		if stack[k].name != cname {
			continue
		}
		if k < len(stack)-1 {
			open := stack[len(stack)-1]
			p.defect(line, "END:%s closes %s opened on line %d, which was never closed", cname, open.name, open.line)
			p.warnf(line, "END:%s also closes %s opened on line %d", cname, open.name, open.line)
		}
		for i := len(stack) - 1; i >= k; i-- {
			if c := stack[i].comp; c != nil && len(p.scratch[i]) > 0 {
				c.props = slices.Clone(p.scratch[i])
			}
			if e := stack[i].event; e > 0 {
				p.events[e-1].end = int32(len(p.runs))
			}
		}
		return stack[:k]
	}
	top := stack[len(stack)-1]
	p.defect(line, "END:%s does not match BEGIN:%s on line %d", cname, top.name, top.line)
	p.warnf(line, "END:%s does not match BEGIN:%s on line %d, ignored", cname, top.name, top.line)
	return stack
}

// isName reports whether s is a valid component name.
func isName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isNameByte(s[i]) {
			return false
		}
	}
	return true
}

// snippet returns the start of s for an error message.
func snippet(s string) string {
	const maxLen = 40
	if i := strings.IndexAny(s, "\r\n"); i >= 0 {
		s = s[:i]
	}
	if len(s) > maxLen {
		cut := maxLen
		for cut > 0 && s[cut]&0xC0 == 0x80 {
			cut--
		}
		s = s[:cut] + "…"
	}
	return s
}
