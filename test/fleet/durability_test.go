package fleet_test

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tenantgate/tenantgate/tenants/boltstore"
	"github.com/tenantgate/tenantgate/test/internal/proc"
)

// TestKilledWritersLoseNothing kills writers of one bbolt file with
// SIGKILL at random moments, 30 times: a `serve` taking tenant applies
// through its admin API from two clients, and `tenants apply` processes.
// After every kill the file must open (every record read and checked, as
// serve does at start), and every write the writer reported committed
// (the admin API answered 200, the command exited 0) must be in it.
func TestKilledWritersLoseNothing(t *testing.T) {
	const serveKills, applyKills = 20, 10
	dir := t.TempDir()
	bin := proc.BuildTenantgate(t, dir)
	db := filepath.Join(dir, "tg.db")
	key := filepath.Join(dir, "tg.key")
	token := "durability-test-token-0123456789"
	tokenFile := filepath.Join(dir, "admin-token")
	if err := os.WriteFile(tokenFile, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	seed := uint64(time.Now().UnixNano())
	t.Logf("random seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, seed))

	// committed are the tenants some writer reported committed.
	var mu sync.Mutex
	var committed []string
	acked := func(id string) {
		mu.Lock()
		defer mu.Unlock()
		committed = append(committed, id)
	}
	check := func(round string) {
		t.Helper()
		st, err := boltstore.Open(db, boltstore.Options{Timeout: 5 * time.Second})
		if err != nil {
			t.Fatalf("%s: the database does not open after kill -9: %v", round, err)
		}
		defer st.Close()
		ts, err := st.Tenants(t.Context())
		if err != nil {
			t.Fatalf("%s: read tenants: %v", round, err)
		}
		have := map[string]bool{}
		for _, tn := range ts {
			have[tn.ID] = true
		}
		mu.Lock()
		defer mu.Unlock()
		for _, id := range committed {
			if !have[id] {
				t.Errorf("%s: tenant %s was reported committed before the kill and is gone", round, id)
			}
		}
	}
	tenantFile := func(id string) string {
		return fmt.Sprintf("tenants:\n  - id: %s\n    methods: [{type: password}]\n", id)
	}

	client := &http.Client{Timeout: 10 * time.Second}
	for round := range serveKills {
		adm := fmt.Sprintf("127.0.0.1:%d", proc.FreePort(t))
		p := proc.StartNamed(t, fmt.Sprintf("serve %d", round), bin, "serve", "--db", db, "--master-key-file", key,
			"--grpc-addr", fmt.Sprintf("127.0.0.1:%d", proc.FreePort(t)), "--http-addr", fmt.Sprintf("127.0.0.1:%d", proc.FreePort(t)),
			"--admin-addr", adm, "--admin-token-file", tokenFile)
		p.WaitUntil(t, 30*time.Second, proc.HTTPOK("http://"+adm+"/readyz"))
		var wg sync.WaitGroup
		for w := range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; ; i++ {
					id := fmt.Sprintf("s%d-w%d-%d", round, w, i)
					req, _ := http.NewRequest("POST", "http://"+adm+"/admin/v1/tenants", strings.NewReader(tenantFile(id)))
					req.Header.Set("Authorization", "Bearer "+token)
					resp, err := client.Do(req)
					if err != nil {
						return // killed
					}
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK {
						return
					}
					acked(id)
				}
			}()
		}
		time.Sleep(time.Duration(20+rng.IntN(400)) * time.Millisecond)
		p.Kill()
		wg.Wait()
		check(fmt.Sprintf("serve killed (%d)", round))
	}

	var applied int
	for round := range applyKills {
		id := fmt.Sprintf("apply-%d", round)
		cmd := exec.Command(bin, "tenants", "apply", "-f", "-", "--db", db, "--master-key-file", key)
		cmd.Env = proc.Env()
		cmd.Stdin = strings.NewReader(tenantFile(id))
		var out bytes.Buffer
		cmd.Stdout = &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(rng.IntN(60)) * time.Millisecond)
		_ = cmd.Process.Kill()
		err := cmd.Wait()
		if err == nil && strings.Contains(out.String(), "tenant "+id+" created") {
			acked(id)
			applied++
		}
		check(fmt.Sprintf("tenants apply killed (%d)", round))
	}
	mu.Lock()
	defer mu.Unlock()
	t.Logf("%d kills; %d tenants reported committed (%d of %d tenants apply finished before its kill), all present after every kill",
		serveKills+applyKills, len(committed), applied, applyKills)
	if len(committed) == 0 {
		t.Error("no write was reported committed: the kills came before any write, which proves nothing")
	}
}
