package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/tenantgate/tenantgate/extauthz"
	"github.com/tenantgate/tenantgate/extauthz/account"
	"github.com/tenantgate/tenantgate/extauthz/audit"
	"github.com/tenantgate/tenantgate/extauthz/login"
	"github.com/tenantgate/tenantgate/extauthz/mail"
	"github.com/tenantgate/tenantgate/extauthz/password"
	"github.com/tenantgate/tenantgate/extauthz/seal"
	"github.com/tenantgate/tenantgate/extauthz/session"
	"github.com/tenantgate/tenantgate/extauthz/telemetry"
	"github.com/tenantgate/tenantgate/internal/gcheadroom"
	"github.com/tenantgate/tenantgate/internal/metrics"
	"github.com/tenantgate/tenantgate/tenants"
	"github.com/tenantgate/tenantgate/tenants/etcdstore"
)

// serveFlags are the flags of `tenantgate serve` (CONTRACT.md).
type serveFlags struct {
	db, grpcAddr, httpAddr, adminAddr string
	baseDomains                       []string
	pathPrefix                        string
	insecureCookies                   bool
	adminTokenFile, masterKeyFile     string
	allowLoopbackHTTPIDP              bool
	sessionTTL                        time.Duration
	logLevel                          string
	inlineAuth                        bool
	globalSessionTTL                  time.Duration
	tenantLinks                       string
	trustedProxyHops                  int
	// dbSet is whether --db was given (command line, environment or
	// config file), which --etcd-endpoints refuses.
	dbSet        bool
	etcd         etcdFlags
	maxStaleness time.Duration
	grpcTLS      grpcTLSFlags
	mail         mailFlags
	metrics      metricsFlags
	// auditRetention is --audit-retention, auditLog --audit-log ("-":
	// stdout, the writer of that name).
	auditRetention time.Duration
	auditLog       string
	stdout         io.Writer
	tracing        tracingFlags
	// gcHeadroomMiB is --gc-headroom-mib (internal/gcheadroom).
	gcHeadroomMiB int
}

func newServeCmd() *cobra.Command {
	var f serveFlags
	cmd := &cobra.Command{
		Use:   "serve [--config FILE] [flags]",
		Short: "Run the ext_authz gRPC server, the /_auth/ sign-in pages and the admin endpoints",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			f.dbSet = cmd.Flags().Changed("db")
			f.tracing.set = cmd.Flags().Changed("tracing")
			f.stdout = cmd.OutOrStdout()
			return serve(ctx, &f, cmd.ErrOrStderr())
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.db, "db", "./tenantgate.db", "the bbolt file; created if missing (not with --etcd-endpoints)")
	f.etcd.register(fl)
	f.grpcTLS.register(fl)
	f.mail.register(fl)
	f.metrics.register(fl)
	f.tracing.register(fl)
	fl.DurationVar(&f.maxStaleness, "store-max-staleness", 60*time.Second, "with etcd unreachable, how long Check keeps answering from the last snapshot before it denies everything (503)")
	fl.StringVar(&f.grpcAddr, "grpc-addr", "127.0.0.1:9001", "address of envoy.service.auth.v3.Authorization and grpc.health.v1.Health")
	fl.StringVar(&f.httpAddr, "http-addr", "127.0.0.1:9002", "address of the sign-in endpoints under /_auth/ and per-tenant JWKS")
	fl.StringVar(&f.adminAddr, "admin-addr", "127.0.0.1:9003", "address of /healthz, /readyz, /metrics and the admin API")
	fl.StringArrayVar(&f.baseDomains, "base-domain", nil, "repeatable; <id>.D resolves to tenant <id>, D itself is the apex host")
	fl.StringVar(&f.pathPrefix, "path-prefix", "/org", "on the apex host, P/<id>/… resolves to tenant <id>")
	fl.BoolVar(&f.insecureCookies, "insecure-cookies", false, "plain-http development: no Secure, no __Host- prefix")
	fl.StringVar(&f.adminTokenFile, "admin-token-file", "", "bearer token for the admin API; without it the admin API is off (health and metrics stay)")
	fl.StringVar(&f.masterKeyFile, "master-key-file", "./tenantgate.key", "key that encrypts signing keys and secrets at rest; created (0600) if missing")
	fl.BoolVar(&f.allowLoopbackHTTPIDP, "allow-loopback-http-idp", false, "accept http:// IdP URLs that point at loopback addresses (tests and local development only)")
	fl.DurationVar(&f.sessionTTL, "session-ttl", session.DefaultTTL, fmt.Sprintf("lifetime of a session (at most %s)", session.MaxTTL))
	fl.StringVar(&f.logLevel, "log-level", "info", "debug, info, warn or error")
	fl.BoolVar(&f.inlineAuth, "inline-auth", false, "answer /_auth/ requests inside Check, so Envoy or a mesh needs no route to --http-addr (envoy/envoy-inline.yaml)")
	fl.DurationVar(&f.globalSessionTTL, "global-session-ttl", login.DefaultGlobalTTL, fmt.Sprintf("lifetime of the apex host's global session, which lists a person's tenants and switches between them (at most %s)", session.MaxTTL))
	fl.IntVar(&f.trustedProxyHops, "trusted-proxy-hops", 0, "how many X-Forwarded-For entries, counted from the right, were added by trusted proxies in front of Envoy; the client address is the one before them. Set it, and Envoy's xff_num_trusted_hops, to the number of load balancers in front of Envoy (docs/load-balancer.md)")
	fl.DurationVar(&f.auditRetention, "audit-retention", audit.DefaultRetention, "how long audit events are kept; older ones are pruned in the background (hourly)")
	fl.StringVar(&f.auditLog, "audit-log", "", "also write every audit event as a JSON line to FILE (appended, created 0600) or - (standard output)")
	fl.IntVar(&f.gcHeadroomMiB, "gc-headroom-mib", gcheadroom.DefaultHeadroom>>20, "collect garbage after at least this many MiB of allocation, not after the live heap's size (Go's GOGC=100) while that is smaller: serve's live heap is small and a Check allocates, so this saves the CPU of most collections for at most this much more memory; 0 leaves Go's default, and GOGC in the environment wins")
	fl.StringVar(&f.tenantLinks, "tenant-links", "host", "how the apex host links to tenants (discovery, the chooser): host (<id>.<base-domain>) or path (<path-prefix>/<id>/ on the apex host)")
	return cmd
}

// server is everything serve runs, wired together. Its listeners answer
// from the moment serve starts; until the store is open (etcd unreachable
// at start) every endpoint but /healthz and /metrics answers 503, Check
// denies everything with 503, and the replica reports itself not ready.
type server struct {
	log       *slog.Logger
	snapshots *tenants.Current
	health    *health.Server
	// metrics are serve's Prometheus metrics, nil with --metrics=false;
	// pingFailures counts failed readiness pings of the store.
	metrics      *metrics.Metrics
	pingFailures atomic.Uint64
	// adminOn is whether the admin API is on (--admin-token-file).
	adminOn bool
	// auditStream is where audit events are also written (--audit-log),
	// nil for none.
	auditStream io.Writer
	// accounts is the account pages' mail (reset, invitations, notices),
	// invites the admin API's invitations; sender nil: mail is off.
	accounts *login.Accounts
	sender   *mail.Sender
	scheme   string
	// opened is what serve built once the store was open; nil until then.
	opened atomic.Pointer[opened]
	// tracer starts spans; nil: tracing off.
	tracer *telemetry.Tracer
}

// opened is the part of serve that needs the store.
type opened struct {
	store tenants.Store
	// signIn is the sign-in handler (/_auth/ on --http-addr, and inline).
	signIn http.Handler
	// adminAPI serves the admin API; nil without --admin-token-file.
	adminAPI http.Handler
}

// The etcd store's counters are the fleet's sign-in attempt counters.
var _ login.Counter = (*etcdstore.Counter)(nil)

// ready reports whether the store is open and the snapshot is served
// (loaded, and not withheld as stale).
func (s *server) ready() bool { return s.opened.Load() != nil && s.snapshots.Load() != nil }

// signIn is the sign-in handler once the store is open; before, a sign-in
// handler without tenants, which answers 503 unavailable to every request
// as it does while the snapshot is withheld.
func (s *server) signIn(pending http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if o := s.opened.Load(); o != nil {
			o.signIn.ServeHTTP(w, r)
			return
		}
		pending.ServeHTTP(w, r)
	})
}

// setServing sets the gRPC health status of Check (and of the server as a
// whole).
func (s *server) setServing(serving bool) {
	status := healthpb.HealthCheckResponse_NOT_SERVING
	if serving {
		status = healthpb.HealthCheckResponse_SERVING
	}
	s.health.SetServingStatus("", status)
	s.health.SetServingStatus("envoy.service.auth.v3.Authorization", status)
}

func serve(ctx context.Context, f *serveFlags, stderr interface{ Write([]byte) (int, error) }) error {
	var level slog.Level
	if err := level.UnmarshalText([]byte(f.logLevel)); err != nil {
		return fmt.Errorf("--log-level %q: use debug, info, warn or error", f.logLevel)
	}
	// Lines logged with a request's context carry its request and trace ids.
	log := slog.New(telemetry.LogHandler(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: level})))

	resolver, err := newResolver(f.baseDomains, f.pathPrefix)
	if err != nil {
		return err
	}
	if f.sessionTTL <= 0 || f.sessionTTL > session.MaxTTL {
		return fmt.Errorf("--session-ttl %s: must be between 1s and %s", f.sessionTTL, session.MaxTTL)
	}
	if f.globalSessionTTL <= 0 || f.globalSessionTTL > session.MaxTTL {
		return fmt.Errorf("--global-session-ttl %s: must be between 1s and %s", f.globalSessionTTL, session.MaxTTL)
	}
	if f.tenantLinks != "host" && f.tenantLinks != "path" {
		return fmt.Errorf("--tenant-links %q: use host or path", f.tenantLinks)
	}
	if f.trustedProxyHops < 0 {
		return fmt.Errorf("--trusted-proxy-hops %d: must be 0 (Envoy is the edge) or the number of proxies in front of Envoy", f.trustedProxyHops)
	}
	var adminToken string
	if f.adminTokenFile != "" {
		if adminToken, err = readAdminToken(f.adminTokenFile); err != nil {
			return err
		}
	}
	if err := f.etcd.check(f.dbSet); err != nil {
		return err
	}
	if f.auditRetention < time.Hour {
		return fmt.Errorf("--audit-retention %s: must be at least 1h", f.auditRetention)
	}
	if f.maxStaleness <= 0 {
		return fmt.Errorf("--store-max-staleness %s: must be positive", f.maxStaleness)
	}
	if f.gcHeadroomMiB < 0 || f.gcHeadroomMiB > maxGCHeadroomMiB {
		return fmt.Errorf("--gc-headroom-mib %d: must be between 0 (Go's default) and %d", f.gcHeadroomMiB, maxGCHeadroomMiB)
	}
	// The snapshot is confirmed often enough that --store-max-staleness
	// counts from moments before etcd went away, not seconds before.
	f.etcd.progressInterval = min(etcdstore.DefaultProgressInterval, f.maxStaleness/10)
	// Every mistake in the store's flags and the files they name is found
	// now, before serve creates a key file or listens: only etcd's absence
	// is waited out.
	open, err := storeOpener(f.db, &f.etcd, log)
	if err != nil {
		return err
	}
	grpcTLS, err := f.grpcTLS.serverOption(log)
	if err != nil {
		return err
	}
	sender, err := f.mail.sender()
	if err != nil {
		return err
	}
	mtr, err := f.metrics.build()
	if err != nil {
		return err
	}
	auditStream, closeAuditLog, err := openAuditLog(f)
	if err != nil {
		return err
	}
	defer closeAuditLog()
	sealer, err := seal.LoadOrCreateMasterKey(f.masterKeyFile)
	if err != nil {
		return fmt.Errorf("master key: %w", err)
	}
	startGCHeadroom(ctx, f.gcHeadroomMiB, log)
	tracer, stopTracing, err := f.tracing.start(ctx, log)
	if err != nil {
		return err
	}
	defer stopTracing()

	snapshots := &tenants.Current{}
	cookieName := session.CookieName(f.insecureCookies)
	verifier := session.NewVerifier()
	check := &extauthz.Server{
		Authorizer: &extauthz.Authorizer{Snapshots: snapshots, Resolver: resolver, Verifier: verifier, CookieName: cookieName, Log: log},
		Log:        log,
		Tracer:     tracer,
	}
	srv := &server{log: log, snapshots: snapshots, metrics: mtr, health: health.NewServer(), adminOn: adminToken != "", auditStream: auditStream, tracer: tracer}
	srv.instrumentCheck(check, verifier)
	srv.setServing(false)
	links, err := account.NewLinks(sealer)
	if err != nil {
		return err
	}
	srv.scheme = "https"
	if f.insecureCookies {
		srv.scheme = "http"
	}
	srv.sender = sender
	srv.accounts = &login.Accounts{Links: links, Outbox: mail.NewOutbox(sender, log), Scheme: srv.scheme}
	signIn := telemetry.HTTP(tracer, telemetry.SpanSignIn, srv.signIn(&login.Handler{Snapshots: &tenants.Current{}, Log: log}))
	if f.inlineAuth {
		// The same handler instance as the HTTP port: one set of rate-limit
		// counters and method caches for both transports.
		check.Inline = &extauthz.Inline{Handler: signIn, PathPrefix: resolver.PathPrefix, Log: log}
	}

	grpcLis, err := net.Listen("tcp", f.grpcAddr)
	if err != nil {
		return fmt.Errorf("--grpc-addr: %w", err)
	}
	httpLis, err := net.Listen("tcp", f.httpAddr)
	if err != nil {
		grpcLis.Close()
		return fmt.Errorf("--http-addr: %w", err)
	}
	adminLis, err := net.Listen("tcp", f.adminAddr)
	if err != nil {
		grpcLis.Close()
		httpLis.Close()
		return fmt.Errorf("--admin-addr: %w", err)
	}

	// Stream workers: a stream is served by an idle worker goroutine, whose
	// stack has already grown to what Check needs (a signature check needs
	// more than a new goroutine's), instead of a new goroutine; a stream that
	// finds none idle gets its own, as without workers. test/noop and loadgen
	// profile-server use the same options (docs/performance.md).
	gs := grpc.NewServer(grpc.MaxRecvMsgSize(4<<20), grpc.MaxConcurrentStreams(1024),
		grpc.NumStreamWorkers(uint32(32*runtime.GOMAXPROCS(0))), grpcTLS, extauthz.ServerCodec())
	extauthz.Register(gs, check)
	healthpb.RegisterHealthServer(gs, srv.health)
	httpSrv := newHTTPServer(signIn)
	adminSrv := newHTTPServer(telemetry.HTTP(nil, "", srv.adminMux())) // request ids for the logs; no spans

	errc := make(chan error, 3)
	var wg sync.WaitGroup
	wg.Add(3)
	go func() { defer wg.Done(); errc <- serveErr("grpc", gs.Serve(grpcLis)) }()
	go func() { defer wg.Done(); errc <- serveErr("http", httpSrv.Serve(httpLis)) }()
	go func() { defer wg.Done(); errc <- serveErr("admin", adminSrv.Serve(adminLis)) }()

	// Open the store while the listeners answer 503. A listener that fails
	// meanwhile ends the wait too.
	openCtx, stopOpening := context.WithCancel(ctx)
	failed := make(chan error, 1)
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		select {
		case err := <-errc:
			failed <- err
			stopOpening()
		case <-openCtx.Done():
		}
	}()
	st, all, err := openServing(openCtx, open, sealer, f.masterKeyFile, snapshots, log)
	stopOpening()
	<-watched
	if err != nil {
		srv.shutdown(gs, httpSrv, adminSrv, &wg)
		select {
		case e := <-failed:
			return e // why the wait ended
		default:
		}
		if ctx.Err() != nil {
			log.Info("shutting down before the store was open")
			return nil
		}
		return err
	}
	defer st.Close()
	for _, w := range startWarnings(all, methodTypes(), f.insecureCookies, f.allowLoopbackHTTPIDP) {
		log.Warn(w.msg, "tenant", w.tenant)
	}
	srv.start(ctx, st, f, sealer, resolver, verifier, adminToken, log)
	log.Info("serving", "grpc", grpcLis.Addr().String(), "http", httpLis.Addr().String(), "admin", adminLis.Addr().String(),
		"base_domains", strings.Join(resolver.BaseDomains, ","), "tenants", len(all), "inline_auth", f.inlineAuth,
		"admin_api", adminToken != "", "version", version)

	var runErr error
	select {
	case <-ctx.Done():
		log.Info("shutting down")
	case runErr = <-errc:
		log.Error("server stopped", "err", runErr)
	}
	srv.shutdown(gs, httpSrv, adminSrv, &wg)
	return runErr
}

// start wires what needs the open store (the sign-in handler, the admin
// API, the snapshot's follower and, on etcd, the staleness bound) and
// switches the listeners over to it: from then on Check answers from the
// snapshot and the replica is ready.
func (s *server) start(ctx context.Context, st tenants.Store, f *serveFlags, sealer *seal.Sealer,
	resolver *tenants.Resolver, verifier *session.Verifier, adminToken string, log *slog.Logger) {
	recorder := s.newRecorder(st, log)
	if recorder != nil {
		go recorder.Prune(ctx, f.auditRetention, audit.PruneInterval, time.Now)
	}
	loginHandler := &login.Handler{
		Snapshots:       s.snapshots,
		Resolver:        resolver,
		Store:           traceStore(s.tracer, st),
		Minter:          &session.Minter{Sealer: sealer, TTL: f.sessionTTL, Now: time.Now, Rand: rand.Reader},
		Verifier:        verifier,
		Passwords:       &password.Hasher{},
		InsecureCookies: f.insecureCookies,
		CSRFKey:         sealer.DeriveKey("csrf"),
		Now:             time.Now,
		Log:             log,
		Rand:            rand.Reader,
		Methods:         newMethodRegistry(sealer, st, f.allowLoopbackHTTPIDP, s.idpObserver(), s.tracer, log),
		MethodTypes:     methodTypes(),
		Sealer:          sealer,
		GlobalTTL:       f.globalSessionTTL,
		PathLinks:       f.tenantLinks == "path",

		// The client address of rate limits (login/forwarded.go).
		TrustedProxyHops: f.trustedProxyHops,
	}
	if recorder != nil {
		loginHandler.Audit = recorder
	}
	s.instrumentSignIn(loginHandler)
	loginHandler.Accounts = s.accounts
	if es, ok := st.(*etcdstore.Store); ok {
		// A fleet: failed sign-ins per account and per address, and
		// sign-ins per account, count in etcd for every replica together,
		// so spreading guesses over the replicas buys nothing
		// (docs/fleet.md, "Sign-in limits across replicas").
		loginHandler.Counters = func(name string, window time.Duration) login.Counter { return es.Counter(name, window) }
	}
	o := &opened{store: st, signIn: loginHandler}
	if adminToken != "" {
		ops := &localAdmin{
			store: func() (tenants.Store, error) { return st, nil },
			sealer: func() (*seal.Sealer, error) {
				return sealer, checkKeyValue(ctx, st, sealer, f.masterKeyFile)
			},
			passwords:  loginHandler.Passwords,
			written:    refreshAfterWrite(s.snapshots, st, log),
			now:        time.Now,
			keyRotated: takeUpMasterKey(sealer, f.masterKeyFile, log),
			actor:      tenants.ActorAdminAPI,
			audit:      recorder,
			invites: &inviter{sealer: func() (*seal.Sealer, error) { return sealer, checkKeyValue(ctx, st, sealer, f.masterKeyFile) },
				sender: s.sender, scheme: s.scheme, baseDomains: f.baseDomains},
		}
		o.adminAPI = newAdminAPI(adminToken, ops, f.allowLoopbackHTTPIDP, log)
	}
	s.opened.Store(o)
	go s.snapshots.Follow(ctx, st, log)
	go (&keyFollower{store: st, sealer: sealer, keyFile: f.masterKeyFile, log: log, every: masterKeyPoll}).run(ctx)
	s.setServing(true)
	if c, ok := st.(confirmer); ok {
		// etcd: Check answers from the last snapshot for at most
		// --store-max-staleness after etcd stopped confirming it, then
		// 503 (and not ready) until it does again.
		g := &staleness{cur: s.snapshots, store: c, max: f.maxStaleness, now: time.Now, log: log, changed: func(stale bool) { s.setServing(!stale) }}
		go g.run(ctx)
	}
}

// shutdown stops the listeners, finishing in-flight requests and the
// mail they posted for up to ten seconds, and returns once every server
// goroutine of serve has returned.
func (s *server) shutdown(gs *grpc.Server, httpSrv, adminSrv *http.Server, wg *sync.WaitGroup) {
	s.health.Shutdown()
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	stopped := make(chan struct{})
	go func() { gs.GracefulStop(); close(stopped) }()
	httpSrv.Shutdown(shutdownCtx)
	adminSrv.Shutdown(shutdownCtx)
	select {
	case <-stopped:
	case <-shutdownCtx.Done():
		gs.Stop()
	}
	if s.accounts != nil {
		if n := s.accounts.Outbox.Drain(shutdownCtx); n > 0 {
			s.log.Error("mail not sent: serve stopped before its delivery ended", "deliveries", n)
		}
	}
	wg.Wait()
}

// maxGCHeadroomMiB bounds --gc-headroom-mib (64 GiB).
const maxGCHeadroomMiB = 64 << 10

// startGCHeadroom applies --gc-headroom-mib until ctx ends, unless it is 0
// or GOGC is set in the environment (the operator's choice wins).
func startGCHeadroom(ctx context.Context, mib int, log *slog.Logger) {
	switch {
	case mib == 0:
		return
	case gcheadroom.FromEnvironment():
		log.Info("GOGC is set in the environment: --gc-headroom-mib is not applied", "gogc", os.Getenv("GOGC"))
		return
	}
	if _, err := gcheadroom.Start(ctx, uint64(mib)<<20); err != nil {
		// Only where serve runs twice in one process (tests): the first
		// one's tuner keeps going.
		log.Info("--gc-headroom-mib: the collector is adjusted by another server in this process already")
	}
}

func serveErr(what string, err error) error {
	if err == nil || errors.Is(err, http.ErrServerClosed) || errors.Is(err, grpc.ErrServerStopped) {
		return nil
	}
	return fmt.Errorf("%s server: %w", what, err)
}

// newHTTPServer applies the limits every tenantgate HTTP listener has, so a
// slow or oversized client cannot tie it up.
func newHTTPServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
	}
}

// newResolver checks and canonicalises --base-domain and --path-prefix.
func newResolver(baseDomains []string, prefix string) (*tenants.Resolver, error) {
	var canon []string
	for _, d := range baseDomains {
		c, err := tenants.CanonicalDomain(d)
		if err != nil {
			return nil, fmt.Errorf("--base-domain %q: not a valid domain name", d)
		}
		canon = append(canon, c)
	}
	if !strings.HasPrefix(prefix, "/") || strings.HasSuffix(prefix, "/") || strings.Count(prefix, "/") != 1 || !tenants.ValidTenantID(prefix[1:]) {
		return nil, fmt.Errorf("--path-prefix %q: must be one path segment like /org", prefix)
	}
	return &tenants.Resolver{BaseDomains: canon, PathPrefix: prefix}, nil
}

// openAuditLog opens --audit-log: the file (appended, created 0600) or
// standard output ("-"); nil without the flag. The returned func closes
// the file.
func openAuditLog(f *serveFlags) (io.Writer, func(), error) {
	switch f.auditLog {
	case "":
		return nil, func() {}, nil
	case "-":
		return f.stdout, func() {}, nil
	}
	file, err := os.OpenFile(f.auditLog, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, nil, fmt.Errorf("--audit-log: %w", err)
	}
	return file, func() { _ = file.Close() }, nil
}

// newRecorder is serve's audit recorder: into the store, and to
// --audit-log as JSON lines. Both stores keep an audit trail; a store that
// kept none would get no recorder, and sign-ins would go unrecorded, so
// that is logged as an error.
func (s *server) newRecorder(st tenants.Store, log *slog.Logger) *audit.Recorder {
	al, ok := st.(tenants.AuditLog)
	if !ok {
		log.Error("the store keeps no audit trail", "store", fmt.Sprintf("%T", st))
		return nil
	}
	return &audit.Recorder{Store: traceAudit(s.tracer, al), Log: log, Stream: s.auditStream}
}
