package saml

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/beevik/etree"
)

// XML namespaces.
const (
	nsAssertion = "urn:oasis:names:tc:SAML:2.0:assertion"
	nsProtocol  = "urn:oasis:names:tc:SAML:2.0:protocol"
	nsMetadata  = "urn:oasis:names:tc:SAML:2.0:metadata"
	nsDSig      = "http://www.w3.org/2000/09/xmldsig#"
	nsXMLEnc    = "http://www.w3.org/2001/04/xmlenc#"
)

const (
	// maxXMLDepth bounds element nesting; a SAML response is about 8 deep.
	maxXMLDepth = 64
	// maxXMLTokens bounds the number of XML tokens.
	maxXMLTokens = 50000
)

// refuseDTD refuses document type declarations and entity declarations on
// the raw bytes, before any parser sees them (billion laughs, XXE). It also
// refuses input that is not UTF-8.
func refuseDTD(data []byte) error {
	if !utf8.Valid(data) {
		return errors.New("xml is not utf-8")
	}
	upper := bytes.ToUpper(data)
	if bytes.Contains(upper, []byte("<!DOCTYPE")) {
		return errors.New("xml has a DOCTYPE")
	}
	if bytes.Contains(upper, []byte("<!ENTITY")) {
		return errors.New("xml declares an ENTITY")
	}
	return nil
}

// checkWellFormed reads the whole document with a strict encoding/xml
// decoder: one root element, balanced tags, bounded depth and size, no
// directives.
func checkWellFormed(data []byte) error {
	d := xml.NewDecoder(bytes.NewReader(data))
	d.Strict = true
	depth, tokens, roots := 0, 0, 0
	for {
		tok, err := d.RawToken()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("xml not well formed: %w", err)
		}
		tokens++
		if tokens > maxXMLTokens {
			return errors.New("xml has too many tokens")
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if depth == 0 {
				roots++
				if roots > 1 {
					return errors.New("xml not well formed: more than one root element")
				}
			}
			depth++
			if depth > maxXMLDepth {
				return errors.New("xml nested too deeply")
			}
		case xml.EndElement:
			depth--
		case xml.Directive:
			return errors.New("xml has a directive")
		case xml.CharData:
			if depth == 0 && len(bytes.TrimSpace(t)) > 0 {
				return errors.New("xml not well formed: text outside the root element")
			}
		}
	}
	if depth != 0 {
		return errors.New("xml not well formed: unclosed element")
	}
	if roots != 1 {
		return errors.New("xml not well formed: no root element")
	}
	return nil
}

// checkMetadataXML checks inline SAML IdP metadata: at most
// maxMetadataXMLLen bytes, well-formed XML with one root element, and no
// DOCTYPE or other directive (no DTD, no entity expansion: security
// catalogue §4). Whether it is usable metadata is parseIDPMetadata's
// business when the method opens.
func checkMetadataXML(doc string) error {
	if len(doc) > maxMetadataXMLLen {
		return fmt.Errorf("longer than %d bytes", maxMetadataXMLLen)
	}
	if !utf8.ValidString(doc) {
		return errors.New("is not UTF-8")
	}
	// A leading byte order mark is how Entra ID serves metadata;
	// parseIDPMetadata drops it too.
	d := xml.NewDecoder(strings.NewReader(strings.TrimPrefix(doc, "\uFEFF")))
	d.Strict = true
	roots, depth := 0, 0
	for {
		tok, err := d.RawToken()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return errors.New("is not XML")
		}
		switch tok := tok.(type) {
		case xml.Directive:
			return errors.New("must not contain a DOCTYPE or other <!...> declaration")
		case xml.StartElement:
			if depth == 0 {
				roots++
			}
			depth++
		case xml.EndElement:
			depth--
		case xml.CharData:
			if depth == 0 && len(bytes.TrimSpace(tok)) > 0 {
				return errors.New("is not XML (text outside the root element)")
			}
		}
	}
	switch {
	case roots == 0:
		return errors.New("is not XML")
	case roots > 1 || depth != 0:
		return errors.New("is not one well-formed XML document")
	}
	return nil
}

// is reports whether el is the element {ns}local.
func is(el *etree.Element, ns, local string) bool {
	return el != nil && el.Tag == local && el.NamespaceURI() == ns
}

// children returns el's child elements named {ns}local.
func children(el *etree.Element, ns, local string) []*etree.Element {
	var out []*etree.Element
	for _, c := range el.ChildElements() {
		if is(c, ns, local) {
			out = append(out, c)
		}
	}
	return out
}

// oneChild returns el's only child {ns}local, nil when there is none, and
// an error when there are several.
func oneChild(el *etree.Element, ns, local string) (*etree.Element, error) {
	cs := children(el, ns, local)
	switch len(cs) {
	case 0:
		return nil, nil
	case 1:
		return cs[0], nil
	default:
		return nil, fmt.Errorf("more than one %s in %s", local, el.Tag)
	}
}

// countLocal counts the elements below and including el whose local name is
// local, whatever their namespace.
func countLocal(el *etree.Element, local string) int {
	n := 0
	if el.Tag == local {
		n++
	}
	for _, c := range el.ChildElements() {
		n += countLocal(c, local)
	}
	return n
}

// text returns all the character data directly inside el, concatenated. A
// comment or processing instruction between two pieces of text does not cut
// the value short (CVE-2017-11427: "a@x.com<!---->.evil.com" is
// "a@x.com.evil.com", never "a@x.com"). It refuses child elements.
func text(el *etree.Element) (string, error) {
	var b strings.Builder
	for _, t := range el.Child {
		switch t := t.(type) {
		case *etree.CharData:
			b.WriteString(t.Data)
		case *etree.Element:
			return "", fmt.Errorf("element inside %s", el.Tag)
		}
	}
	return strings.TrimSpace(b.String()), nil
}

// attr returns the value of el's un-namespaced attribute key.
func attr(el *etree.Element, key string) string {
	for _, a := range el.Attr {
		if a.Space == "" && a.Key == key {
			return a.Value
		}
	}
	return ""
}

// hasAttr reports whether el has the un-namespaced attribute key.
func hasAttr(el *etree.Element, key string) bool {
	for _, a := range el.Attr {
		if a.Space == "" && a.Key == key {
			return true
		}
	}
	return false
}
