package httpapi

import (
	"bytes"
	"encoding"
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"
)

// checkKeys refuses a key that names no field of the type the body
// decodes into, and what encoding/json would let through: a key given
// twice in one object (the last one would silently win), and a key that
// names a field only when its case is ignored ("Name" for "name"), which
// another JSON reader would not accept. t is the type the body decodes
// into; objects it does not describe (maps, values with their own
// decoding) are checked for duplicates only.
//
// It scans the bytes once without building tokens: a batch of 1,000
// events is some 20,000 keys, and a json.Decoder's Token allocated for
// each of them (about a sixth of the batch route's CPU). A syntax error
// stops the check without an error: the decoder that follows names it.
func checkKeys(data []byte, t reflect.Type) error {
	s := keyScanner{data: data}
	if err := s.value(t, 0); err != nil {
		return err
	}
	return nil
}

// keyError is a refused key; path is filled in as the scan unwinds,
// innermost first: ".key" for a member, "[i]" for an element.
type keyError struct {
	// msg goes before the path, hint after it.
	msg, hint string
	path      []string
}

func (e *keyError) Error() string {
	var b strings.Builder
	for i := len(e.path) - 1; i >= 0; i-- {
		b.WriteString(e.path[i])
	}
	return e.msg + at(strings.TrimPrefix(b.String(), ".")) + e.hint
}

// keyScanner walks a JSON text.
type keyScanner struct {
	data []byte
	pos  int
}

var (
	unmarshalerType     = reflect.TypeFor[json.Unmarshaler]()
	textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// maxKeyDepth bounds the nesting the check follows; encoding/json refuses
// deeper texts itself (at 10,000).
const maxKeyDepth = 10000

// value reads one value, which t describes (nil: nothing known), depth
// levels down. A syntax error ends the scan (s.pos past the end) with a
// nil error.
func (s *keyScanner) value(t reflect.Type, depth int) *keyError {
	s.space()
	if s.pos >= len(s.data) || depth > maxKeyDepth {
		s.fail()
		return nil
	}
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t != nil && (reflect.PointerTo(t).Implements(unmarshalerType) || reflect.PointerTo(t).Implements(textUnmarshalerType)) {
		t = nil
	}
	switch s.data[s.pos] {
	case '{':
		return s.object(t, depth)
	case '[':
		s.pos++
		var elem reflect.Type
		if t != nil && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) {
			elem = t.Elem()
		}
		s.space()
		if s.peek(']') {
			return nil
		}
		for i := 0; ; i++ {
			if err := s.value(elem, depth+1); err != nil {
				err.path = append(err.path, "["+strconv.Itoa(i)+"]")
				return err
			}
			if !s.next() {
				return nil
			}
		}
	case '"':
		s.str()
	default:
		// A number or a literal: what ends it is the decoder's to judge.
		for s.pos < len(s.data) && !strings.ContainsRune(",]} \t\r\n", rune(s.data[s.pos])) {
			s.pos++
		}
	}
	return nil
}

// object reads an object; s.pos is at its '{'.
func (s *keyScanner) object(t reflect.Type, depth int) *keyError {
	s.pos++
	var fields map[string]reflect.Type
	var elem reflect.Type
	if t != nil {
		switch t.Kind() {
		case reflect.Struct:
			fields = jsonFields(t)
		case reflect.Map:
			elem = t.Elem()
		}
	}
	var seenBuf [16][]byte
	seen := seenBuf[:0]
	s.space()
	if s.peek('}') {
		return nil
	}
	for {
		s.space()
		key, ok := s.key()
		if !ok {
			return nil
		}
		for _, k := range seen {
			if bytes.Equal(k, key) {
				return &keyError{msg: fmt.Sprintf("duplicate key %q", key)}
			}
		}
		seen = append(seen, key)
		sub := elem
		if fields != nil {
			ft, ok := fields[string(key)]
			if !ok {
				for name := range fields {
					if strings.EqualFold(name, string(key)) {
						return &keyError{msg: fmt.Sprintf("unknown field %q", key),
							hint: fmt.Sprintf(" (did you mean %q? keys are case-sensitive)", name)}
					}
				}
				return &keyError{msg: fmt.Sprintf("unknown field %q", key)}
			}
			sub = ft
		}
		s.space()
		if !s.peek(':') {
			s.fail()
			return nil
		}
		if err := s.value(sub, depth+1); err != nil {
			err.path = append(err.path, "."+string(key))
			return err
		}
		if !s.next() {
			return nil
		}
	}
}

// next reads what follows a member or element: true after a ',', false
// after the closing bracket or a syntax error.
func (s *keyScanner) next() bool {
	s.space()
	if s.pos >= len(s.data) {
		s.fail()
		return false
	}
	switch s.data[s.pos] {
	case ',':
		s.pos++
		return true
	case '}', ']':
		s.pos++
		return false
	}
	s.fail()
	return false
}

// key reads an object's key, unescaped; false at a syntax error.
func (s *keyScanner) key() ([]byte, bool) {
	if s.pos >= len(s.data) || s.data[s.pos] != '"' {
		s.fail()
		return nil, false
	}
	start := s.pos
	escaped := s.str()
	if s.pos > len(s.data) {
		return nil, false
	}
	raw := s.data[start:s.pos]
	if !escaped {
		return raw[1 : len(raw)-1], true
	}
	var key string
	if err := json.Unmarshal(raw, &key); err != nil {
		s.fail()
		return nil, false
	}
	return []byte(key), true
}

// str skips a string; s.pos is at its opening quote. It reports whether
// the string holds an escape or a byte outside ASCII (which the decoder
// may replace), so that it must be decoded to be compared.
func (s *keyScanner) str() bool {
	escaped := false
	for i := s.pos + 1; i < len(s.data); i++ {
		switch c := s.data[i]; {
		case c == '\\':
			escaped = true
			i++
		case c >= utf8.RuneSelf:
			escaped = true
		case c == '"':
			s.pos = i + 1
			return escaped
		}
	}
	s.fail()
	return escaped
}

// peek consumes c if it is next.
func (s *keyScanner) peek(c byte) bool {
	if s.pos < len(s.data) && s.data[s.pos] == c {
		s.pos++
		return true
	}
	return false
}

func (s *keyScanner) space() {
	for s.pos < len(s.data) {
		switch s.data[s.pos] {
		case ' ', '\t', '\r', '\n':
			s.pos++
		default:
			return
		}
	}
}

// fail ends the scan at a syntax error.
func (s *keyScanner) fail() { s.pos = len(s.data) + 1 }

// fieldsCache holds jsonFields per type: the request types are few and
// fixed.
var fieldsCache sync.Map // reflect.Type → map[string]reflect.Type

// jsonFields maps the JSON names of a struct's fields, those of embedded
// structs included, to their types. The map is shared: read it only.
func jsonFields(t reflect.Type) map[string]reflect.Type {
	if m, ok := fieldsCache.Load(t); ok {
		return m.(map[string]reflect.Type)
	}
	m := structFields(t)
	fieldsCache.Store(t, m)
	return m
}

func structFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for f := range t.Fields() {
		if !f.IsExported() && !f.Anonymous {
			continue
		}
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				for k, v := range structFields(ft) {
					out[k] = v
				}
				continue
			}
		}
		if name == "" {
			name = f.Name
		}
		out[name] = f.Type
	}
	return out
}

func at(path string) string {
	if path == "" {
		return ""
	}
	return " in " + path
}
