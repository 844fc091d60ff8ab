package tenants

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// The two method types tenants itself has to tell apart: password sign-in is
// built into the sign-in pages (it has no Config and no provider), and a
// tenant with a saml method gets a SAML service-provider key (Tenant.SAMLKey)
// from the store. Every other type is named only by the package that
// implements it.
const (
	MethodPassword = "password"
	MethodSAML     = "saml"
)

// Method is one way of signing in to a tenant: its type, the label of its
// button, how the groups a provider reports map to tenant roles, and the
// type's own fields (Config), which only the type's package reads. tenants
// never looks inside Config: ParseFile and Validate decode it with the
// MethodTypes main hands them, and the store keeps it as opaque bytes.
//
// In a tenant file, and in what MarshalFile writes, an entry is one flat
// mapping: type, label, the Config fields in the order the type's Config
// defines them, then groupRoles and defaultRoles.
type Method struct {
	// Type selects the method type, as written in a tenant file ("oidc").
	Type string
	// Label is the text of the method's button on the sign-in page; the
	// method's package derives a default when it is empty.
	Label string
	// Config holds the type's own fields as one JSON object, as the type's
	// Config encodes them (EncodeConfig); nil when there are none. The
	// plaintext secret of a tenant file (clientSecret) is kept here only
	// until the store seals it (ApplyOptions.SealMethod): what a Store
	// returns never holds one.
	Config json.RawMessage
	// Sealed is the method's secrets, sealed under the master key for this
	// tenant by the method's own package. It is never part of a tenant
	// file, printed or read.
	Sealed []byte
	// Roles maps the provider's groups to tenant roles.
	Roles RoleMapping

	// pending holds the entry's own fields as a tenant file wrote them,
	// until ParseFile, which knows the method types, turns them into
	// Config.
	pending map[string]yaml.Node
}

// Clone returns a deep copy of m.
func (m Method) Clone() Method {
	return Method{Type: m.Type, Label: m.Label, Config: bytes.Clone(m.Config), Sealed: bytes.Clone(m.Sealed), Roles: m.Roles.Clone()}
}

// Equal reports whether m and o are the same entry: type, label, Config and
// Sealed byte for byte, and role mapping.
func (m Method) Equal(o Method) bool {
	return m.Type == o.Type && m.Label == o.Label && bytes.Equal(m.Config, o.Config) &&
		bytes.Equal(m.Sealed, o.Sealed) && m.Roles.Equal(o.Roles)
}

// DecodeConfig decodes m's Config into cfg, a pointer to the type's Config.
// A field cfg does not have is an error; an empty Config leaves cfg as it
// is.
func (m Method) DecodeConfig(cfg any) error {
	if len(m.Config) == 0 {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(m.Config))
	dec.DisallowUnknownFields()
	if err := dec.Decode(cfg); err != nil {
		return fmt.Errorf("decode %s method config: %w", m.Type, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return fmt.Errorf("decode %s method config: trailing data", m.Type)
	}
	return nil
}

// EncodeConfig sets m's Config to cfg encoded as JSON (a Config with no
// field set is stored as none).
func (m *Method) EncodeConfig(cfg any) error {
	b, err := json.Marshal(cfg)
	if err != nil {
		return fmt.Errorf("encode %s method config: %w", m.Type, err)
	}
	if string(b) == "{}" || string(b) == "null" {
		b = nil
	}
	m.Config = b
	return nil
}

// configMembers returns the members of a Config object in order, each as
// its key and raw value. A Config that is not one JSON object is an error.
func configMembers(raw json.RawMessage) ([]string, []json.RawMessage, error) {
	if len(bytes.TrimSpace(raw)) == 0 {
		return nil, nil, nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, nil, errors.New("method config is not a JSON object")
	}
	var keys []string
	var values []json.RawMessage
	for dec.More() {
		tok, err := dec.Token()
		key, ok := tok.(string)
		if err != nil || !ok {
			return nil, nil, errors.New("method config is not a JSON object")
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, nil, fmt.Errorf("method config: %w", err)
		}
		keys, values = append(keys, key), append(values, v)
	}
	if tok, err := dec.Token(); err != nil || tok != json.Delim('}') {
		return nil, nil, errors.New("method config is not a JSON object")
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, nil, errors.New("method config: trailing data")
	}
	return keys, values, nil
}

// fileMembers lists m's tenant-file keys and values in the order they are
// printed: type, label, the Config's members (as raw JSON), groupRoles and
// defaultRoles, leaving out empty ones. Sealed is never among them.
func (m Method) fileMembers() ([]string, []any, error) {
	keys, values, err := configMembers(m.Config)
	if err != nil {
		return nil, nil, err
	}
	outK, outV := []string{"type"}, []any{m.Type}
	if m.Label != "" {
		outK, outV = append(outK, "label"), append(outV, m.Label)
	}
	for i, k := range keys {
		outK, outV = append(outK, k), append(outV, values[i])
	}
	if len(m.Roles.GroupRoles) > 0 {
		outK, outV = append(outK, "groupRoles"), append(outV, m.Roles.GroupRoles)
	}
	if len(m.Roles.DefaultRoles) > 0 {
		outK, outV = append(outK, "defaultRoles"), append(outV, m.Roles.DefaultRoles)
	}
	return outK, outV, nil
}

// MarshalJSON writes m as a tenant file's method entry: one flat object
// (fileMembers).
func (m Method) MarshalJSON() ([]byte, error) {
	keys, values, err := m.fileMembers()
	if err != nil {
		return nil, err
	}
	b := []byte{'{'}
	for i, k := range keys {
		v, err := json.Marshal(values[i])
		if err != nil {
			return nil, fmt.Errorf("method %s: %w", k, err)
		}
		kb, _ := json.Marshal(k)
		if i > 0 {
			b = append(b, ',')
		}
		b = append(append(append(b, kb...), ':'), v...)
	}
	return append(b, '}'), nil
}

// MarshalYAML writes m as a tenant file's method entry: one flat mapping
// (fileMembers).
func (m Method) MarshalYAML() (any, error) {
	keys, values, err := m.fileMembers()
	if err != nil {
		return nil, err
	}
	n := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
	for i, k := range keys {
		v := values[i]
		if raw, ok := v.(json.RawMessage); ok {
			dec := json.NewDecoder(bytes.NewReader(raw))
			dec.UseNumber()
			if err := dec.Decode(&v); err != nil {
				return nil, fmt.Errorf("method %s: %w", k, err)
			}
		}
		var vn yaml.Node
		if err := vn.Encode(v); err != nil {
			return nil, fmt.Errorf("method %s: %w", k, err)
		}
		n.Content = append(n.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: k}, &vn)
	}
	return n, nil
}

// UnmarshalYAML reads a tenant file's method entry: the keys tenants owns
// into their fields, the others kept for ParseFile, which decodes them with
// the entry type's Config.
func (m *Method) UnmarshalYAML(n *yaml.Node) error {
	var fields map[string]yaml.Node
	if err := n.Decode(&fields); err != nil {
		return err
	}
	var own struct {
		Type         string              `yaml:"type"`
		Label        string              `yaml:"label"`
		GroupRoles   map[string][]string `yaml:"groupRoles"`
		DefaultRoles []string            `yaml:"defaultRoles"`
	}
	if err := n.Decode(&own); err != nil {
		return err
	}
	for _, k := range []string{"type", "label", "groupRoles", "defaultRoles"} {
		delete(fields, k)
	}
	*m = Method{Type: own.Type, Label: own.Label, Roles: RoleMapping{GroupRoles: own.GroupRoles, DefaultRoles: own.DefaultRoles}}
	if len(fields) > 0 {
		m.pending = fields
	}
	return nil
}

// configField is one field of a method type's Config.
type configField struct {
	name string
	typ  reflect.Type
}

// configFields lists the fields of a Config (a pointer to a struct) by
// their tenant-file names, in order. Fields tagged "-" are not part of the
// tenant file.
func configFields(cfg MethodConfig) []configField {
	t := reflect.TypeOf(cfg)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return nil
	}
	var out []configField
	for i := range t.NumField() {
		sf := t.Field(i)
		name, _, _ := strings.Cut(sf.Tag.Get("yaml"), ",")
		if !sf.IsExported() || name == "-" {
			continue
		}
		if name == "" {
			name = strings.ToLower(sf.Name)
		}
		out = append(out, configField{name, sf.Type})
	}
	return out
}

// fileConfig turns the fields a tenant file gave m (pending) into Config:
// each is decoded as the Go type its Config field has (types has the
// entry's own type's fields first, then every type's), unset and empty
// values are left out, and the keys are ordered as the entry type's Config
// orders them, then by name. A key no type knows is skipped: the
// unknown-field walk has reported it. YAML type errors are returned.
func (m *Method) fileConfig(own []configField, all map[string]reflect.Type) error {
	pending := m.pending
	m.pending = nil
	if len(pending) == 0 {
		return nil
	}
	keys := make([]string, 0, len(pending))
	for _, f := range own {
		if _, ok := pending[f.name]; ok {
			keys = append(keys, f.name)
		}
	}
	var rest []string
	for k := range pending {
		if !slices.Contains(keys, k) {
			rest = append(rest, k)
		}
	}
	slices.Sort(rest)
	keys = append(keys, rest...)

	var b bytes.Buffer
	var errs []error
	for _, k := range keys {
		ft := all[k]
		for _, f := range own {
			if f.name == k {
				ft = f.typ
			}
		}
		if ft == nil {
			continue
		}
		v := reflect.New(ft)
		node := pending[k]
		if err := node.Decode(v.Interface()); err != nil {
			errs = append(errs, err)
			continue
		}
		if emptyValue(v.Elem()) {
			continue
		}
		enc, err := json.Marshal(v.Elem().Interface())
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", k, err))
			continue
		}
		kb, _ := json.Marshal(k)
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.Write(kb)
		b.WriteByte(':')
		b.Write(enc)
	}
	if b.Len() > 0 {
		m.Config = append(append([]byte{'{'}, b.Bytes()...), '}')
	}
	return errors.Join(errs...)
}

// emptyValue reports whether a decoded tenant-file value counts as unset:
// zero, or an empty list or mapping.
func emptyValue(v reflect.Value) bool {
	switch v.Kind() {
	case reflect.Slice, reflect.Map:
		return v.Len() == 0
	}
	return v.IsZero()
}
