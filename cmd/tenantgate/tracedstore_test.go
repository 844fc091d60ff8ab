package main

import (
	"context"
	"errors"
	"maps"
	"reflect"
	"slices"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/tenantgate/tenantgate/extauthz/login"
	"github.com/tenantgate/tenantgate/extauthz/telemetry"
	"github.com/tenantgate/tenantgate/tenants"
)

// storeReads are the sign-in store's methods that write nothing and so
// have no span; every other method of login.Store must have one.
var storeReads = []string{"UserByEmail", "Membership", "Tenants", "Sessions", "SecondFactors", "Snapshot", "Passkeys"}

// countingStore answers every write with err and counts the calls that
// reached it; its reads are never called (the embedded nil panics).
type countingStore struct {
	login.Store
	err   error
	calls int
}

func (s *countingStore) write() error { s.calls++; return s.err }

func (s *countingStore) Revoke(context.Context, tenants.Revocation) error { return s.write() }
func (s *countingStore) UpsertExternalUser(context.Context, string, tenants.ExternalIdentity) (tenants.User, error) {
	return tenants.User{}, s.write()
}
func (s *countingStore) UseAssertionID(context.Context, string, string, time.Time) error {
	return s.write()
}
func (s *countingStore) SetPassword(context.Context, string, string, string, tenants.Revocation) error {
	return s.write()
}
func (s *countingStore) AddMember(context.Context, string, tenants.NewMember) (bool, error) {
	return false, s.write()
}
func (s *countingStore) RecordSession(context.Context, tenants.Session, tenants.Revocation) error {
	return s.write()
}
func (s *countingStore) RevokeSession(context.Context, string, string, string, tenants.Revocation) error {
	return s.write()
}
func (s *countingStore) UpdateSecondFactors(context.Context, string, string, func(*tenants.SecondFactors) error) error {
	return s.write()
}
func (s *countingStore) AddPasskey(context.Context, string, string, tenants.Passkey) error {
	return s.write()
}
func (s *countingStore) UpdatePasskey(context.Context, string, string, []byte, func(*tenants.Passkey) error) error {
	return s.write()
}
func (s *countingStore) RemovePasskey(context.Context, string, string, []byte) error {
	return s.write()
}

// TestTracedStoreSpansEveryWrite calls every write of login.Store through
// traceStore and expects one tenantgate.store span per write, named after
// it, with the outcome of the write; a method added to login.Store that is
// neither a read nor traced fails here, so no sign-in write goes untraced
// (the second step's factors and the passkeys included).
func TestTracedStoreSpansEveryWrite(t *testing.T) {
	ctx := context.Background()
	// methods names the login.Store method behind each span.
	methods := map[string]string{
		"revoke": "Revoke", "upsert_external_user": "UpsertExternalUser", "use_assertion_id": "UseAssertionID",
		"set_password": "SetPassword", "add_member": "AddMember", "record_session": "RecordSession",
		"revoke_session": "RevokeSession", "update_second_factors": "UpdateSecondFactors",
		"add_passkey": "AddPasskey", "update_passkey": "UpdatePasskey", "remove_passkey": "RemovePasskey",
	}
	writes := map[string]func(login.Store) error{
		"revoke": func(s login.Store) error { return s.Revoke(ctx, tenants.Revocation{}) },
		"upsert_external_user": func(s login.Store) error {
			_, err := s.UpsertExternalUser(ctx, "t", tenants.ExternalIdentity{})
			return err
		},
		"use_assertion_id": func(s login.Store) error { return s.UseAssertionID(ctx, "t", "id", time.Now()) },
		"set_password":     func(s login.Store) error { return s.SetPassword(ctx, "u", "a", "b", tenants.Revocation{}) },
		"add_member": func(s login.Store) error {
			_, err := s.AddMember(ctx, "acme", tenants.NewMember{})
			return err
		},
		"record_session": func(s login.Store) error { return s.RecordSession(ctx, tenants.Session{}, tenants.Revocation{}) },
		"revoke_session": func(s login.Store) error { return s.RevokeSession(ctx, "t", "u", "sid", tenants.Revocation{}) },
		"update_second_factors": func(s login.Store) error {
			return s.UpdateSecondFactors(ctx, "t", "u", func(*tenants.SecondFactors) error { return nil })
		},
		"add_passkey": func(s login.Store) error { return s.AddPasskey(ctx, "t", "u", tenants.Passkey{}) },
		"update_passkey": func(s login.Store) error {
			return s.UpdatePasskey(ctx, "t", "u", []byte{1}, func(*tenants.Passkey) error { return nil })
		},
		"remove_passkey": func(s login.Store) error { return s.RemovePasskey(ctx, "t", "u", []byte{1}) },
	}

	// Every method of login.Store is a read or a write called above, so a
	// write added later without a span fails here.
	if !slices.Equal(slices.Sorted(maps.Keys(methods)), slices.Sorted(maps.Keys(writes))) {
		t.Fatalf("methods and writes name different spans")
	}
	iface := reflect.TypeFor[login.Store]()
	for i := range iface.NumMethod() {
		name := iface.Method(i).Name
		if !slices.Contains(storeReads, name) && !slices.Contains(slices.Collect(maps.Values(methods)), name) {
			t.Errorf("login.Store.%s is a write without a span: add it to tracedStore (cmd/tenantgate/tracing.go), docs/operations.md and this test", name)
		}
	}

	for _, fail := range []bool{false, true} {
		spans := tracetest.NewSpanRecorder()
		tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
		t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
		inner := &countingStore{}
		if fail {
			inner.err = errors.New("store down")
		}
		st := traceStore(telemetry.New(tp, true), inner)
		for op, call := range writes {
			if err := call(st); !errors.Is(err, inner.err) {
				t.Fatalf("%s: error %v, want the store's %v", op, err, inner.err)
			}
		}
		if inner.calls != len(writes) {
			t.Fatalf("the store saw %d writes, want %d", inner.calls, len(writes))
		}
		outcome := "ok"
		if fail {
			outcome = "error"
		}
		got := map[string]string{}
		for _, s := range spans.Ended() {
			for _, a := range s.Attributes() {
				if a.Key == telemetry.AttrOutcome {
					got[s.Name()] = a.Value.AsString()
				}
			}
		}
		for op := range writes {
			if got[telemetry.SpanStorePrefix+op] != outcome {
				t.Errorf("span %q: outcome %q, want %q (spans: %v)", telemetry.SpanStorePrefix+op, got[telemetry.SpanStorePrefix+op], outcome, got)
			}
		}
		if len(spans.Ended()) != len(writes) {
			t.Errorf("%d spans for %d writes", len(spans.Ended()), len(writes))
		}
	}
}
