package main

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/tenantgate/tenantgate/extauthz/login"
	"github.com/tenantgate/tenantgate/extauthz/telemetry"
	"github.com/tenantgate/tenantgate/tenants"
)

// tracingFlags is serve's --tracing. Everything else about tracing is the
// standard OTEL_* environment (docs/operations.md, "Traces"): the
// exporter reads OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT, _HEADERS, _TIMEOUT,
// _INSECURE, _CERTIFICATE…, the SDK OTEL_TRACES_SAMPLER[_ARG] and
// OTEL_BSP_*, the resource OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES.
type tracingFlags struct {
	on bool
	// set is whether --tracing was given (command line, environment or
	// config file): --tracing=false then turns tracing off even with an
	// OTLP endpoint in the environment.
	set bool
}

func (f *tracingFlags) register(fl *pflag.FlagSet) {
	fl.BoolVar(&f.on, "tracing", false, "export OpenTelemetry traces over OTLP, configured by the standard OTEL_* environment variables; on by default when OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set, --tracing=false turns it off")
}

// enabled reports whether serve exports traces.
func (f *tracingFlags) enabled() bool {
	if f.set {
		return f.on
	}
	return os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != ""
}

// start builds the tracer serve's spans go through: an OTLP exporter
// (OTEL_EXPORTER_OTLP_[TRACES_]PROTOCOL: grpc, or http/protobuf, the
// default) behind a batching SDK tracer provider. It returns nil and a
// no-op stop when tracing is off. stop flushes the spans still queued,
// for up to five seconds.
func (f *tracingFlags) start(ctx context.Context, log *slog.Logger) (*telemetry.Tracer, func(), error) {
	if !f.enabled() {
		return nil, func() {}, nil
	}
	protocol := firstEnv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL")
	var exp sdktrace.SpanExporter
	var err error
	switch protocol {
	case "", "http/protobuf":
		protocol = "http/protobuf"
		exp, err = otlptracehttp.New(ctx)
	case "grpc":
		exp, err = otlptracegrpc.New(ctx)
	default:
		return nil, nil, fmt.Errorf("OTEL_EXPORTER_OTLP_PROTOCOL %q: tenantgate exports traces over grpc or http/protobuf", protocol)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("otlp trace exporter: %w", err)
	}
	// Later options override earlier ones: OTEL_SERVICE_NAME and
	// OTEL_RESOURCE_ATTRIBUTES override the default service name.
	res, err := resource.New(ctx,
		resource.WithAttributes(attribute.String("service.name", "tenantgate"), attribute.String("service.version", version)),
		resource.WithFromEnv(), resource.WithTelemetrySDK())
	if err != nil {
		return nil, nil, fmt.Errorf("OTEL_RESOURCE_ATTRIBUTES: %w", err)
	}
	// The sampler is the SDK's from OTEL_TRACES_SAMPLER, by default
	// parentbased_always_on: Envoy's sampling decision holds.
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	// Export failures (collector down) would otherwise go to the standard
	// library's logger, in another format than serve's.
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
		log.Warn("trace export failed", "err", err)
	}))
	sampler := os.Getenv("OTEL_TRACES_SAMPLER")
	log.Info("tracing", "protocol", protocol, "sampler", cmp.Or(sampler, "parentbased_always_on"))
	stop := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := tp.Shutdown(ctx); err != nil {
			log.Warn("flush traces", "err", err)
		}
	}
	return telemetry.New(tp, sampler == "" || strings.HasPrefix(sampler, "parentbased_")), stop, nil
}

func firstEnv(names ...string) string {
	for _, n := range names {
		if v := os.Getenv(n); v != "" {
			return v
		}
	}
	return ""
}

// tracedStore is the sign-in handler's store with a span around each
// write (telemetry.SpanStorePrefix + the write); reads pass straight
// through. It lives here so that the tenants packages know nothing of
// tracing.
type tracedStore struct {
	login.Store
	t *telemetry.Tracer
}

// traceStore returns st with its writes traced; st itself with tracing
// off.
func traceStore(t *telemetry.Tracer, st login.Store) login.Store {
	if t == nil {
		return st
	}
	return &tracedStore{Store: st, t: t}
}

func (s *tracedStore) Revoke(ctx context.Context, r tenants.Revocation) error {
	ctx, end := s.t.StartStore(ctx, "revoke", "")
	err := s.Store.Revoke(ctx, r)
	end(err)
	return err
}

func (s *tracedStore) UpsertExternalUser(ctx context.Context, tenantInternalID string, x tenants.ExternalIdentity) (tenants.User, error) {
	ctx, end := s.t.StartStore(ctx, "upsert_external_user", "")
	u, err := s.Store.UpsertExternalUser(ctx, tenantInternalID, x)
	end(err)
	return u, err
}

func (s *tracedStore) UseAssertionID(ctx context.Context, tenantInternalID, id string, expires time.Time) error {
	ctx, end := s.t.StartStore(ctx, "use_assertion_id", "")
	err := s.Store.UseAssertionID(ctx, tenantInternalID, id, expires)
	end(err)
	return err
}

func (s *tracedStore) SetPassword(ctx context.Context, userID, oldHash, newHash string, rev tenants.Revocation) error {
	ctx, end := s.t.StartStore(ctx, "set_password", "")
	err := s.Store.SetPassword(ctx, userID, oldHash, newHash, rev)
	end(err)
	return err
}

func (s *tracedStore) AddMember(ctx context.Context, tenantID string, m tenants.NewMember) (bool, error) {
	ctx, end := s.t.StartStore(ctx, "add_member", tenantID)
	created, err := s.Store.AddMember(ctx, tenantID, m)
	end(err)
	return created, err
}

func (s *tracedStore) RecordSession(ctx context.Context, rec tenants.Session, evict tenants.Revocation) error {
	ctx, end := s.t.StartStore(ctx, "record_session", "")
	err := s.Store.RecordSession(ctx, rec, evict)
	end(err)
	return err
}

func (s *tracedStore) RevokeSession(ctx context.Context, tenantInternalID, userID, sid string, rev tenants.Revocation) error {
	ctx, end := s.t.StartStore(ctx, "revoke_session", "")
	err := s.Store.RevokeSession(ctx, tenantInternalID, userID, sid, rev)
	end(err)
	return err
}

// UpdateSecondFactors is every write of the second step to a member's
// factors: TOTP enrolment, a code or recovery code spent, recovery codes
// renewed, the app removed.
func (s *tracedStore) UpdateSecondFactors(ctx context.Context, tenantInternalID, userID string, fn func(*tenants.SecondFactors) error) error {
	ctx, end := s.t.StartStore(ctx, "update_second_factors", "")
	err := s.Store.UpdateSecondFactors(ctx, tenantInternalID, userID, fn)
	end(err)
	return err
}

func (s *tracedStore) AddPasskey(ctx context.Context, tenantInternalID, userID string, p tenants.Passkey) error {
	ctx, end := s.t.StartStore(ctx, "add_passkey", "")
	err := s.Store.AddPasskey(ctx, tenantInternalID, userID, p)
	end(err)
	return err
}

// UpdatePasskey is a rename on the account page and, at sign-in, the
// passkey's use (its sign count and last use).
func (s *tracedStore) UpdatePasskey(ctx context.Context, tenantInternalID, userID string, id []byte, fn func(*tenants.Passkey) error) error {
	ctx, end := s.t.StartStore(ctx, "update_passkey", "")
	err := s.Store.UpdatePasskey(ctx, tenantInternalID, userID, id, fn)
	end(err)
	return err
}

func (s *tracedStore) RemovePasskey(ctx context.Context, tenantInternalID, userID string, id []byte) error {
	ctx, end := s.t.StartStore(ctx, "remove_passkey", "")
	err := s.Store.RemovePasskey(ctx, tenantInternalID, userID, id)
	end(err)
	return err
}

// tracedAudit is the audit recorder's trail with a span around each
// append (tenantgate.store append_audit).
type tracedAudit struct {
	tenants.AuditLog
	t *telemetry.Tracer
}

// traceAudit returns al with its appends traced; al itself with tracing
// off.
func traceAudit(t *telemetry.Tracer, al tenants.AuditLog) tenants.AuditLog {
	if t == nil {
		return al
	}
	return &tracedAudit{AuditLog: al, t: t}
}

func (a *tracedAudit) AppendAudit(ctx context.Context, events []tenants.AuditEvent) ([]tenants.AuditEvent, error) {
	tenant := ""
	if len(events) > 0 {
		tenant = events[0].Tenant
	}
	ctx, end := a.t.StartStore(ctx, "append_audit", tenant)
	out, err := a.AuditLog.AppendAudit(ctx, events)
	end(err)
	return out, err
}
