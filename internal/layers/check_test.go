package layers

import (
	"slices"
	"strings"
	"testing"
)

// fakeTable states rules over the module in testdata/fake.
var fakeTable = Table{
	Module: "example.com/fake",
	Groups: []Group{{Name: "prod", Patterns: []string{"./cmd/..."}}},
	Rules: []Rule{
		{Name: "core-pure", From: []string{"./core"}, Reach: true, Forbid: []string{"./sdk/...", "net/http"}},
		{Name: "prod-no-dev", From: []string{"$prod"}, Reach: true, Forbid: []string{"./emulators/..."}},
	},
}

// TestCheckFakeModule loads a module whose fake core imports a fake SDK and net/http, and
// whose fake production binary reaches a fake emulator through another package: the check
// reports exactly those, with their chains, and nothing about the binary that keeps the rules.
func TestCheckFakeModule(t *testing.T) {
	t.Parallel()
	g, err := Load("testdata/fake", "./...")
	if err != nil {
		t.Fatal(err)
	}
	got := strs(fakeTable.Check(g))
	want := []string{
		"rule core-pure: ./core imports ./sdk",
		"rule core-pure: ./core imports net/http",
		"rule prod-no-dev: ./cmd/worker reaches ./emulators/fakeemu via ./cmd/worker -> ./mid -> ./emulators/fakeemu",
	}
	if !slices.Equal(got, want) {
		t.Errorf("findings:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	f := fakeTable.Check(g)[2]
	if f.Importer() != "./cmd/worker" || f.Forbidden() != "./emulators/fakeemu" {
		t.Errorf("importer %s, forbidden %s; want ./cmd/worker, ./emulators/fakeemu", f.Importer(), f.Forbidden())
	}
}

// TestCheckFakeModuleFixed is the same module with the offending edges exempted: no
// violation, and no exemption reported stale.
func TestCheckFakeModuleFixed(t *testing.T) {
	t.Parallel()
	g, err := Load("testdata/fake", "./...")
	if err != nil {
		t.Fatal(err)
	}
	tb := fakeTable
	tb.Rules = slices.Clone(tb.Rules)
	tb.Rules[0].Exempt = []Edge{{From: "./core", To: "./sdk"}, {From: "./core", To: "net/http"}}
	tb.Rules[1].Exempt = []Edge{{From: "./mid", To: "./emulators/fakeemu"}}
	if got := strs(tb.Check(g)); len(got) > 0 {
		t.Errorf("findings with every violation exempted:\n%s", strings.Join(got, "\n"))
	}
}

func TestLoadBrokenModule(t *testing.T) {
	t.Parallel()
	_, err := Load("testdata/broken", "./...")
	if err == nil || !strings.Contains(err.Error(), "example.com/broken/missing") {
		t.Fatalf("Load of a package importing a missing one: err %v, want it to name example.com/broken/missing", err)
	}
}

// TestCheck runs the checker over made-up graphs.
func TestCheck(t *testing.T) {
	t.Parallel()
	const m = "m"
	graph := Graph{
		"m/a":       {"m/b", "m/d"},
		"m/b":       {"m/c"},
		"m/c":       {"x.com/sdk"},
		"m/d":       {"x.com/sdk"},
		"m/e":       {"m/f1"},
		"m/f1":      {"m/f2"},
		"m/f2":      nil,
		"m/g":       {"fmt", "x.com/lib"},
		"fmt":       {"errors"},
		"errors":    nil,
		"x.com/sdk": {"net/http"},
		"x.com/lib": nil,
		"net/http":  nil,
	}
	tests := []struct {
		name string
		rule Rule
		want []string
	}{
		{
			name: "direct rule ignores what the imports import",
			rule: Rule{Name: "r", From: []string{"./b"}, Forbid: []string{"x.com/sdk"}},
			want: nil,
		},
		{
			name: "reach rule follows chains",
			rule: Rule{Name: "r", From: []string{"./b"}, Reach: true, Forbid: []string{"x.com/sdk"}},
			want: []string{"rule r: ./b reaches x.com/sdk via ./b -> ./c -> x.com/sdk"},
		},
		{
			name: "the chain reported is a shortest one",
			rule: Rule{Name: "r", From: []string{"./a"}, Reach: true, Forbid: []string{"x.com/..."}},
			want: []string{"rule r: ./a reaches x.com/sdk via ./a -> ./d -> x.com/sdk"},
		},
		{
			name: "a chain stops at its first forbidden package",
			rule: Rule{Name: "r", From: []string{"./e"}, Reach: true, Forbid: []string{"./f1", "./f2"}},
			want: []string{"rule r: ./e imports ./f1"},
		},
		{
			name: "except takes packages out of the rule",
			rule: Rule{Name: "r", From: []string{"./..."}, Except: []string{"./a", "./b"}, Reach: true, Forbid: []string{"x.com/sdk"}},
			want: []string{"rule r: ./c imports x.com/sdk", "rule r: ./d imports x.com/sdk"},
		},
		{
			name: "allow takes packages out of the forbidden ones",
			rule: Rule{Name: "r", From: []string{"./g"}, Reach: true, Forbid: []string{"..."}, Allow: []string{"std"}},
			want: []string{"rule r: ./g imports x.com/lib"},
		},
		{
			name: "a forbidden package reached by two importers is reported for each",
			rule: Rule{Name: "r", From: []string{"./c", "./d"}, Forbid: []string{"x.com/sdk"}},
			want: []string{"rule r: ./c imports x.com/sdk", "rule r: ./d imports x.com/sdk"},
		},
		{
			name: "an exempt edge is not followed",
			rule: Rule{Name: "r", From: []string{"./a"}, Reach: true, Forbid: []string{"net/http"},
				Exempt: []Edge{{From: "x.com/sdk", To: "net/http"}}},
			want: nil,
		},
		{
			name: "an exemption that excuses nothing is reported",
			rule: Rule{Name: "r", From: []string{"./a"}, Reach: true, Forbid: []string{"net/http"},
				Exempt: []Edge{{From: "x.com/sdk", To: "net/http"}, {From: "./a", To: "./b"}}},
			want: []string{"rule r: exemption ./a -> ./b is no longer needed: remove it from the table"},
		},
		{
			name: "an exemption of an import that does not exist is reported",
			rule: Rule{Name: "r", From: []string{"./c"}, Forbid: []string{"x.com/sdk"},
				Exempt: []Edge{{From: "./c", To: "x.com/sdk"}, {From: "./c", To: "./gone"}}},
			want: []string{"rule r: exemption ./c -> ./gone is no longer needed: remove it from the table"},
		},
		{
			name: "an exemption covers only the edge it names",
			rule: Rule{Name: "r", From: []string{"./a"}, Reach: true, Forbid: []string{"x.com/sdk"},
				Exempt: []Edge{{From: "./d", To: "x.com/sdk"}}},
			want: []string{"rule r: ./a reaches x.com/sdk via ./a -> ./b -> ./c -> x.com/sdk"},
		},
		{
			name: "two exemptions on one chain are both needed",
			rule: Rule{Name: "r", From: []string{"./a"}, Reach: true, Forbid: []string{"x.com/sdk"},
				Exempt: []Edge{{From: "./d", To: "x.com/sdk"}, {From: "./a", To: "./b"}}},
			want: nil,
		},
		{
			name: "an exemption off every chain from the rule's packages is reported",
			rule: Rule{Name: "r", From: []string{"./b"}, Reach: true, Forbid: []string{"x.com/sdk"},
				Exempt: []Edge{{From: "./c", To: "x.com/sdk"}, {From: "./d", To: "x.com/sdk"}}},
			want: []string{"rule r: exemption ./d -> x.com/sdk is no longer needed: remove it from the table"},
		},
		{
			name: "an exemption of a direct rule must start at one of its packages",
			rule: Rule{Name: "r", From: []string{"./c"}, Forbid: []string{"x.com/sdk", "net/http"},
				Exempt: []Edge{{From: "./c", To: "x.com/sdk"}, {From: "x.com/sdk", To: "net/http"}}},
			want: []string{"rule r: exemption x.com/sdk -> net/http is no longer needed: remove it from the table"},
		},
		{
			name: "a module pattern that matches nothing is reported",
			rule: Rule{Name: "r", From: []string{"./gone", "./a"}, Forbid: []string{"./renamed", "y.com/never-used"}},
			want: []string{
				`rule r: pattern "./gone" matches no package of the module: fix the table`,
				`rule r: pattern "./renamed" matches no package of the module: fix the table`,
			},
		},
		{
			name: "a group that does not exist is reported",
			rule: Rule{Name: "r", From: []string{"$nope"}, Forbid: []string{"x.com/sdk"}},
			want: []string{`rule r: no group named "nope": fix the table`},
		},
		{
			name: "a group is expanded",
			rule: Rule{Name: "r", From: []string{"$two"}, Forbid: []string{"$sdk"}},
			want: []string{"rule r: ./c imports x.com/sdk", "rule r: ./d imports x.com/sdk"},
		},
		{
			name: "a group that refers to itself is reported",
			rule: Rule{Name: "r", From: []string{"$loop"}, Forbid: []string{"x.com/sdk"}},
			want: []string{`rule r: group "loop" refers to itself via loop -> loop: fix the table`},
		},
	}
	groups := []Group{
		{Name: "two", Patterns: []string{"./c", "./d"}},
		{Name: "sdk", Patterns: []string{"x.com/sdk"}},
		{Name: "loop", Patterns: []string{"./a", "$loop"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tb := Table{Module: m, Groups: groups, Rules: []Rule{tt.rule}}
			if got := strs(tb.Check(graph)); !slices.Equal(got, tt.want) {
				t.Errorf("findings:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

func strs(fs []Finding) []string {
	var out []string
	for _, f := range fs {
		out = append(out, f.String())
	}
	return out
}
