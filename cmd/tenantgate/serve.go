package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/tenantgate/tenantgate/extauthz"
	"github.com/tenantgate/tenantgate/extauthz/account"
	"github.com/tenantgate/tenantgate/extauthz/login"
	"github.com/tenantgate/tenantgate/extauthz/mail"
	"github.com/tenantgate/tenantgate/extauthz/password"
	"github.com/tenantgate/tenantgate/extauthz/seal"
	"github.com/tenantgate/tenantgate/extauthz/session"
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
			return serve(ctx, &f, cmd.ErrOrStderr())
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.db, "db", "./tenantgate.db", "the bbolt file; created if missing (not with --etcd-endpoints)")
	f.etcd.register(fl)
	f.grpcTLS.register(fl)
	f.mail.register(fl)
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
	fl.StringVar(&f.tenantLinks, "tenant-links", "host", "how the apex host links to tenants (discovery, the chooser): host (<id>.<base-domain>) or path (<path-prefix>/<id>/ on the apex host)")
	return cmd
}

// server is everything serve runs, wired together.
type server struct {
	log       *slog.Logger
	store     tenants.Store
	snapshots *tenants.Current
	health    *health.Server
	metrics   *extauthz.Metrics
	ready     func() bool
	// adminAPI serves the admin API; nil without --admin-token-file.
	adminAPI http.Handler
}

func serve(ctx context.Context, f *serveFlags, stderr interface{ Write([]byte) (int, error) }) error {
	var level slog.Level
	if err := level.UnmarshalText([]byte(f.logLevel)); err != nil {
		return fmt.Errorf("--log-level %q: use debug, info, warn or error", f.logLevel)
	}
	log := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: level}))

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
	if f.maxStaleness <= 0 {
		return fmt.Errorf("--store-max-staleness %s: must be positive", f.maxStaleness)
	}
	grpcTLS, err := f.grpcTLS.serverOption(log)
	if err != nil {
		return err
	}
	sealer, err := seal.LoadOrCreateMasterKey(f.masterKeyFile)
	if err != nil {
		return fmt.Errorf("master key: %w", err)
	}
	// The snapshot is confirmed often enough that --store-max-staleness
	// counts from moments before etcd went away, not seconds before.
	f.etcd.progressInterval = min(etcdstore.DefaultProgressInterval, f.maxStaleness/10)
	st, err := openStore(f.db, &f.etcd, log)
	if err != nil {
		return err
	}
	defer st.Close()

	snapshots := &tenants.Current{}
	if err := snapshots.Refresh(ctx, st); err != nil {
		return fmt.Errorf("read tenants: %w", err)
	}
	all, err := st.Tenants(ctx)
	if err != nil {
		return fmt.Errorf("read tenants: %w", err)
	}
	if err := checkMasterKey(ctx, st, all, sealer, f.masterKeyFile); err != nil {
		return err
	}
	go snapshots.Follow(ctx, st, log)
	if err := warnAtStart(ctx, st, f, log); err != nil {
		return err
	}

	cookieName := session.CookieName(f.insecureCookies)
	verifier := session.NewVerifier()
	minter := &session.Minter{Sealer: sealer, TTL: f.sessionTTL, Now: time.Now, Rand: rand.Reader}
	metrics := &extauthz.Metrics{}
	check := &extauthz.Server{
		Authorizer: &extauthz.Authorizer{Snapshots: snapshots, Resolver: resolver, Verifier: verifier, CookieName: cookieName, Log: log},
		Log:        log,
		Metrics:    metrics,
	}
	loginHandler := &login.Handler{
		Snapshots:       snapshots,
		Resolver:        resolver,
		Store:           st,
		Minter:          minter,
		Verifier:        verifier,
		Passwords:       &password.Hasher{},
		InsecureCookies: f.insecureCookies,
		CSRFKey:         sealer.DeriveKey("csrf"),
		Now:             time.Now,
		Log:             log,
		Rand:            rand.Reader,
		Methods:         newMethodRegistry(sealer, st, f.allowLoopbackHTTPIDP, log),
		MethodTypes:     methodTypes(),
		Sealer:          sealer,
		GlobalTTL:       f.globalSessionTTL,
		PathLinks:       f.tenantLinks == "path",

		// The client address of rate limits (login/forwarded.go).
		TrustedProxyHops: f.trustedProxyHops,
	}
	sender, err := f.mail.sender()
	if err != nil {
		return err
	}
	links, err := account.NewLinks(sealer)
	if err != nil {
		return err
	}
	scheme := "https"
	if f.insecureCookies {
		scheme = "http"
	}
	loginHandler.Accounts = &login.Accounts{Links: links, Outbox: mail.NewOutbox(sender, log), Scheme: scheme}
	if f.inlineAuth {
		// The same handler instance as the HTTP port: one set of rate-limit
		// counters and method caches for both transports.
		check.Inline = &extauthz.Inline{Handler: loginHandler, PathPrefix: resolver.PathPrefix, Log: log}
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
		grpc.NumStreamWorkers(uint32(32*runtime.GOMAXPROCS(0))), grpcTLS)
	authv3.RegisterAuthorizationServer(gs, check)
	hs := health.NewServer()
	healthpb.RegisterHealthServer(gs, hs)
	hs.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	hs.SetServingStatus("envoy.service.auth.v3.Authorization", healthpb.HealthCheckResponse_SERVING)
	if c, ok := st.(confirmer); ok {
		// etcd: Check answers from the last snapshot for at most
		// --store-max-staleness after etcd stopped confirming it, then
		// 503 (and not ready) until it does again.
		g := &staleness{cur: snapshots, store: c, max: f.maxStaleness, now: time.Now, log: log, changed: func(stale bool) {
			status := healthpb.HealthCheckResponse_SERVING
			if stale {
				status = healthpb.HealthCheckResponse_NOT_SERVING
			}
			hs.SetServingStatus("", status)
			hs.SetServingStatus("envoy.service.auth.v3.Authorization", status)
		}}
		go g.run(ctx)
	}

	srv := &server{log: log, store: st, snapshots: snapshots, health: hs, metrics: metrics,
		ready: func() bool { return snapshots.Load() != nil }}
	if adminToken != "" {
		ops := &localAdmin{
			store:     func() (tenants.Store, error) { return st, nil },
			sealer:    func() (*seal.Sealer, error) { return sealer, nil },
			passwords: loginHandler.Passwords,
			written:   refreshAfterWrite(snapshots, st, log),
			now:       time.Now,
			invites: &inviter{sealer: func() (*seal.Sealer, error) { return sealer, nil }, sender: sender,
				scheme: scheme, baseDomains: f.baseDomains},
		}
		srv.adminAPI = newAdminAPI(adminToken, ops, f.allowLoopbackHTTPIDP, log)
	}
	httpSrv := newHTTPServer(loginHandler)
	adminSrv := newHTTPServer(srv.adminMux())

	errc := make(chan error, 3)
	var wg sync.WaitGroup
	wg.Add(3)
	go func() { defer wg.Done(); errc <- serveErr("grpc", gs.Serve(grpcLis)) }()
	go func() { defer wg.Done(); errc <- serveErr("http", httpSrv.Serve(httpLis)) }()
	go func() { defer wg.Done(); errc <- serveErr("admin", adminSrv.Serve(adminLis)) }()
	log.Info("serving", "grpc", grpcLis.Addr().String(), "http", httpLis.Addr().String(), "admin", adminLis.Addr().String(),
		"base_domains", strings.Join(resolver.BaseDomains, ","), "tenants", snapshots.Load().Len(), "inline_auth", f.inlineAuth,
		"admin_api", srv.adminAPI != nil, "version", version)

	var runErr error
	select {
	case <-ctx.Done():
		log.Info("shutting down")
	case runErr = <-errc:
		log.Error("server stopped", "err", runErr)
	}
	hs.Shutdown()
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
	wg.Wait()
	return runErr
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

// warnAtStart logs startWarnings for the tenants in st, one line per
// tenant and problem.
func warnAtStart(ctx context.Context, st tenants.Store, f *serveFlags, log *slog.Logger) error {
	ts, err := st.Tenants(ctx)
	if err != nil {
		return fmt.Errorf("read tenants: %w", err)
	}
	for _, w := range startWarnings(ts, methodTypes(), f.insecureCookies, f.allowLoopbackHTTPIDP) {
		log.Warn(w.msg, "tenant", w.tenant)
	}
	return nil
}
