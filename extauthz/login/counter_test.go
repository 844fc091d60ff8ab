package login_test

import (
	"testing"
	"time"

	"github.com/tenantgate/tenantgate/extauthz/login"
	"github.com/tenantgate/tenantgate/extauthz/login/countertest"
)

// TestMemoryCounter holds the in-memory counter (one process, bbolt) to the
// Counter contract; test/fleet holds etcd's to the same one.
func TestMemoryCounter(t *testing.T) {
	countertest.Run(t, func(t *testing.T) countertest.Open {
		return func(_ string, window time.Duration) login.Counter { return login.NewMemoryCounter(window, 0) }
	})
}
