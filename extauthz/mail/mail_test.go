package mail

import (
	"context"
	"errors"
	"net/mail"
	"strings"
	"testing"
	"time"

	"github.com/tenantgate/tenantgate/internal/smtpsink"
)

func TestParseURL(t *testing.T) {
	for _, tc := range []struct {
		name, raw string
		want      Server
		err       string
	}{
		{"starttls default port", "smtp://mailer@mail.example", Server{Security: StartTLS, Host: "mail.example", Addr: "mail.example:587", Username: "mailer"}, ""},
		{"implicit tls", "smtps://mail.example", Server{Security: ImplicitTLS, Host: "mail.example", Addr: "mail.example:465"}, ""},
		{"insecure with port", "smtp+insecure://127.0.0.1:2525", Server{Security: Insecure, Host: "127.0.0.1", Addr: "127.0.0.1:2525"}, ""},
		{"password in url", "smtp://u:secret@mail.example", Server{}, "--smtp-password-file"},
		{"other scheme", "http://mail.example", Server{}, "must start with"},
		{"path", "smtp://mail.example/x", Server{}, "only [user@]host"},
		{"no host", "smtp://", Server{}, "no host"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseURL(tc.raw)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want one containing %q", err, tc.err)
				}
				if strings.Contains(err.Error(), "secret") {
					t.Fatalf("error repeats the password: %v", err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("ParseURL = %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}

func TestNewSenderNeedsFrom(t *testing.T) {
	if s, err := NewSender("", "", ""); s != nil || err != nil {
		t.Fatalf("no url: %v, %v; want nil, nil", s, err)
	}
	if _, err := NewSender("smtp://h", "", ""); err == nil {
		t.Fatal("no --mail-from accepted")
	}
	if _, err := NewSender("", "", "a@b"); err == nil {
		t.Fatal("--mail-from without --smtp-url accepted")
	}
	if _, err := NewSender("smtp://h", "pw", "a@b"); err == nil {
		t.Fatal("a password without a user accepted")
	}
}

// TestSendThroughRealSMTP delivers through aiosmtpd in each TLS mode, with
// PLAIN authentication, and reads back both parts.
func TestSendThroughRealSMTP(t *testing.T) {
	for _, mode := range []string{smtpsink.StartTLS, smtpsink.SMTPS, smtpsink.None} {
		t.Run(mode, func(t *testing.T) {
			o := smtpsink.Options{TLS: mode, User: "mailer", Password: "s3cret-pw"}
			if mode == smtpsink.None {
				o = smtpsink.Options{TLS: mode}
			}
			sink := smtpsink.Start(t, o)
			pw := ""
			if o.User != "" {
				pw = o.Password
			}
			s, err := NewSender(sink.URL, pw, "Acme <noreply@acme.test>")
			if err != nil {
				t.Fatal(err)
			}
			s.TLSConfig = sink.TLSConfig()
			msg := Message{To: "alice@acme.test", Subject: "Réinitialiser\r\nBcc: x@evil.test", Text: "line one\nline two", HTML: "<p>héllo</p>"}
			if err := s.Send(context.Background(), msg); err != nil {
				t.Fatal(err)
			}
			got := sink.Wait(t, 1, 10*time.Second)[0]
			if got.To != "<alice@acme.test>" || !strings.Contains(got.From, "noreply@acme.test") {
				t.Errorf("To %q From %q", got.To, got.From)
			}
			if got.Header.Get("Bcc") != "" || !strings.HasPrefix(got.Subject, "Réinitialiser") {
				t.Errorf("subject %q, Bcc %q: a line break in the subject made a header", got.Subject, got.Header.Get("Bcc"))
			}
			if got.Text != "line one\r\nline two" || got.HTML != "<p>héllo</p>" {
				t.Errorf("text %q html %q", got.Text, got.HTML)
			}
		})
	}
}

// TestSendRefusesWithoutStartTLS: smtp:// against a server that offers no
// STARTTLS sends nothing (no downgrade to plain text).
func TestSendRefusesWithoutStartTLS(t *testing.T) {
	sink := smtpsink.Start(t, smtpsink.Options{TLS: smtpsink.None})
	s, err := NewSender("smtp://"+sink.Addr, "", "noreply@acme.test")
	if err != nil {
		t.Fatal(err)
	}
	err = s.Send(context.Background(), Message{To: "alice@acme.test", Subject: "x", Text: "x", HTML: "x"})
	if err == nil || !strings.Contains(err.Error(), "STARTTLS") {
		t.Fatalf("Send = %v, want a refusal naming STARTTLS", err)
	}
	time.Sleep(200 * time.Millisecond)
	if n := len(sink.Messages(t)); n != 0 {
		t.Fatalf("%d messages delivered in plain text", n)
	}
}

// TestSendWrongPassword: a refused login is an error that does not carry
// the password.
func TestSendWrongPassword(t *testing.T) {
	sink := smtpsink.Start(t, smtpsink.Options{User: "mailer", Password: "right-password"})
	s, err := NewSender(sink.URL, "wrong-password", "noreply@acme.test")
	if err != nil {
		t.Fatal(err)
	}
	s.TLSConfig = sink.TLSConfig()
	err = s.Send(context.Background(), Message{To: "alice@acme.test", Subject: "x", Text: "x", HTML: "x"})
	if err == nil || strings.Contains(err.Error(), "password") && strings.Contains(err.Error(), "wrong-password") {
		t.Fatalf("Send = %v", err)
	}
}

// TestSendTimeout: a server that never answers holds Send no longer than
// the timeout.
func TestSendTimeout(t *testing.T) {
	ln := listenSilent(t)
	s := &Sender{Server: Server{Security: Insecure, Host: "127.0.0.1", Addr: ln}, From: mail.Address{Address: "a@b.test"}, Timeout: 300 * time.Millisecond}
	start := time.Now()
	err := s.Send(context.Background(), Message{To: "c@d.test", Subject: "x", Text: "x", HTML: "x"})
	if err == nil || time.Since(start) > 3*time.Second {
		t.Fatalf("Send = %v after %v", err, time.Since(start))
	}
}

func TestNilSender(t *testing.T) {
	var s *Sender
	if err := s.Send(context.Background(), Message{}); !errors.Is(err, ErrNotConfigured) {
		t.Fatalf("nil Sender: %v", err)
	}
}

// TestOutboxDrain: Drain returns once the posted messages are delivered
// (they are in the sink), and against a server that never answers it
// gives up with ctx, reporting the delivery it cut short.
func TestOutboxDrain(t *testing.T) {
	sink := smtpsink.Start(t, smtpsink.Options{TLS: smtpsink.None})
	s, err := NewSender(sink.URL, "", "noreply@acme.test")
	if err != nil {
		t.Fatal(err)
	}
	o := NewOutbox(s, nil)
	for range 3 {
		o.Post(Message{To: "alice@acme.test", Subject: "x", Text: "x", HTML: "x"}, "test")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if n := o.Drain(ctx); n != 0 {
		t.Fatalf("Drain cut %d deliveries short", n)
	}
	if n := len(sink.Messages(t)); n != 3 {
		t.Errorf("after Drain the server holds %d messages, want 3", n)
	}

	silent := &Sender{Server: Server{Security: Insecure, Host: "127.0.0.1", Addr: listenSilent(t)}, From: mail.Address{Address: "a@b.test"}, Timeout: 5 * time.Second}
	o = NewOutbox(silent, nil)
	o.Post(Message{To: "c@d.test", Subject: "x", Text: "x", HTML: "x"}, "test")
	ctx, cancel = context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	if n := o.Drain(ctx); n != 1 || time.Since(start) > 2*time.Second {
		t.Errorf("Drain against a silent server = %d after %v, want 1 at ctx's deadline", n, time.Since(start))
	}
}
