package saml

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strings"
	"testing"
)

// TestNoCrewjamResponseParsing keeps the package off crewjam/saml's response
// and logout parsing, the code GO-2026-6909 (and crewjam's weaker checks)
// live in: no release fixes it, so the package must not reach it. Responses
// are validated by this package's own code (see doc.go). govulncheck
// reports the same at symbol level when it can reach its database.
func TestNoCrewjamResponseParsing(t *testing.T) {
	forbidden := map[string]bool{
		"ParseResponse": true, "ParseXMLResponse": true, "ParseXMLArtifactResponse": true,
		"ValidateLogoutResponseRequest": true, "ValidateLogoutResponseForm": true,
		"ValidateLogoutResponseRedirect": true, "MakeArtifactResolveRequest": true,
	}
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			if sel, ok := n.(*ast.SelectorExpr); ok && forbidden[sel.Sel.Name] {
				t.Errorf("%s: calls %s", fset.Position(sel.Pos()), sel.Sel.Name)
			}
			return true
		})
	}
}
