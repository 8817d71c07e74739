package httpapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// FuzzCheckKeys compares checkKeys with the json.Decoder.Token walk it
// replaced (below): on any valid JSON text they refuse the same texts
// with the same message.
func FuzzCheckKeys(f *testing.F) {
	for _, s := range []string{
		`{"items":[{"op":"create","event":{"summary":"a","metadata":{"k":"1","K":"2"}}}]}`,
		`{"items":[{"op":"create","event":{"summary":"a","summary":"b"}}]}`,
		`{"items":[{},{"op":"update","Id":"x"}]}`,
		`{"items":[{"event":{"metadata":{"a":{"b":[1,{"c":1,"c":2}]}}}}]}`,
		`{"items":[{"op":"create","event":{"su\u006dmary":"a","summary":"b"}}]}`,
		`{"items":[[],{"op":""}] , "x":1}`,
		` [ {"a":1,"a":2} ] `,
		`{"items":null}`,
	} {
		f.Add([]byte(s))
	}
	types := []reflect.Type{reflect.TypeFor[*batchRequest](), reflect.TypeFor[*eventInput](), reflect.TypeFor[map[string]any](), nil}
	f.Fuzz(func(t *testing.T, data []byte) {
		if !json.Valid(data) {
			checkKeys(data, types[0]) //nolint:errcheck // any outcome: it must only not panic or hang
			return
		}
		for _, typ := range types {
			got, want := checkKeys(data, typ), tokenCheckKeys(data, typ)
			if (got == nil) != (want == nil) || got != nil && got.Error() != want.Error() {
				t.Errorf("checkKeys(%s, %v) = %v; want %v", data, typ, got, want)
			}
		}
	})
}

// TestCheckKeysDeep: nesting beyond what encoding/json accepts stops the
// check rather than the stack.
func TestCheckKeysDeep(t *testing.T) {
	t.Parallel()
	deep := bytes.Repeat([]byte("["), 2_000_000)
	if err := checkKeys(deep, nil); err != nil {
		t.Errorf("checkKeys(2,000,000 brackets) = %v; want nil (the decoder reports the syntax)", err)
	}
}

// tokenCheckKeys is the check before the byte scanner.
// tokenCheckKeys refuses a key that names no field of the type the body
// decodes into, and what encoding/json would let through: a key given
// twice in one object (the last one would silently win), and a key that
// names a field only when its case is ignored ("Name" for "name"), which
// another JSON reader would not accept. t is
// the type the body decodes into; objects it does not describe (maps,
// values with their own decoding) are checked for duplicates only.
func tokenCheckKeys(data []byte, t reflect.Type) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	return tokenCheckValue(dec, t, "")
}

// tokenCheckValue reads one value from dec, which t describes (nil: nothing
// known), at path (for messages).
func tokenCheckValue(dec *json.Decoder, t reflect.Type, path string) error {
	tok, err := dec.Token()
	if err != nil {
		return nil // a syntax error: the decoder that follows names it
	}
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t != nil && (reflect.PointerTo(t).Implements(unmarshalerType) || reflect.PointerTo(t).Implements(textUnmarshalerType)) {
		t = nil
	}
	switch tok {
	case json.Delim('{'):
		var fields map[string]reflect.Type
		var elem reflect.Type
		if t != nil {
			switch t.Kind() {
			case reflect.Struct:
				// The scan's own field map: the oracle differs only in
				// how it walks the body, token by token.
				fields = structFields(t)
			case reflect.Map:
				elem = t.Elem()
			}
		}
		seen := map[string]bool{}
		for dec.More() {
			kt, err := dec.Token()
			if err != nil {
				return nil
			}
			key, _ := kt.(string)
			if seen[key] {
				return fmt.Errorf("duplicate key %q%s", key, tokenAt(path))
			}
			seen[key] = true
			sub := elem
			if fields != nil {
				ft, ok := fields[key]
				if !ok {
					for name := range fields {
						if strings.EqualFold(name, key) {
							return fmt.Errorf("unknown field %q%s (did you mean %q? keys are case-sensitive)", key, tokenAt(path), name)
						}
					}
					return fmt.Errorf("unknown field %q%s", key, tokenAt(path))
				}
				sub = ft
			}
			if err := tokenCheckValue(dec, sub, tokenJoin(path, key)); err != nil {
				return err
			}
		}
		dec.Token() //nolint:errcheck // the closing brace; a syntax error is the decoder's to report
		return nil
	case json.Delim('['):
		var elem reflect.Type
		if t != nil && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) {
			elem = t.Elem()
		}
		for i := 0; dec.More(); i++ {
			if err := tokenCheckValue(dec, elem, fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
		dec.Token() //nolint:errcheck // the closing bracket; a syntax error is the decoder's to report
		return nil
	}
	return nil
}

func tokenJoin(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func tokenAt(path string) string {
	if path == "" {
		return ""
	}
	return " in " + path
}
