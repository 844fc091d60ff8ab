package tenants

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
)

// TestPassSessionCookieRoundTrip: the tenant file field passSessionCookie
// (CONTRACT.md) is read from YAML and JSON, validates, and MarshalFile (what
// tenants get prints) writes it back; a tenant without it (the default,
// false) prints no key. A string, number or list is refused.
func TestPassSessionCookieRoundTrip(t *testing.T) {
	const in = `
tenants:
  - id: acme
    methods: [{type: password}]
    passSessionCookie: true       # true: the app also receives tenantgate's session cookie
  - id: plain
    methods: [{type: password}]
    passSessionCookie: false
`
	ts, err := ParseFile([]byte(in), testTypes)
	if err != nil {
		t.Fatal(err)
	}
	if !ts[0].PassSessionCookie || ts[1].PassSessionCookie {
		t.Fatalf("passSessionCookie = %v and %v, want true and false", ts[0].PassSessionCookie, ts[1].PassSessionCookie)
	}
	if err := Validate(ts, testOpts(ValidateOptions{})); err != nil {
		t.Fatal(err)
	}
	json, err := ParseFile([]byte(`{"tenants": [{"id": "acme", "methods": [{"type": "password"}], "passSessionCookie": true}]}`), testTypes)
	if err != nil || !json[0].PassSessionCookie {
		t.Fatalf("JSON: %+v, %v; want passSessionCookie true", json, err)
	}
	for _, format := range []string{"yaml", "json"} {
		t.Run(format, func(t *testing.T) {
			out, err := MarshalFile(ts, format)
			if err != nil {
				t.Fatal(err)
			}
			if n := bytes.Count(out, []byte("passSessionCookie")); n != 1 {
				t.Errorf("output has %d passSessionCookie keys, want 1 (none for the tenant without):\n%s", n, out)
			}
			back, err := ParseFile(out, testTypes)
			if err != nil {
				t.Fatalf("output does not parse: %v\n%s", err, out)
			}
			if !reflect.DeepEqual(back, ts) {
				t.Errorf("round trip:\n got %+v\nwant %+v", back, ts)
			}
		})
	}
	for _, bad := range []string{`"true"`, "1", "[true]"} {
		_, err := ParseFile([]byte("tenants:\n  - id: acme\n    methods: [{type: password}]\n    passSessionCookie: "+bad+"\n"), testTypes)
		if !errors.Is(err, ErrBadFile) {
			t.Errorf("passSessionCookie: %s: err = %v, want ErrBadFile", bad, err)
		}
	}
}
