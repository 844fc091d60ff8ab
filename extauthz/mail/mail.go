// Package mail sends tenantgate's email (password reset links, invitations,
// "your password changed" notices) over SMTP: net/smtp with TLS required
// unless the operator asked for plain text on purpose, PLAIN
// authentication, and a deadline on every delivery. It knows nothing of
// tenants or links: it delivers a Message.
package mail

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"net/smtp"
	"net/textproto"
	"net/url"
	"strings"
	"sync"
	"time"
)

// Security says how a connection to the SMTP server is protected.
type Security int

const (
	// StartTLS (smtp://): plain TCP, then STARTTLS, which the server must
	// offer; without it nothing is sent.
	StartTLS Security = iota
	// ImplicitTLS (smtps://): TLS from the first byte.
	ImplicitTLS
	// Insecure (smtp+insecure://): plain text throughout, for a local
	// development server only.
	Insecure
)

// Server is a parsed --smtp-url.
type Server struct {
	Security Security
	// Host is the server's host name (checked against its certificate) and
	// Addr is host:port.
	Host, Addr string
	// Username is the URL's user, for PLAIN authentication; empty means no
	// authentication.
	Username string
}

// Default ports by scheme: submission with STARTTLS (RFC 6409), submissions
// (RFC 8314), and plain SMTP.
const (
	portStartTLS = "587"
	portImplicit = "465"
	portInsecure = "25"
)

// ParseURL parses --smtp-url: smtp://[user@]host[:port] (STARTTLS
// required, default port 587), smtps://[user@]host[:port] (implicit TLS,
// 465) or smtp+insecure://[user@]host[:port] (no TLS, 25). A password in
// the URL is refused (it belongs in --smtp-password-file), and so are a
// path, query or fragment. Errors never repeat the URL, which may hold a
// user name.
func ParseURL(raw string) (Server, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return Server{}, errors.New("--smtp-url is not a URL")
	}
	var s Server
	port := ""
	switch u.Scheme {
	case "smtp":
		s.Security, port = StartTLS, portStartTLS
	case "smtps":
		s.Security, port = ImplicitTLS, portImplicit
	case "smtp+insecure":
		s.Security, port = Insecure, portInsecure
	default:
		return Server{}, errors.New("--smtp-url must start with smtp:// (STARTTLS), smtps:// or smtp+insecure:// (local development only)")
	}
	if _, ok := u.User.Password(); ok {
		return Server{}, errors.New("--smtp-url must not hold a password: put it in --smtp-password-file")
	}
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
		return Server{}, errors.New("--smtp-url takes only [user@]host[:port]")
	}
	s.Host = u.Hostname()
	if s.Host == "" {
		return Server{}, errors.New("--smtp-url has no host")
	}
	if p := u.Port(); p != "" {
		port = p
	}
	s.Addr = net.JoinHostPort(s.Host, port)
	s.Username = u.User.Username()
	return s, nil
}

// Message is one email: to one recipient, with a plain-text and an HTML
// body (sent as multipart/alternative).
type Message struct {
	To      string
	Subject string
	Text    string
	HTML    string
}

// DefaultTimeout bounds one delivery, connection to QUIT.
const DefaultTimeout = 10 * time.Second

// ErrNotConfigured is returned by a nil Sender's Send: no --smtp-url.
var ErrNotConfigured = errors.New("mail is not configured (--smtp-url)")

// Sender delivers messages to one SMTP server. Fill in the fields; a
// Sender is safe for concurrent use (each Send is its own connection).
type Sender struct {
	Server Server
	// Password is for PLAIN authentication with Server.Username.
	Password string
	// From is the envelope sender and From header (--mail-from).
	From mail.Address
	// Timeout bounds each delivery; zero means DefaultTimeout.
	Timeout time.Duration
	// TLSConfig, when set, is the base of the TLS configuration (tests
	// trust their own CA here); ServerName is always Server.Host.
	TLSConfig *tls.Config
	// Now is the clock of the Date header; nil means time.Now.
	Now func() time.Time
}

// NewSender makes a Sender from the serve flags: the --smtp-url, the
// password read from --smtp-password-file ("" for none) and --mail-from.
// It returns nil, nil when rawURL is empty (mail not configured).
func NewSender(rawURL, password, from string) (*Sender, error) {
	if rawURL == "" {
		if from != "" || password != "" {
			return nil, errors.New("--mail-from and --smtp-password-file need --smtp-url")
		}
		return nil, nil
	}
	srv, err := ParseURL(rawURL)
	if err != nil {
		return nil, err
	}
	if from == "" {
		return nil, errors.New("--smtp-url needs --mail-from ADDR")
	}
	addr, err := mail.ParseAddress(from)
	if err != nil {
		return nil, errors.New("--mail-from is not an email address")
	}
	if password != "" && srv.Username == "" {
		return nil, errors.New("--smtp-password-file needs a user in --smtp-url (smtp://user@host)")
	}
	return &Sender{Server: srv, Password: password, From: *addr}, nil
}

// Send delivers m, within the Sender's timeout or ctx's deadline, whichever
// comes first. It returns ErrNotConfigured for a nil Sender. An error names
// the step that failed and never the message's content.
func (s *Sender) Send(ctx context.Context, m Message) error {
	if s == nil {
		return ErrNotConfigured
	}
	to, err := mail.ParseAddress(m.To)
	if err != nil || to.Name != "" {
		return errors.New("send mail: bad recipient address")
	}
	body, err := s.compose(to.Address, m)
	if err != nil {
		return fmt.Errorf("send mail: %w", err)
	}
	timeout := s.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := s.deliver(ctx, to.Address, body); err != nil {
		return fmt.Errorf("send mail via %s: %w", s.Server.Addr, quiet(err))
	}
	return nil
}

func (s *Sender) tlsConfig() *tls.Config {
	c := &tls.Config{MinVersion: tls.VersionTLS12}
	if s.TLSConfig != nil {
		c = s.TLSConfig.Clone()
	}
	c.ServerName = s.Server.Host
	return c
}

// deliver runs one SMTP transaction. The connection's deadline is ctx's, so
// a server that stalls at any step cannot hold the caller past it.
func (s *Sender) deliver(ctx context.Context, to string, body []byte) error {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", s.Server.Addr)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if s.Server.Security == ImplicitTLS {
		tc := tls.Client(conn, s.tlsConfig())
		if err := tc.HandshakeContext(ctx); err != nil {
			return fmt.Errorf("tls: %w", err)
		}
		conn = tc
	}
	c, err := smtp.NewClient(conn, s.Server.Host)
	if err != nil {
		return fmt.Errorf("greeting: %w", err)
	}
	defer c.Close()
	if err := c.Hello(helloName(s.From.Address)); err != nil {
		return fmt.Errorf("hello: %w", err)
	}
	if s.Server.Security == StartTLS {
		if ok, _ := c.Extension("STARTTLS"); !ok {
			return errors.New("the server does not offer STARTTLS, which smtp:// requires (smtps:// for implicit TLS)")
		}
		if err := c.StartTLS(s.tlsConfig()); err != nil {
			return fmt.Errorf("starttls: %w", err)
		}
	}
	if s.Server.Username != "" {
		// smtp.PlainAuth itself refuses to send the password over a
		// connection without TLS unless the server is on localhost.
		if err := c.Auth(smtp.PlainAuth("", s.Server.Username, s.Password, s.Server.Host)); err != nil {
			return fmt.Errorf("auth: %w", err)
		}
	}
	if err := c.Mail(s.From.Address); err != nil {
		return fmt.Errorf("mail from: %w", err)
	}
	if err := c.Rcpt(to); err != nil {
		return fmt.Errorf("rcpt to: %w", err)
	}
	w, err := c.Data()
	if err != nil {
		return fmt.Errorf("data: %w", err)
	}
	if _, err := w.Write(body); err != nil {
		return fmt.Errorf("data: %w", err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("data: %w", err)
	}
	if err := c.Quit(); err != nil {
		return fmt.Errorf("quit: %w", err)
	}
	return nil
}

// serverError is an SMTP server's refusal, without its text, which may
// repeat the recipient's address ("550 <alice@example.com>: no such user").
type serverError struct {
	step string
	code int
}

func (e *serverError) Error() string {
	return fmt.Sprintf("%s: the server answered %d", e.step, e.code)
}

// quiet replaces a server's reply text in err by its code alone.
func quiet(err error) error {
	var te *textproto.Error
	if errors.As(err, &te) {
		step, _, _ := strings.Cut(err.Error(), ":")
		return &serverError{step: step, code: te.Code}
	}
	return err
}

// helloName is the EHLO argument: the domain of the From address (a
// host name is not known here, and "localhost", net/smtp's default, is
// refused by some servers).
func helloName(from string) string {
	if _, d, ok := strings.Cut(from, "@"); ok && d != "" {
		return d
	}
	return "localhost"
}

// compose renders m as an RFC 5322 message with a multipart/alternative
// body (text first, HTML last: RFC 2046 §5.1.4, the last part is the
// preferred one), every part quoted-printable. Header values are encoded,
// so nothing in them can start a new header.
func (s *Sender) compose(to string, m Message) ([]byte, error) {
	var b bytes.Buffer
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	var id [16]byte
	if _, err := io.ReadFull(rand.Reader, id[:]); err != nil {
		return nil, fmt.Errorf("message id: %w", err)
	}
	mw := multipart.NewWriter(&b)
	h := textproto.MIMEHeader{}
	h.Set("From", s.From.String())
	h.Set("To", (&mail.Address{Address: to}).String())
	h.Set("Subject", mime.QEncoding.Encode("utf-8", m.Subject))
	h.Set("Date", now().Format(time.RFC1123Z))
	h.Set("Message-ID", "<"+hex.EncodeToString(id[:])+"@"+helloName(s.From.Address)+">")
	h.Set("MIME-Version", "1.0")
	h.Set("Content-Type", "multipart/alternative; boundary="+mw.Boundary())
	h.Set("Auto-Submitted", "auto-generated")
	var head bytes.Buffer
	for _, k := range []string{"From", "To", "Subject", "Date", "Message-ID", "MIME-Version", "Content-Type", "Auto-Submitted"} {
		v := h.Get(k)
		if strings.ContainsAny(v, "\r\n") {
			return nil, fmt.Errorf("header %s holds a line break", k)
		}
		fmt.Fprintf(&head, "%s: %s\r\n", k, v)
	}
	head.WriteString("\r\n")
	for _, part := range []struct{ typ, body string }{
		{"text/plain; charset=utf-8", m.Text},
		{"text/html; charset=utf-8", m.HTML},
	} {
		pw, err := mw.CreatePart(textproto.MIMEHeader{
			"Content-Type":              {part.typ},
			"Content-Transfer-Encoding": {"quoted-printable"},
		})
		if err != nil {
			return nil, err
		}
		qw := quotedprintable.NewWriter(pw)
		if _, err := io.WriteString(qw, crlf(part.body)); err != nil {
			return nil, err
		}
		if err := qw.Close(); err != nil {
			return nil, err
		}
	}
	if err := mw.Close(); err != nil {
		return nil, err
	}
	return append(head.Bytes(), b.Bytes()...), nil
}

// crlf turns every line ending into CRLF, as SMTP wants.
func crlf(s string) string {
	s = strings.ReplaceAll(s, "\r\n", "\n")
	return strings.ReplaceAll(s, "\n", "\r\n")
}

// Outbox sends messages in the background, so that a request never waits
// on the mail server: a sign-in page answers at once and in the same time
// whether or not a message went out. At most Concurrency deliveries run at
// once; a message beyond that is dropped and logged. Failures are logged
// with the reason given by the caller, never the message or its recipient.
type Outbox struct {
	Sender   *Sender
	Log      *slog.Logger
	slots    chan struct{}
	inFlight sync.WaitGroup
}

// DefaultConcurrency bounds an Outbox's deliveries in flight.
const DefaultConcurrency = 16

// NewOutbox returns an Outbox sending with s (nil: mail not configured).
func NewOutbox(s *Sender, log *slog.Logger) *Outbox {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Outbox{Sender: s, Log: log, slots: make(chan struct{}, DefaultConcurrency)}
}

// Configured reports whether the Outbox can send at all.
func (o *Outbox) Configured() bool { return o != nil && o.Sender != nil }

// Post queues m for delivery and returns at once. what names the message's
// kind for the log ("password reset"), attrs are extra log attributes
// (a tenant id; never an address, link or token). done, if not nil, is
// called with the outcome once delivery ends (tests).
func (o *Outbox) Post(m Message, what string, attrs ...any) {
	if !o.Configured() {
		return
	}
	select {
	case o.slots <- struct{}{}:
	default:
		o.Log.Error("mail not sent: too many deliveries in flight", append([]any{"mail", what}, attrs...)...)
		return
	}
	o.inFlight.Add(1)
	go func() {
		defer o.inFlight.Done()
		defer func() { <-o.slots }()
		if err := o.Sender.Send(context.Background(), m); err != nil {
			o.Log.Error("mail not sent", append([]any{"mail", what, "err", err}, attrs...)...)
			return
		}
		o.Log.Info("mail sent", append([]any{"mail", what}, attrs...)...)
	}()
}

// Drain waits until every message posted so far is delivered or has
// failed, or until ctx is done, and reports how many deliveries were still
// under way then (0: none was cut short). serve calls it on shutdown, after
// its listeners stopped taking requests, so that a reset link asked for just
// before a restart is not lost with the process.
func (o *Outbox) Drain(ctx context.Context) int {
	if !o.Configured() {
		return 0
	}
	done := make(chan struct{})
	go func() { o.inFlight.Wait(); close(done) }()
	select {
	case <-done:
		return 0
	case <-ctx.Done():
		return len(o.slots)
	}
}
