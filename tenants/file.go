package tenants

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"

	"go.yaml.in/yaml/v3"
)

// MaxFileSize is the largest tenant file ParseFile reads.
const MaxFileSize = 4 << 20

// ErrBadFile is returned (wrapped) by ParseFile for a file that cannot be
// read as a tenant file.
var ErrBadFile = errors.New("invalid tenant file")

// tenantFile is the document a tenant file holds (CONTRACT.md, "Tenant
// file").
type tenantFile struct {
	Tenants []Tenant `json:"tenants" yaml:"tenants"`
}

// maxNodeDepth bounds how deep the unknown-field walk follows a document.
const maxNodeDepth = 64

// maxNodeVisits bounds the work of the unknown-field walk, which follows
// aliases: without it a small file of nested aliases (a "billion laughs")
// could make it visit a huge number of nodes.
const maxNodeVisits = 1 << 20

// ParseFile reads a tenant file: YAML or JSON (JSON is read as YAML 1.2, of
// which it is a subset), one document whose only top-level key is
// "tenants", a list of tenants in the schema of CONTRACT.md. Unknown fields
// anywhere are errors naming where they are ("tenants[1] (id "acme"):
// unknown field "colour" (line 6)"), as are duplicate keys, values of the
// wrong type, a second document, and a file larger than MaxFileSize. Every
// unknown field is reported at once. Errors wrap ErrBadFile.
//
// A method entry's own fields are those of the Configs of types: a field
// that no type has is an unknown field here, and one that another type has
// is left for Validate to report ("not a field of a saml method"). Each is
// read as the Go type its Config field has and stored in Method.Config
// (Method.fileConfig), leaving out unset and empty values.
//
// ParseFile does not validate the tenants: the caller calls Validate, with
// its options, which also canonicalises domains.
func ParseFile(data []byte, types MethodTypes) ([]Tenant, error) {
	if len(data) > MaxFileSize {
		return nil, fmt.Errorf("%w: larger than %d MiB", ErrBadFile, MaxFileSize>>20)
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, fmt.Errorf("%w: empty", ErrBadFile)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var root yaml.Node
	if err := dec.Decode(&root); err != nil {
		return nil, fmt.Errorf("%w: %s", ErrBadFile, yamlMessage(err))
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%w: more than one YAML document (only one is allowed)", ErrBadFile)
	}
	if errs := unknownFields(&root, types); len(errs) > 0 {
		return nil, fmt.Errorf("%w: %w", ErrBadFile, errors.Join(errs...))
	}
	doc := root.Content
	if root.Kind != yaml.DocumentNode || len(doc) != 1 || resolveAlias(doc[0]).Kind != yaml.MappingNode {
		return nil, fmt.Errorf("%w: the top level must be a mapping with a tenants list", ErrBadFile)
	}

	// The walk above gave friendly messages; KnownFields is the backstop.
	dec = yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var f tenantFile
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("%w: %s", ErrBadFile, yamlMessage(err))
	}
	if !hasKey(resolveAlias(doc[0]), "tenants") {
		return nil, fmt.Errorf("%w: no tenants list at the top level", ErrBadFile)
	}
	if f.Tenants == nil {
		f.Tenants = []Tenant{}
	}
	var msgs []string
	for i := range f.Tenants {
		for j := range f.Tenants[i].Methods {
			m := &f.Tenants[i].Methods[j]
			own, all := types.fields(m.Type)
			if err := m.fileConfig(own, all); err != nil {
				msgs = append(msgs, yamlMessage(err))
			}
		}
	}
	if len(msgs) > 0 {
		return nil, fmt.Errorf("%w: %s", ErrBadFile, strings.Join(msgs, "; "))
	}
	return f.Tenants, nil
}

// yamlMessage turns a yaml error (or several, joined) into one line without
// the "yaml: " noise.
func yamlMessage(err error) string {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []string
		for _, e := range j.Unwrap() {
			out = append(out, yamlMessage(e))
		}
		return strings.Join(out, "; ")
	}
	var te *yaml.TypeError
	if errors.As(err, &te) {
		return strings.Join(te.Errors, "; ")
	}
	return strings.TrimPrefix(err.Error(), "yaml: ")
}

func resolveAlias(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < maxNodeDepth; i++ {
		n = n.Alias
	}
	return n
}

func hasKey(m *yaml.Node, key string) bool {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return true
		}
	}
	return false
}

// unknownFields walks a parsed document against the tenantFile schema and
// reports every key that names no field, with its place and line. A method
// entry's fields are tenants' own and those of every type's Config.
func unknownFields(root *yaml.Node, types MethodTypes) []error {
	w := &fieldWalker{fields: map[reflect.Type]map[string]reflect.Type{}}
	methodFields := map[string]reflect.Type{
		"type":         reflect.TypeFor[string](),
		"label":        reflect.TypeFor[string](),
		"groupRoles":   reflect.TypeFor[map[string][]string](),
		"defaultRoles": reflect.TypeFor[[]string](),
	}
	_, all := types.fields("")
	for k, t := range all {
		if _, own := methodFields[k]; !own {
			methodFields[k] = t
		}
	}
	w.fields[reflect.TypeFor[Method]()] = methodFields
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		w.walk(root.Content[0], reflect.TypeFor[tenantFile](), 0)
	}
	return w.errs
}

type fieldWalker struct {
	errs   []error
	visits int
	fields map[reflect.Type]map[string]reflect.Type
	// path is where the walk is: keys and list indexes, turned into text
	// only when there is something to report.
	path []pathElem
}

type pathElem struct {
	key   string
	index int
	node  *yaml.Node // the list element, for index elements
}

var errTooManyNodes = errors.New("the document expands (through aliases) to too many values")

func (w *fieldWalker) place() string {
	var b strings.Builder
	for i, e := range w.path {
		switch {
		case e.node == nil && i > 0:
			b.WriteString("." + e.key)
		case e.node == nil:
			b.WriteString(e.key)
		default:
			fmt.Fprintf(&b, "[%d]", e.index)
			if i == 1 && w.path[0].key == "tenants" {
				if id := mappingValue(resolveAlias(e.node), "id"); id != "" {
					fmt.Fprintf(&b, " (id %q)", id)
				}
			}
		}
	}
	if b.Len() == 0 {
		return "top level"
	}
	return b.String()
}

func (w *fieldWalker) walk(n *yaml.Node, t reflect.Type, depth int) {
	n = resolveAlias(n)
	if n == nil || depth > maxNodeDepth || len(w.errs) >= 100 {
		return
	}
	if w.visits++; w.visits > maxNodeVisits {
		if len(w.errs) == 0 || w.errs[len(w.errs)-1] != errTooManyNodes {
			w.errs = append(w.errs, errTooManyNodes)
		}
		return
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			return // a type error; the decoder reports it
		}
		fields, ok := w.fields[t]
		if !ok {
			fields = yamlFields(t)
			w.fields[t] = fields
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, val := n.Content[i], n.Content[i+1]
			if k.Value == "<<" && k.Tag == "!!merge" {
				v := resolveAlias(val)
				if v != nil && v.Kind == yaml.SequenceNode {
					for _, m := range v.Content {
						w.walk(m, t, depth+1)
					}
				} else {
					w.walk(v, t, depth+1)
				}
				continue
			}
			ft, ok := fields[k.Value]
			if !ok {
				w.errs = append(w.errs, fmt.Errorf("%s: unknown field %q (line %d)", w.place(), k.Value, k.Line))
				continue
			}
			w.path = append(w.path, pathElem{key: k.Value})
			w.walk(val, ft, depth+1)
			w.path = w.path[:len(w.path)-1]
		}
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			return
		}
		for i, e := range n.Content {
			w.path = append(w.path, pathElem{index: i, node: e})
			w.walk(e, t.Elem(), depth+1)
			w.path = w.path[:len(w.path)-1]
		}
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			return
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			w.path = append(w.path, pathElem{key: n.Content[i].Value})
			w.walk(n.Content[i+1], t.Elem(), depth+1)
			w.path = w.path[:len(w.path)-1]
		}
	}
}

// mappingValue returns the scalar value of key in mapping m, or "".
func mappingValue(m *yaml.Node, key string) string {
	if m == nil || m.Kind != yaml.MappingNode {
		return ""
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key && m.Content[i+1].Kind == yaml.ScalarNode {
			return m.Content[i+1].Value
		}
	}
	return ""
}

// yamlFields maps the yaml names of a struct's fields to their types,
// leaving out fields tagged "-".
func yamlFields(t reflect.Type) map[string]reflect.Type {
	fields := make(map[string]reflect.Type, t.NumField())
	for i := range t.NumField() {
		sf := t.Field(i)
		if !sf.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(sf.Tag.Get("yaml"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = strings.ToLower(sf.Name)
		}
		fields[name] = sf.Type
	}
	return fields
}

// MarshalFile writes tenants as a tenant file, in format "yaml" or "json",
// in the same schema ParseFile reads, so the output can be applied again.
// Sealed secrets are never written (Method.Sealed is not part of the
// schema), and tenants a Store returns hold no plaintext ones; the store
// keeps a method's sealed secret when the file is re-applied without one.
// Store fields (internal id, keys, creation time) are not part of the
// schema either.
func MarshalFile(ts []Tenant, format string) ([]byte, error) {
	f := tenantFile{Tenants: ts}
	switch format {
	case "yaml":
		var b bytes.Buffer
		enc := yaml.NewEncoder(&b)
		enc.SetIndent(2)
		if err := enc.Encode(f); err != nil {
			return nil, fmt.Errorf("marshal tenants as yaml: %w", err)
		}
		if err := enc.Close(); err != nil {
			return nil, fmt.Errorf("marshal tenants as yaml: %w", err)
		}
		return b.Bytes(), nil
	case "json":
		b, err := json.MarshalIndent(f, "", "  ")
		if err != nil {
			return nil, fmt.Errorf("marshal tenants as json: %w", err)
		}
		return append(b, '\n'), nil
	default:
		return nil, fmt.Errorf("marshal tenants: unknown format %q (yaml or json)", format)
	}
}
