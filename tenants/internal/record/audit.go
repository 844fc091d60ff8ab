package record

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tenantgate/tenantgate/tenants"
)

// The audit trail (tenants.AuditLog) is two namespaces: NamespaceAudit
// holds the events, under AuditKey(tenant, seq), and NamespaceAuditHeads
// one head per tenant, under the tenant id, naming the newest event (its
// seq and hash) and what retention removed. An event's hash is the
// SHA-256 of its stored bytes, which is what the next event's Prev holds:
// the chain is over the very bytes both backends store and backups copy,
// so it survives a backup, a restore and a move between backends, and any
// change to a stored event is a change to its hash.
const (
	NamespaceAudit      = "audit"
	NamespaceAuditHeads = "auditHeads"
)

// AuditEvent is one stored audit event (tenants.AuditEvent without its
// Hash, which is the hash of these bytes).
type AuditEvent struct {
	V         int       `json:"v"`
	Seq       uint64    `json:"seq"`
	Time      time.Time `json:"time"`
	Tenant    string    `json:"tenant"`
	Event     string    `json:"event"`
	Actor     string    `json:"actor"`
	Subject   string    `json:"subject,omitempty"`
	Email     string    `json:"email,omitempty"`
	Method    string    `json:"method,omitempty"`
	Client    string    `json:"client,omitempty"`
	RequestID string    `json:"requestID,omitempty"`
	Outcome   string    `json:"outcome"`
	Reason    string    `json:"reason,omitempty"`
	Changes   []string  `json:"changes,omitempty"`
	Roles     []string  `json:"roles,omitempty"`
	Prev      string    `json:"prev"`
}

// AuditHead is a tenant's chain head: the newest event (Seq, Hash, Time:
// the next event follows it) and the last event retention removed
// (Pruned, PrunedHash: the oldest retained event follows it).
type AuditHead struct {
	V          int       `json:"v"`
	Seq        uint64    `json:"seq"`
	Hash       string    `json:"hash"`
	Time       time.Time `json:"time"`
	Pruned     uint64    `json:"pruned,omitempty"`
	PrunedHash string    `json:"prunedHash,omitempty"`
}

// AuditKey is the key of a tenant's event seq: the seq zero-padded, so
// that key order is seq order.
func AuditKey(tenant string, seq uint64) string {
	return AuditPrefix(tenant) + fmt.Sprintf("%020d", seq)
}

// AuditPrefix is the common prefix of a tenant's event keys (tenant ids
// never contain "/").
func AuditPrefix(tenant string) string { return tenant + "/" }

// AuditSeq returns the seq an event key names.
func AuditSeq(key string) (uint64, bool) {
	_, n, ok := strings.Cut(key, "/")
	if !ok || len(n) != 20 {
		return 0, false
	}
	seq, err := strconv.ParseUint(n, 10, 64)
	return seq, err == nil
}

// Hash is the hash of stored event bytes, as the next event's Prev holds
// it.
func Hash(value []byte) string {
	h := sha256.Sum256(value)
	return hex.EncodeToString(h[:])
}

// CheckAuditEvent refuses an event no tenant trail can take.
func CheckAuditEvent(e *tenants.AuditEvent) error {
	switch {
	case e.Tenant == "" || strings.Contains(e.Tenant, "/"):
		return fmt.Errorf("audit event %q: tenant %q is no tenant id", e.Event, e.Tenant)
	case e.Event == "":
		return errors.New("audit event without a name")
	}
	return nil
}

// ChainAudit appends e to the chain whose head is h (nil: the tenant has
// none yet): it numbers it, dates it (now, or e.Time when set, and never
// before the previous event), links it and encodes it. It returns the
// stored bytes, the event as stored and the new head.
func ChainAudit(h *AuditHead, e tenants.AuditEvent, now time.Time) ([]byte, tenants.AuditEvent, AuditHead, error) {
	head := AuditHead{V: Version}
	if h != nil {
		head = *h
	}
	if e.Time.IsZero() {
		e.Time = now
	}
	e.Time = e.Time.UTC()
	if e.Time.Before(head.Time) {
		e.Time = head.Time
	}
	e.Seq, e.Prev = head.Seq+1, head.Hash
	rec := AuditEvent{V: Version, Seq: e.Seq, Time: e.Time, Tenant: e.Tenant, Event: e.Event, Actor: e.Actor,
		Subject: e.Subject, Email: e.Email, Method: e.Method, Client: e.Client, RequestID: e.RequestID,
		Outcome: e.Outcome, Reason: e.Reason, Changes: slices.Clone(e.Changes), Roles: slices.Clone(e.Roles), Prev: e.Prev}
	v, err := Encode(rec)
	if err != nil {
		return nil, tenants.AuditEvent{}, AuditHead{}, err
	}
	e.Hash = Hash(v)
	head.Seq, head.Hash, head.Time = e.Seq, e.Hash, e.Time
	return v, e, head, nil
}

// ToAuditEvent is the model of a stored event whose bytes hash to hash.
func (r *AuditEvent) ToAuditEvent(hash string) tenants.AuditEvent {
	return tenants.AuditEvent{Seq: r.Seq, Time: r.Time, Tenant: r.Tenant, Event: r.Event, Actor: r.Actor,
		Subject: r.Subject, Email: r.Email, Method: r.Method, Client: r.Client, RequestID: r.RequestID,
		Outcome: r.Outcome, Reason: r.Reason, Changes: slices.Clone(r.Changes), Roles: slices.Clone(r.Roles),
		Prev: r.Prev, Hash: hash}
}

// Selects reports whether q selects the stored event.
func (r *AuditEvent) Selects(q tenants.AuditQuery) bool {
	return !r.Time.Before(q.Since) && (q.Event == "" || q.Event == r.Event)
}

// ChainCheck verifies one tenant's chain, fed its events in key order
// (Next) and then its head (End). Its Verdict holds the first break.
type ChainCheck struct {
	tenant  string
	head    *AuditHead
	verdict tenants.AuditVerdict
	// prevSeq, prevHash are the last event read (0, "": none yet).
	prevSeq  uint64
	prevHash string
}

// NewChainCheck starts checking the chain of tenant, whose head is head
// (nil when the store has none).
func NewChainCheck(tenant string, head *AuditHead) *ChainCheck {
	c := &ChainCheck{tenant: tenant, head: head}
	if head != nil {
		c.verdict.Pruned = head.Pruned
	}
	return c
}

func (c *ChainCheck) fail(seq uint64, format string, args ...any) {
	if c.verdict.Break == nil {
		c.verdict.Break = &tenants.AuditBreak{Seq: seq, Problem: fmt.Sprintf(format, args...)}
	}
}

// Broken reports whether a break was found (the rest need not be read).
func (c *ChainCheck) Broken() bool { return c.verdict.Break != nil }

// Next checks the event stored under key (its name within the tenant's
// prefix, as AuditKey makes it) with value.
func (c *ChainCheck) Next(key string, value []byte) {
	if c.Broken() {
		return
	}
	want := c.prevSeq + 1
	if c.prevSeq == 0 && c.head != nil {
		want = c.head.Pruned + 1
	}
	seq, ok := AuditSeq(key)
	if !ok {
		c.fail(want, "a record under the key %s is no audit event", Short([]byte(key)))
		return
	}
	if c.head == nil {
		c.fail(seq, "event %d is stored but the tenant has no chain head (the head record was deleted)", seq)
		return
	}
	if seq > want {
		if want == seq-1 {
			c.fail(want, "event %d is missing (deleted)", want)
		} else {
			c.fail(want, "events %d to %d are missing (deleted)", want, seq-1)
		}
		return
	}
	if seq < want {
		c.fail(seq, "event %d is older than the last event retention removed (%d): it was put back", seq, c.head.Pruned)
		return
	}
	var r AuditEvent
	if err := Decode(Where(NamespaceAudit, []byte(key)), value, &r); err != nil {
		c.fail(seq, "event %d cannot be read: %v", seq, err)
		return
	}
	if r.Seq != seq || r.Tenant != c.tenant {
		c.fail(seq, "event %d says it is event %d of tenant %q: it was changed or moved", seq, r.Seq, r.Tenant)
		return
	}
	wantPrev := c.prevHash
	if c.prevSeq == 0 {
		wantPrev = c.head.PrunedHash
	}
	if r.Prev != wantPrev {
		if c.prevSeq == 0 {
			c.fail(seq, "event %d does not follow the last event retention removed: it was changed", seq)
		} else {
			c.fail(c.prevSeq, "event %d was changed: event %d carries another hash of it", c.prevSeq, seq)
		}
		return
	}
	if c.verdict.Events == 0 {
		c.verdict.First = seq
	}
	c.verdict.Events++
	c.verdict.Last = seq
	c.prevSeq, c.prevHash = seq, Hash(value)
}

// End finishes the check: the newest event read must be the one the head
// names. It returns the verdict.
func (c *ChainCheck) End() tenants.AuditVerdict {
	if c.Broken() || c.head == nil {
		return c.verdict
	}
	switch {
	case c.prevSeq == 0 && c.head.Seq != c.head.Pruned:
		c.fail(c.head.Pruned+1, "events %d to %d are missing (deleted)", c.head.Pruned+1, c.head.Seq)
	case c.prevSeq == 0:
	case c.prevSeq < c.head.Seq:
		c.fail(c.prevSeq+1, "events %d to %d are missing (deleted)", c.prevSeq+1, c.head.Seq)
	case c.prevSeq > c.head.Seq:
		c.fail(c.head.Seq+1, "event %d is newer than the chain head says the newest is (%d): it was added", c.head.Seq+1, c.head.Seq)
	case c.prevHash != c.head.Hash:
		c.fail(c.prevSeq, "event %d was changed: the chain head carries another hash of it", c.prevSeq)
	}
	return c.verdict
}
