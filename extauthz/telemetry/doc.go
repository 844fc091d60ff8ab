// Package telemetry holds what ties tenantgate's work on one request
// together for an operator: OpenTelemetry spans (Tracer) that continue
// Envoy's trace, and the request id and trace id that every log line about
// a request carries (LogHandler).
//
// It depends on the OpenTelemetry API only; cmd builds the SDK and the OTLP
// exporter and hands a Tracer in. A nil *Tracer is tracing off: every
// method is then a no-op that costs nothing, so the packages that start
// spans never ask whether tracing is on.
//
// Spans carry tenant ids, outcomes and reason codes, never a secret, token,
// password, cookie or email address: an attribute is set only from the
// fixed vocabulary of this package's functions.
package telemetry
