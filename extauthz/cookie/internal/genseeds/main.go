// Command genseeds writes the committed seed corpus of FuzzCookieHeader
// (testdata/fuzz/FuzzCookieHeader/, in the "go test fuzz v1" format): the
// Cookie header shapes of the security catalogue (item 43, comma smuggling
// past a __Host- prefix) and what Envoy and browsers really send. Run from
// the repository root:
//
//	go run ./extauthz/cookie/internal/genseeds
//
// It adds files and never removes any, so corpus entries found by fuzzing
// and committed later stay.
package main

import (
	"crypto/sha256"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

const dir = "extauthz/cookie/testdata/fuzz/FuzzCookieHeader"

var headers = []string{
	"",
	"a=1",
	"a=1; b=2; c=3",
	"a=1;b=2",
	"__Host-tenantgate=eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJ1In0.c2ln; app=1",
	"app=1; __Host-tenantgate=t; __Host-tenantgate-csrf=c; __Host-tg-attempt-AAAA=s",
	"__Secure-tenantgate.acme=t; __Host-tenantgate-switch.acme=v; __Host-tg-idt.acme=i",
	"tenantgate=t; tenantgate-csrf=c; tenantgate-global=g; tenantgate-intent=i; tg-attempt-x=a",
	// Comma smuggling: a sibling subdomain's cookie carries a __Host- pair.
	`x="junk, __Host-tenantgate=evil"; __Host-tenantgate=good`,
	`x="junk, __Host-tenantgate=evil"`,
	"x=junk, __Host-tenantgate=evil",
	`x="a; __Host-tenantgate=evil"`,
	// Envoy's headers map joins two HTTP/1 Cookie lines with ",".
	"a=1; b=2,c=3,d=\"x, e=5\"",
	"a=1,__Host-tenantgate=t",
	"__Host-tenantgate=t,a=1",
	// Nameless cookies and whitespace that is not OWS.
	"=__Host-tenantgate=evil",
	"__Host-tenantgate",
	"\u2000__Host-tenantgate=x",
	"\u00a0__Host-tenantgate=x",
	" \t__Host-tenantgate \t= \t\"t\" \t",
	"__HOST-tenantgate=x; __host-tenantgate=y",
	";;=;\t=\t;",
	"a=\"\"; b=\"; c=\"\"\"",
	"a=\xff\xfe; __Host-tenantgate=t",
	"a=1\x00; b=2",
	strings.Repeat("__Host-tenantgate=x; ", 20) + "app=1",
}

func main() {
	for _, h := range headers {
		write("string(" + strconv.Quote(h) + ")")
	}
}

func write(body string) {
	content := "go test fuzz v1\n" + body + "\n"
	sum := sha256.Sum256([]byte(content))
	path := filepath.Join(dir, fmt.Sprintf("seed-%x", sum[:8]))
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		log.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		log.Fatal(err)
	}
}
