package etcdstore

import (
	"encoding/json"
	"fmt"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/tenantgate/tenantgate/tenants/internal/record"
)

// Schema 4 (record.SchemaVersion) changes no record: a schema-3 store is
// migrated by writing the schema record alone, in the same way, so that a
// tenantgate reading only 3 refuses a store that may hold second factors.
//
// An etcd store never had schema 1 (etcdstore came with schema 2). A
// schema-2 store is migrated to 3 by Open (record.UpgradeToSchema3: every
// saml method keyed by its NameID that states no nameIDFormat is written
// with "unspecified", the format it had), as bbolt's is: the rewritten
// tenant records and then the schema record, in one etcd transaction when
// they fit in one (about 100 tenants with a saml method and 1 MiB), which
// is the case for nearly every store. Each transaction is conditional on
// the schema record and every tenant it rewrites being as read, and the
// last, which writes the schema record, on no tenant record having changed
// since the migration read them (or wrote them itself): a replica or a
// command of the previous release writing meanwhile makes the migration
// read again and start over, so no tenant it wrote is left unmigrated
// under schema 3. A migration stopped between transactions leaves some
// methods stating unspecified under schema 2, which means the same there;
// the next Open finishes it.

// maxMigrationAttempts bounds how often Open starts the migration over
// because another process wrote during it.
const maxMigrationAttempts = 5

// schemaOf returns the "v" of a schema record, whatever the version.
func schemaOf(data []byte) (int, error) {
	var head struct {
		V *int `json:"v"`
	}
	if err := json.Unmarshal(data, &head); err != nil || head.V == nil {
		return 0, corrupt("schema record %s is unreadable", record.Short(data))
	}
	return *head.V, nil
}

// checkSchema accepts a schema this binary reads as it is, and reports
// whether one must be migrated first: 2 and 3 are, anything but them and
// record.SchemaVersion is tenants.ErrCorrupt.
func checkSchema(v int) (migrate bool, err error) {
	switch v {
	case record.SchemaVersion:
		return false, nil
	case 2, 3:
		return true, nil
	}
	return false, corrupt("the store has schema version %d, this tenantgate reads versions 2 to %d (written by a newer tenantgate?)", v, record.SchemaVersion)
}

// migrateSchema2 brings a schema-2 store to record.SchemaVersion (see
// above). It returns nil when the store is at that schema, whoever
// migrated it.
func (s *Store) migrateSchema2() error {
	for range maxMigrationAttempts {
		done, err := s.migrateOnce()
		if err != nil {
			return fmt.Errorf("migrate from schema 2 to %d: %w", record.SchemaVersion, err)
		}
		if done {
			return nil
		}
	}
	return fmt.Errorf("migrate from schema 2 to %d: other processes kept writing tenants during %d attempts; stop the replicas and commands of the previous release and start this one again",
		record.SchemaVersion, maxMigrationAttempts)
}

// migrateOnce reads the schema and every tenant at one revision and writes
// the migration. It reports false, with no error, when another process
// wrote something the migration depends on: then it must start over.
func (s *Store) migrateOnce() (bool, error) {
	schemaKey := s.prefix + keySchema
	ctx, cancel, err := s.call(s.ctx)
	if err != nil {
		return false, err
	}
	resp, err := s.cli.Txn(ctx).Then(
		clientv3.OpGet(schemaKey),
		clientv3.OpGet(s.nsPrefix(nsTenants), clientv3.WithPrefix()),
	).Commit()
	cancel()
	if err != nil {
		return false, fmt.Errorf("read from etcd at %s: %w", s.endpoints, explain(err, s.callTimeout))
	}
	rev := resp.Header.Revision
	schemaKVs := resp.Responses[0].GetResponseRange().GetKvs()
	if len(schemaKVs) == 0 {
		return false, corrupt("the schema record disappeared")
	}
	v, err := schemaOf(schemaKVs[0].Value)
	if err != nil {
		return false, err
	}
	if migrate, err := checkSchema(v); err != nil || !migrate {
		return err == nil, err
	}
	schemaMod := schemaKVs[0].ModRevision

	type rewrite struct {
		key   string
		value []byte
		mod   int64
	}
	var rewrites []rewrite
	for _, kv := range resp.Responses[1].GetResponseRange().GetKvs() {
		var r record.Tenant
		if err := s.decode(string(kv.Key), kv.Value, &r); err != nil {
			return false, err
		}
		if v >= 3 {
			// From 3 to 4 no record changes: only the schema record.
			continue
		}
		changed, err := record.UpgradeToSchema3(&r)
		if err != nil {
			return false, err
		}
		if !changed {
			continue
		}
		b, err := record.Encode(&r)
		if err != nil {
			return false, err
		}
		rewrites = append(rewrites, rewrite{string(kv.Key), b, kv.ModRevision})
	}
	newSchema, err := record.Encode(record.Schema{V: record.SchemaVersion})
	if err != nil {
		return false, err
	}

	// Batches under etcd's default limits, the schema record in the last.
	var batches [][]rewrite
	var cur []rewrite
	size := 0
	for _, w := range rewrites {
		if len(cur) > 0 && (len(cur)+1 > maxRestoreOps || size+len(w.key)+len(w.value) > maxRestoreBytes) {
			batches, cur, size = append(batches, cur), nil, 0
		}
		cur, size = append(cur, w), size+len(w.key)+len(w.value)
	}
	batches = append(batches, cur)
	for i, batch := range batches {
		last := i == len(batches)-1
		cmps := []clientv3.Cmp{clientv3.Compare(clientv3.ModRevision(schemaKey), "=", schemaMod)}
		var ops []clientv3.Op
		for _, w := range batch {
			cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(w.key), "=", w.mod))
			ops = append(ops, clientv3.OpPut(w.key, string(w.value)))
		}
		if last {
			// No tenant written by anyone else since the read (or this
			// migration's previous transaction): none is left
			// unmigrated under schema 3.
			cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(s.nsPrefix(nsTenants)), "<", rev+1).WithPrefix())
			ops = append(ops, clientv3.OpPut(schemaKey, string(newSchema)))
		}
		ctx, cancel, err := s.call(s.ctx)
		if err != nil {
			return false, err
		}
		tr, err := s.cli.Txn(ctx).If(cmps...).Then(ops...).Commit()
		cancel()
		if err != nil {
			return false, fmt.Errorf("write to etcd at %s: %w", s.endpoints, explain(err, s.callTimeout))
		}
		if !tr.Succeeded {
			return false, nil
		}
		rev = tr.Header.Revision
	}
	return true, nil
}
