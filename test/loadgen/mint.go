package main

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/big"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/tenantgate/tenantgate/extauthz/seal"
	"github.com/tenantgate/tenantgate/extauthz/session"
	"github.com/tenantgate/tenantgate/tenants"
	"github.com/tenantgate/tenantgate/tenants/boltstore"
	"github.com/tenantgate/tenantgate/tenants/etcdstore"
)

// mintConfig says which tokens to mint, from which database, and where to
// write them.
type mintConfig struct {
	DB, MasterKeyFile string
	// EtcdEndpoints (comma-separated) and EtcdPrefix name an etcd store
	// to read instead of DB.
	EtcdEndpoints, EtcdPrefix string
	Tenant, Email             string
	// Method is the sign-in method the tokens claim.
	Method string
	// N is how many distinct tokens to write for the fresh case.
	N int
	// Out is the directory for session.tok and fresh.tok.
	Out string
	// Iterations is how many verifications the cost measurement times.
	Iterations int
}

// cmdMint mints the bench's tokens offline, exactly as the sign-in handler
// would for the user, then measures what verifying one costs. The database
// is opened and closed again before it returns, so a server can open it next.
func cmdMint(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("mint", flag.ContinueOnError)
	cfg := mintConfig{}
	fs.StringVar(&cfg.DB, "db", "", "the bbolt database (no server may have it open)")
	fs.StringVar(&cfg.EtcdEndpoints, "etcd-endpoints", "", "read this etcd store instead of -db (client URLs, comma-separated)")
	fs.StringVar(&cfg.EtcdPrefix, "etcd-prefix", etcdstore.DefaultPrefix, "key prefix of the etcd store")
	fs.StringVar(&cfg.MasterKeyFile, "master-key-file", "", "the master key file the database was written with")
	fs.StringVar(&cfg.Tenant, "tenant", "acme", "tenant id")
	fs.StringVar(&cfg.Email, "email", "", "email of an existing member of the tenant")
	fs.StringVar(&cfg.Method, "method", session.MethodPassword, "sign-in method the tokens claim")
	fs.IntVar(&cfg.N, "n", 400_000, "distinct tokens for the fresh case")
	fs.StringVar(&cfg.Out, "out", "", "directory for session.tok and fresh.tok")
	fs.IntVar(&cfg.Iterations, "verify-iterations", 10_000, "verifications timed per pass for the cost of one (fastest of 3 passes)")
	results := fs.String("results", "", "append the verification cost as a JSON line to this file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return fmt.Errorf("mint: unexpected arguments %q", fs.Args())
	}
	if (cfg.DB == "") == (cfg.EtcdEndpoints == "") || cfg.MasterKeyFile == "" || cfg.Email == "" || cfg.Out == "" || cfg.N < 1 || cfg.Iterations < 1 {
		return errors.New("mint: need -db or -etcd-endpoints, -master-key-file, -email, -out, -n >= 1 and -verify-iterations >= 1")
	}
	snap, claims, minter, err := loadMintInputs(ctx, &cfg)
	if err != nil {
		return err
	}
	t := snap.BySlug(cfg.Tenant)

	start := time.Now()
	toks, err := mintMany(minter, t, claims, cfg.N+1)
	if err != nil {
		return err
	}
	if err := writeTokens(filepath.Join(cfg.Out, "session.tok"), toks[:1]); err != nil {
		return err
	}
	if err := writeTokens(filepath.Join(cfg.Out, "fresh.tok"), toks[1:]); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "minted 1 session token and %d fresh tokens for %s in tenant %s in %.1fs\n",
		cfg.N, cfg.Email, cfg.Tenant, time.Since(start).Seconds())

	v, err := measureVerify(snap, t, toks[1:], cfg.Iterations)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "one verification (%s): signature %.1fµs, session.Verifier uncached %.1fµs, cached %.2fµs (fastest of %d passes of %d calls, one goroutine)\n",
		v.Alg, v.SignatureUs, v.VerifierUs, v.CachedUs, verifyPasses, v.Iterations)
	if *results != "" {
		return appendJSON(*results, v)
	}
	return nil
}

// loadMintInputs reads, and closes again, everything minting needs: the
// snapshot the server will load, the member's claims and a Minter.
func loadMintInputs(ctx context.Context, cfg *mintConfig) (*tenants.Snapshot, session.Claims, *session.Minter, error) {
	sealer, err := seal.LoadOrCreateMasterKey(cfg.MasterKeyFile)
	if err != nil {
		return nil, session.Claims{}, nil, fmt.Errorf("mint: master key: %w", err)
	}
	var st tenants.Store
	if cfg.EtcdEndpoints != "" {
		st, err = etcdstore.Open(etcdstore.Options{Endpoints: strings.Split(cfg.EtcdEndpoints, ","), Prefix: cfg.EtcdPrefix})
	} else {
		st, err = boltstore.Open(cfg.DB, boltstore.Options{Timeout: time.Second})
	}
	if err != nil {
		return nil, session.Claims{}, nil, fmt.Errorf("mint: open database: %w", err)
	}
	defer st.Close()
	snap, err := st.Snapshot(ctx)
	if err != nil {
		return nil, session.Claims{}, nil, fmt.Errorf("mint: read tenants: %w", err)
	}
	t := snap.BySlug(cfg.Tenant)
	if t == nil {
		return nil, session.Claims{}, nil, fmt.Errorf("mint: tenant %q not found", cfg.Tenant)
	}
	u, err := st.UserByEmail(ctx, cfg.Email)
	if err != nil {
		return nil, session.Claims{}, nil, fmt.Errorf("mint: user %s: %w", cfg.Email, err)
	}
	roles, err := st.Membership(ctx, t.InternalID, u.ID)
	if err != nil {
		return nil, session.Claims{}, nil, fmt.Errorf("mint: membership of %s in %s: %w", cfg.Email, cfg.Tenant, err)
	}
	if err := st.Close(); err != nil {
		return nil, session.Claims{}, nil, fmt.Errorf("mint: close database: %w", err)
	}
	claims := session.Claims{Subject: u.ID, Email: u.Email, Roles: roles, Method: cfg.Method}
	return snap, claims, &session.Minter{Sealer: sealer, TTL: session.DefaultTTL}, nil
}

// mintMany mints n tokens (each with its own session id) on every core.
func mintMany(m *session.Minter, t *tenants.Tenant, c session.Claims, n int) ([]string, error) {
	toks := make([]string, n)
	procs := runtime.GOMAXPROCS(0)
	errs := make([]error, procs)
	var wg sync.WaitGroup
	for p := range procs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := p; i < n; i += procs {
				tok, _, err := m.Mint(t, c)
				if err != nil {
					errs[p] = fmt.Errorf("mint: %w", err)
					return
				}
				toks[i] = tok
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return toks, nil
}

// writeTokens writes one token a line to a new file only its owner can read.
func writeTokens(path string, toks []string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("write tokens: %w", err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	for _, t := range toks {
		w.WriteString(t)
		w.WriteByte('\n')
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return fmt.Errorf("write tokens to %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write tokens to %s: %w", path, err)
	}
	return nil
}

// verifyPasses is how many times the cost measurement is repeated; the
// fastest pass counts, since anything else running on the machine can only
// slow a pass down.
const verifyPasses = 3

// measureVerify times, on one goroutine: the bare signature check of a
// token (what "one signature verification" means in the goal), a full
// session.Verifier.Verify of tokens it has not seen (what the fresh case pays
// on the server), and of one it has (the session case). Each is the fastest
// of verifyPasses passes of up to iterations calls; every uncached pass uses
// tokens no earlier pass saw.
func measureVerify(snap *tenants.Snapshot, t *tenants.Tenant, toks []string, iterations int) (*verifyResult, error) {
	n := min(iterations, len(toks)/verifyPasses)
	if n < 1 {
		return nil, fmt.Errorf("mint: need at least %d tokens to measure verification", verifyPasses)
	}
	k := &t.Keys[0]
	check, err := signatureChecker(k)
	if err != nil {
		return nil, err
	}
	type parsed struct{ input, sig []byte }
	ps := make([]parsed, n)
	for i := range ps {
		input, sig, err := splitJWS(toks[i])
		if err != nil {
			return nil, err
		}
		ps[i] = parsed{input, sig}
	}
	best := func(cur float64, start time.Time) float64 {
		us := micros(time.Since(start)) / float64(n)
		if cur == 0 || us < cur {
			return us
		}
		return cur
	}
	res := &verifyResult{Kind: "verify", Alg: k.Alg, Iterations: n}
	verifier := session.NewVerifier()
	for pass := range verifyPasses {
		start := time.Now()
		for _, p := range ps {
			if !check(p.input, p.sig) {
				return nil, errors.New("mint: a freshly minted token's signature does not verify")
			}
		}
		res.SignatureUs = best(res.SignatureUs, start)

		start = time.Now()
		for _, tok := range toks[pass*n : (pass+1)*n] {
			if _, err := verifier.VerifyFor(snap, t, tok); err != nil {
				return nil, fmt.Errorf("mint: a freshly minted token does not verify: %w", err)
			}
		}
		res.VerifierUs = best(res.VerifierUs, start)

		start = time.Now()
		for range n {
			if _, err := verifier.VerifyFor(snap, t, toks[0]); err != nil {
				return nil, fmt.Errorf("mint: a freshly minted token does not verify: %w", err)
			}
		}
		res.CachedUs = best(res.CachedUs, start)
	}
	return res, nil
}

// splitJWS returns a compact JWS's signing input and decoded signature (RFC
// 7515 §7.1).
func splitJWS(tok string) (input, sig []byte, err error) {
	i := strings.LastIndexByte(tok, '.')
	if i < 0 || strings.Count(tok, ".") != 2 {
		return nil, nil, errors.New("mint: a minted token is not a compact JWS")
	}
	sig, err = base64.RawURLEncoding.DecodeString(tok[i+1:])
	if err != nil {
		return nil, nil, fmt.Errorf("mint: decode token signature: %w", err)
	}
	return []byte(tok[:i]), sig, nil
}

// signatureChecker returns the bare signature check for a tenant key:
// Ed25519 (RFC 8037) or ECDSA P-256 with SHA-256 over r||s (RFC 7518 §3.4).
func signatureChecker(k *tenants.SigningKey) (func(input, sig []byte) bool, error) {
	pub, err := x509.ParsePKIXPublicKey(k.Public)
	if err != nil {
		return nil, fmt.Errorf("mint: parse the tenant's public key: %w", err)
	}
	switch pk := pub.(type) {
	case ed25519.PublicKey:
		return func(input, sig []byte) bool { return ed25519.Verify(pk, input, sig) }, nil
	case *ecdsa.PublicKey:
		return func(input, sig []byte) bool {
			if len(sig) != 64 {
				return false
			}
			h := sha256.Sum256(input)
			r, s := new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])
			return ecdsa.Verify(pk, h[:], r, s)
		}, nil
	default:
		return nil, fmt.Errorf("mint: tenant key %s has algorithm %s, which the cost measurement does not know", k.KID, k.Alg)
	}
}
