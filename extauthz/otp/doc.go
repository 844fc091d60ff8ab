// Package otp holds the one-time passwords of the second sign-in step:
// TOTP codes (RFC 6238 over HOTP, RFC 4226) as authenticator apps make
// them, and recovery codes, for when the app is lost.
//
// TOTP here is the profile every authenticator app implements: a 160-bit
// secret, HMAC-SHA-1, 30-second steps, 6 digits. A code is accepted for
// the current step and one step either side (clock drift, and the time it
// takes to type), and never for a step at or before the last one accepted
// (Verify's after): a code is single use, and so is every code before it.
// Keeping that last step, across replicas, is the store's business.
//
// Recovery codes are random (50 bits each), shown once, stored as SHA-256
// hashes: they are not passwords a person chose, so a fast hash is enough
// to make a stolen record useless.
//
// Every parser of what a person types (ParseCode, ParseRecoveryCode)
// bounds its input and accepts one spelling only after normalising
// spaces, dashes and case; the fuzz tests hold them to that.
package otp
