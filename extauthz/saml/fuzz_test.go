package saml

import (
	"context"
	"encoding/base64"
	"net/url"
	"testing"
)

// FuzzHandleResponse feeds arbitrary bytes to the response validation (seed
// corpus in testdata/fuzz/FuzzHandleResponse, written by
// internal/genseeds). It must never panic (check runs here without the
// recover that guards it in production) and never accept: the fixture keys
// are made afresh on every run, so nothing in the corpus carries a
// signature this run's IdP made.
func FuzzHandleResponse(f *testing.F) {
	m := openMethod(f, acmeTenant(f), &memReplay{})
	x := expectation{idp: m.idp.get(), entityID: EntityID(acmeEndpoint), acs: ACSURL(acmeEndpoint), requestID: requestID, now: testNow}
	f.Add([]byte(`<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol"/>`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		if v, err := m.check(x, raw); err == nil {
			t.Fatalf("accepted: %+v", v.identity)
		}
		if len(raw) <= MaxResponseSize/2 {
			form := url.Values{"SAMLResponse": {encodeB64(raw)}}
			if _, err := m.HandleResponse(context.Background(), acmeEndpoint, acmeAttempt(), postForm(form.Encode())); err == nil {
				t.Fatal("HandleResponse accepted")
			}
		}
	})
}

func encodeB64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
