package main

import (
	"strings"
	"testing"
)

// The inputs are `go test -json` output of small packages, shortened (Time
// and Elapsed dropped).
func TestSummary(t *testing.T) {
	tests := []struct {
		name       string
		named      []string
		input      string
		want       string
		wantFailed bool
	}{
		{
			name:  "a passing package shows its ok line and its counts",
			named: []string{"m/e2e"},
			input: `{"Action":"start","Package":"m/e2e"}
{"Action":"run","Package":"m/e2e","Test":"TestA"}
{"Action":"output","Package":"m/e2e","Test":"TestA","Output":"=== RUN   TestA\n"}
{"Action":"output","Package":"m/e2e","Test":"TestA","Output":"    a_test.go:3: a log nobody asked for\n"}
{"Action":"output","Package":"m/e2e","Test":"TestA","Output":"--- PASS: TestA (0.00s)\n"}
{"Action":"pass","Package":"m/e2e","Test":"TestA"}
{"Action":"run","Package":"m/e2e","Test":"TestEnvoy"}
{"Action":"output","Package":"m/e2e","Test":"TestEnvoy","Output":"=== RUN   TestEnvoy\n"}
{"Action":"output","Package":"m/e2e","Test":"TestEnvoy","Output":"    proc.go:75: Envoy not found at /x/envoy; install it with: make tools\n"}
{"Action":"output","Package":"m/e2e","Test":"TestEnvoy","Output":"--- SKIP: TestEnvoy (0.00s)\n"}
{"Action":"skip","Package":"m/e2e","Test":"TestEnvoy"}
{"Action":"output","Package":"m/e2e","Output":"PASS\n"}
{"Action":"output","Package":"m/e2e","Output":"ok  \tm/e2e\t0.011s\n"}
{"Action":"pass","Package":"m/e2e"}
`,
			want: `ok  	m/e2e	0.011s

top-level tests (ran = passed + failed):
  ran  passed  failed  skipped  package
    1       1       0        1  m/e2e
skipped m/e2e.TestEnvoy: Envoy not found at /x/envoy; install it with: make tools
all packages: 1 top-level tests ran (1 passed, 0 failed), 1 skipped
`,
		},
		{
			name:  "a failed test shows as go test shows it, passing subtests left out",
			named: []string{"m/e2e", "m/browser"},
			input: `{"Action":"start","Package":"m/e2e"}
{"Action":"run","Package":"m/e2e","Test":"TestFail"}
{"Action":"output","Package":"m/e2e","Test":"TestFail","Output":"=== RUN   TestFail\n"}
{"Action":"output","Package":"m/e2e","Test":"TestFail","Output":"    a_test.go:5: before\n"}
{"Action":"run","Package":"m/e2e","Test":"TestFail/ok"}
{"Action":"output","Package":"m/e2e","Test":"TestFail/ok","Output":"=== RUN   TestFail/ok\n"}
{"Action":"output","Package":"m/e2e","Test":"TestFail/ok","Output":"    a_test.go:5: sub ok log\n"}
{"Action":"output","Package":"m/e2e","Test":"TestFail/ok","Output":"--- PASS: TestFail/ok (0.00s)\n"}
{"Action":"pass","Package":"m/e2e","Test":"TestFail/ok"}
{"Action":"run","Package":"m/e2e","Test":"TestFail/bad"}
{"Action":"output","Package":"m/e2e","Test":"TestFail/bad","Output":"=== RUN   TestFail/bad\n"}
{"Action":"output","Package":"m/e2e","Test":"TestFail/bad","Output":"    a_test.go:5: boom\n"}
{"Action":"output","Package":"m/e2e","Test":"TestFail/bad","Output":"--- FAIL: TestFail/bad (0.00s)\n"}
{"Action":"fail","Package":"m/e2e","Test":"TestFail/bad"}
{"Action":"output","Package":"m/e2e","Test":"TestFail","Output":"--- FAIL: TestFail (0.00s)\n"}
{"Action":"fail","Package":"m/e2e","Test":"TestFail"}
{"Action":"output","Package":"m/e2e","Output":"FAIL\n"}
{"Action":"output","Package":"m/e2e","Output":"FAIL\tm/e2e\t0.011s\n"}
{"Action":"fail","Package":"m/e2e"}
`,
			want: `--- FAIL: TestFail (0.00s)
    a_test.go:5: before
    --- FAIL: TestFail/bad (0.00s)
        a_test.go:5: boom
FAIL
FAIL	m/e2e	0.011s

top-level tests (ran = passed + failed):
  ran  passed  failed  skipped  package
    1       0       1        0  m/e2e
    -       -       -        -  m/browser (not run)
all packages: 1 top-level tests ran (0 passed, 1 failed), 0 skipped
`,
			wantFailed: true,
		},
		{
			name: "a build failure shows its errors and fails",
			input: `{"ImportPath":"m/bad [m/bad.test]","Action":"build-output","Output":"# m/bad [m/bad.test]\n"}
{"ImportPath":"m/bad [m/bad.test]","Action":"build-output","Output":"bad/b.go:2:12: undefined: undefined\n"}
{"ImportPath":"m/bad [m/bad.test]","Action":"build-fail"}
{"Action":"start","Package":"m/bad"}
{"Action":"output","Package":"m/bad","Output":"FAIL\tm/bad [build failed]\n"}
{"Action":"fail","Package":"m/bad","FailedBuild":"m/bad [m/bad.test]"}
`,
			want: `# m/bad [m/bad.test]
bad/b.go:2:12: undefined: undefined
FAIL	m/bad [build failed]
all packages: 0 top-level tests ran (0 passed, 0 failed), 0 skipped
`,
			wantFailed: true,
		},
		{
			name: "a package that dies mid-test shows what its running test said",
			input: `{"Action":"start","Package":"m/hang"}
{"Action":"run","Package":"m/hang","Test":"TestHang"}
{"Action":"output","Package":"m/hang","Test":"TestHang","Output":"=== RUN   TestHang\n"}
{"Action":"output","Package":"m/hang","Test":"TestHang","Output":"    h_test.go:9: waiting for Envoy\n"}
{"Action":"output","Package":"m/hang","Output":"panic: test timed out after 1s\n"}
{"Action":"output","Package":"m/hang","Output":"FAIL\tm/hang\t1.005s\n"}
{"Action":"fail","Package":"m/hang"}
`,
			want: `panic: test timed out after 1s
FAIL	m/hang	1.005s
    h_test.go:9: waiting for Envoy
all packages: 0 top-level tests ran (0 passed, 0 failed), 0 skipped
`,
			wantFailed: true,
		},
		{
			name:  "what is not an event passes through",
			input: "go: cannot find main module\n",
			want:  "go: cannot find main module\nall packages: 0 top-level tests ran (0 passed, 0 failed), 0 skipped\n",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out strings.Builder
			s := newSummary(&out, tc.named)
			if err := s.read(strings.NewReader(tc.input)); err != nil {
				t.Fatal(err)
			}
			s.report()
			if out.String() != tc.want {
				t.Errorf("output:\n%s\nwant:\n%s", out.String(), tc.want)
			}
			if s.failed != tc.wantFailed {
				t.Errorf("failed = %v, want %v", s.failed, tc.wantFailed)
			}
		})
	}
}
