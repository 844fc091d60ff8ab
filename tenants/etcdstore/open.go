package etcdstore

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tenantgate/tenantgate/tenants"
	"github.com/tenantgate/tenantgate/tenants/internal/record"
)

// Defaults of Options.
const (
	// DefaultPrefix is the key prefix of tenantgate's data (--etcd-prefix).
	DefaultPrefix = "/tenantgate/"
	// DefaultCallTimeout bounds every etcd call: etcd's client waits for a
	// reachable member until the call's context ends, so a call without a
	// deadline would wait for ever while etcd is down.
	DefaultCallTimeout = 5 * time.Second
	// DefaultProgressInterval is how often the snapshot follower checks
	// with etcd that its snapshot is current (Confirmed).
	DefaultProgressInterval = 2 * time.Second
)

// Options configure Open. Endpoints is required; the zero value of every
// other field is a working default.
type Options struct {
	// Endpoints are the etcd members' client URLs (https://host:port).
	Endpoints []string
	// Prefix is the key prefix of every record; empty means
	// DefaultPrefix. A "/" is appended when it does not end in one, so
	// that prefixes "/a" and "/ab" never share a key.
	Prefix string
	// TLS is the client's TLS configuration (trusted CA, client
	// certificate); nil for plain http:// endpoints.
	TLS *tls.Config
	// Username and Password authenticate to etcd when Username is set.
	Username, Password string
	// CallTimeout bounds each etcd call that the caller's context does not
	// bound sooner; zero means DefaultCallTimeout.
	CallTimeout time.Duration
	// ProgressInterval is how often the follower checks that its
	// snapshot is current (one small linearizable read, Confirmed); zero
	// means DefaultProgressInterval.
	ProgressInterval time.Duration
	// Now is the clock of timestamps the store sets itself and of expiry
	// decisions; nil means time.Now.
	Now func() time.Time
	// Rand is the source of internal ids; nil means crypto/rand.Reader.
	Rand io.Reader
	// Log receives what the snapshot follower cannot return to a caller
	// (a watch lost, a reload failed); nil discards it.
	Log *slog.Logger
}

// Store is the etcd backend of tenants.Store. Every method is safe for
// concurrent use, from any number of processes sharing the prefix.
type Store struct {
	cli         *clientv3.Client
	endpoints   string
	prefix      string
	callTimeout time.Duration
	progress    time.Duration
	now         func() time.Time
	rand        io.Reader
	log         *slog.Logger

	leases leases

	// ctx ends when the Store is closed; the follower runs under it.
	ctx    context.Context
	cancel context.CancelFunc

	mu       sync.Mutex
	closed   bool
	watchers map[chan struct{}]struct{}
	f        follower
	// followed is closed when the follower goroutine has returned; nil
	// until it starts.
	followed chan struct{}
}

var _ tenants.Store = (*Store)(nil)

// Open connects to etcd and checks that it answers and holds a tenantgate
// store of a schema this binary reads (creating the schema record of a new
// store). It fails, within opts.CallTimeout, with an error naming the
// endpoints when etcd does not answer, which is also how a TLS mistake
// shows (etcd's client reports an untrusted server certificate or a
// missing client certificate as a timeout); with an error wrapping
// tenants.ErrCorrupt when the prefix holds a store of another schema than
// 2 (which it migrates: migrate.go) or record.SchemaVersion.
func Open(opts Options) (*Store, error) {
	if len(opts.Endpoints) == 0 {
		return nil, errors.New("open etcd store: no endpoints")
	}
	if opts.Prefix == "" {
		opts.Prefix = DefaultPrefix
	}
	if !strings.HasSuffix(opts.Prefix, "/") {
		opts.Prefix += "/"
	}
	if opts.CallTimeout <= 0 {
		opts.CallTimeout = DefaultCallTimeout
	}
	if opts.ProgressInterval <= 0 {
		opts.ProgressInterval = DefaultProgressInterval
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Rand == nil {
		opts.Rand = rand.Reader
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	eps := strings.Join(opts.Endpoints, ",")
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   opts.Endpoints,
		DialTimeout: opts.CallTimeout,
		TLS:         opts.TLS,
		Username:    opts.Username,
		Password:    opts.Password,
		Logger:      zap.NewNop(),
		// Keep-alives notice a member that went away while a watch is
		// quiet, so the client fails over instead of waiting on it.
		DialKeepAliveTime:    10 * time.Second,
		DialKeepAliveTimeout: opts.CallTimeout,
	})
	if err != nil {
		return nil, fmt.Errorf("open etcd store at %s: %w", eps, explain(err, opts.CallTimeout))
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Store{
		cli:         cli,
		endpoints:   eps,
		prefix:      opts.Prefix,
		callTimeout: opts.CallTimeout,
		progress:    opts.ProgressInterval,
		now:         opts.Now,
		rand:        opts.Rand,
		log:         opts.Log,
		ctx:         ctx,
		cancel:      cancel,
		watchers:    map[chan struct{}]struct{}{},
	}
	s.leases.init(s)
	if err := s.prepare(); err != nil {
		cancel()
		cli.Close()
		return nil, fmt.Errorf("open etcd store at %s (prefix %s): %w", eps, opts.Prefix, err)
	}
	return s, nil
}

// ErrUnreachable is wrapped by the error of every call that etcd did not
// answer: no member reached within the call timeout, a member without a
// leader, a request etcd timed out. A TLS setup that does not match looks
// the same (etcd's client reports an untrusted certificate as a timeout).
// Such an error may go away by itself, when etcd is back: a caller that
// can wait (serve at start) tries again; every other error of the store
// is an answer from etcd, which trying again does not change.
var ErrUnreachable = errors.New("etcd did not answer")

// explain adds what an operator needs to an error of etcd's client: a
// timeout is how an unreachable cluster and a TLS mistake both look.
func explain(err error, timeout time.Duration) error {
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%w within %s: it is unreachable, or TLS does not match "+
			"(check --etcd-ca-file, --etcd-cert-file and --etcd-key-file, and https:// in --etcd-endpoints): %w", ErrUnreachable, timeout, err)
	case errors.Is(err, rpctypes.ErrNoLeader), errors.Is(err, rpctypes.ErrLeaderChanged), errors.Is(err, rpctypes.ErrStopped),
		errors.Is(err, rpctypes.ErrTimeout), errors.Is(err, rpctypes.ErrTimeoutDueToLeaderFail),
		errors.Is(err, rpctypes.ErrTimeoutDueToConnectionLost), errors.Is(err, rpctypes.ErrUnhealthy),
		errors.Is(err, rpctypes.ErrTooManyRequests), status.Code(err) == codes.Unavailable:
		return fmt.Errorf("%w in time: %w", ErrUnreachable, err)
	case errors.Is(err, rpctypes.ErrAuthFailed), errors.Is(err, rpctypes.ErrPermissionDenied),
		errors.Is(err, rpctypes.ErrInvalidAuthToken), errors.Is(err, rpctypes.ErrUserEmpty):
		return fmt.Errorf("etcd refused the credentials (check --etcd-username and --etcd-password-file): %w", err)
	}
	return err
}

// prepare reads the schema record, creating it in an empty prefix,
// migrates a store of schema 2 (migrateSchema2), and refuses a schema this
// binary does not read.
func (s *Store) prepare() error {
	ctx, cancel := context.WithTimeout(s.ctx, s.callTimeout)
	defer cancel()
	key := s.prefix + keySchema
	resp, err := s.cli.Get(ctx, key)
	if err != nil {
		return explain(err, s.callTimeout)
	}
	if len(resp.Kvs) == 0 {
		v, err := record.Encode(record.Schema{V: record.SchemaVersion})
		if err != nil {
			return err
		}
		tx, err := s.cli.Txn(ctx).
			If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
			Then(clientv3.OpPut(key, string(v))).
			Else(clientv3.OpGet(key)).
			Commit()
		if err != nil {
			return explain(err, s.callTimeout)
		}
		if tx.Succeeded {
			return nil
		}
		// Another process created it a moment ago: read theirs.
		resp = (*clientv3.GetResponse)(tx.Responses[0].GetResponseRange())
	}
	v, err := schemaOf(resp.Kvs[0].Value)
	if err != nil {
		return err
	}
	migrate, err := checkSchema(v)
	if err != nil || !migrate {
		return err
	}
	return s.migrateSchema2()
}

// Close stops following the store, closes every Watch channel and the
// connection to etcd. It is safe to call more than once; later calls
// return nil. Methods called after Close return an error.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	for ch := range s.watchers {
		close(ch)
	}
	clear(s.watchers)
	followed := s.followed
	s.f.broadcast()
	s.mu.Unlock()
	s.cancel()
	if followed != nil {
		<-followed
	}
	if err := s.cli.Close(); err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("close etcd store: %w", err)
	}
	return nil
}

// errClosed is returned by every method called after Close.
var errClosed = errors.New("etcd store is closed")

// call returns a context for one etcd call: ctx, bounded by the store's
// call timeout, and ended when the store is closed.
func (s *Store) call(ctx context.Context) (context.Context, context.CancelFunc, error) {
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return nil, nil, errClosed
	}
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, s.callTimeout)
	stop := context.AfterFunc(s.ctx, cancel)
	return ctx, func() { stop(); cancel() }, nil
}

// newID returns 16 random bytes in lower-case hex.
func (s *Store) newID() (string, error) {
	var b [16]byte
	if _, err := io.ReadFull(s.rand, b[:]); err != nil {
		return "", fmt.Errorf("generate id: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

// Key namespaces under the prefix (doc.go), named like bbolt's buckets.
const (
	keySchema      = "schema"
	nsTenants      = "tenants"
	nsDomains      = "domains"
	nsEmailDomains = "emailDomains"
	nsUsers        = "users"
	nsUserEmails   = "userEmails"
	nsMemberships  = "memberships"
	nsExternals    = "externals"
	nsRevocations  = "revocations"
	nsAssertions   = "assertions"
	nsCounters     = "counters"
	nsAudit        = record.NamespaceAudit
	nsAuditHeads   = record.NamespaceAuditHeads
	nsSessions     = record.NamespaceSessions
	nsPasskeys     = record.NamespacePasskeys
)

// key is the etcd key of a record: prefix, namespace, "/", name.
func (s *Store) key(ns, name string) string { return s.prefix + ns + "/" + name }

// nsPrefix is the common prefix of every key of a namespace, or, with a
// name prefix, of the keys in it that start with it.
func (s *Store) nsPrefix(ns string, namePrefix ...string) string {
	return s.prefix + ns + "/" + strings.Join(namePrefix, "")
}

// split returns the namespace and name of one of the store's keys.
func (s *Store) split(key []byte) (ns, name string, ok bool) {
	rest, ok := strings.CutPrefix(string(key), s.prefix)
	if !ok {
		return "", "", false
	}
	return strings.Cut(rest, "/")
}

// keyMasterKeyCheck holds a value sealed under the master key of the first
// process that asked for it (MasterKeyCheck).
const keyMasterKeyCheck = "masterKeyCheck"

// MasterKeyCheck stores sealed (a value sealed under the caller's master
// key) if the store holds no check value yet, and returns the one it holds:
// the first process's. Every process of a fleet calls it at start and must
// be able to open what it returns, so that a replica given another master
// key is refused before it seals anything the others cannot open, even
// while no tenant exists yet. The store keeps the bytes opaque.
func (s *Store) MasterKeyCheck(ctx context.Context, sealed []byte) ([]byte, error) {
	if len(sealed) == 0 {
		return nil, errors.New("master key check: empty value")
	}
	cctx, cancel, err := s.call(ctx)
	if err != nil {
		return nil, err
	}
	defer cancel()
	key := s.prefix + keyMasterKeyCheck
	resp, err := s.cli.Txn(cctx).
		If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
		Then(clientv3.OpPut(key, string(sealed))).
		Else(clientv3.OpGet(key)).
		Commit()
	if err != nil {
		return nil, fmt.Errorf("master key check at %s: %w", s.endpoints, explain(err, s.callTimeout))
	}
	if resp.Succeeded {
		return sealed, nil
	}
	kvs := resp.Responses[0].GetResponseRange().GetKvs()
	if len(kvs) == 0 {
		return nil, errors.New("master key check: the check value vanished")
	}
	return kvs[0].Value, nil
}
