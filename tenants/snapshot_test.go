package tenants

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// overlapSnapshotter's first Snapshot call waits (at most a moment) for a
// second call to begin, and records whether one did.
type overlapSnapshotter struct {
	calls   atomic.Int64
	entered chan struct{} // closed when the first call is in Snapshot
	second  chan struct{} // closed when a second call begins
	overlap atomic.Bool
}

func (o *overlapSnapshotter) Snapshot(context.Context) (*Snapshot, error) {
	switch o.calls.Add(1) {
	case 1:
		close(o.entered)
		select {
		case <-o.second:
			o.overlap.Store(true)
		case <-time.After(200 * time.Millisecond):
		}
	case 2:
		close(o.second)
	}
	return NewSnapshot(nil, nil), nil
}

// TestCurrentRefreshIsSerialised: a Refresh started while another is
// reading the store waits for it, so the snapshot published last is the one
// read last (a watch-driven refresh cannot overwrite the newer snapshot an
// admin write published).
func TestCurrentRefreshIsSerialised(t *testing.T) {
	var cur Current
	st := &overlapSnapshotter{entered: make(chan struct{}), second: make(chan struct{})}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := cur.Refresh(context.Background(), st); err != nil {
			t.Error(err)
		}
	}()
	<-st.entered
	if err := cur.Refresh(context.Background(), st); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if st.overlap.Load() {
		t.Error("a second Refresh read the store while the first was still reading")
	}
	if v := cur.Load().Version; v != 2 {
		t.Errorf("Version = %d after two refreshes, want 2", v)
	}
}
