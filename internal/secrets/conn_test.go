package secrets

import (
	"reflect"
	"strings"
	"testing"

	"github.com/updraft-dev/updraft/tasks"
)

func TestParseConn(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, raw string
		want      tasks.Connection
	}{
		{"json", `{"conn_type": "postgres", "host": "db.internal", "login": "etl", "password": "p@ss:w/rd", "schema": "warehouse", "port": 5432, "extra": {"sslmode": "require"}}`,
			tasks.Connection{Type: "postgres", Host: "db.internal", Login: "etl", Password: "p@ss:w/rd", Schema: "warehouse", Port: 5432, Extra: map[string]any{"sslmode": "require"}}},
		{"json extra as a string, port as a string", `{"conn_type": "google-cloud-platform", "port": "8080", "extra": "{\"project\": \"p\", \"n\": 2}"}`,
			tasks.Connection{Type: "google_cloud_platform", Port: 8080, Extra: map[string]any{"project": "p", "n": 2.0}}},
		{"json nulls", `{"conn_type": "http", "host": null, "port": null, "extra": null}`,
			tasks.Connection{Type: "http"}},
		{"uri", "postgresql://etl:p%40ss%3Aw%2Frd@db.internal:5432/warehouse?sslmode=require&application_name=updraft",
			tasks.Connection{Type: "postgres", Host: "db.internal", Login: "etl", Password: "p@ss:w/rd", Schema: "warehouse", Port: 5432,
				Extra: map[string]any{"sslmode": "require", "application_name": "updraft"}}},
		{"uri with dashes and underscores in the scheme", "google-cloud-platform://?project=p",
			tasks.Connection{Type: "google_cloud_platform", Extra: map[string]any{"project": "p"}}},
		{"uri scheme with an underscore", "my_type://host",
			tasks.Connection{Type: "my_type", Host: "host"}},
		{"uri host with a protocol", "http://https://api.example.com:8443/v1",
			tasks.Connection{Type: "http", Host: "https://api.example.com", Port: 8443, Schema: "v1"}},
		{"uri with __extra__", "slack://:xoxb-123@?__extra__=%7B%22channel%22%3A+%22%23alerts%22%7D",
			tasks.Connection{Type: "slack", Password: "xoxb-123", Extra: map[string]any{"channel": "#alerts"}}},
		{"uri repeated parameter: the last wins", "http://h?a=1&a=2",
			tasks.Connection{Type: "http", Host: "h", Extra: map[string]any{"a": "2"}}},
		{"uri with surrounding whitespace", " http://h \n", tasks.Connection{Type: "http", Host: "h"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseConn("c", tt.raw)
			if err != nil {
				t.Fatal(err)
			}
			tt.want.ID = "c"
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestParseConnErrorsDoNotQuoteTheValue(t *testing.T) {
	t.Parallel()
	for _, raw := range []string{
		"s3cr3t-token-value",                         // no scheme
		"postgres://etl:s3cr3t#value@db.internal/wh", // unencoded #
		"postgres://etl:s3cr3t-value@db.internal:port/wh",
		"postgres://etl:s3cr3t%zzvalue@db.internal/wh",
		`{"password": "s3cr3t-value", "port": "five"}`,
		`{"password": "s3cr3t-value", "extra": "not json"}`,
		`{"password": "s3cr3t-value",`,
		"a://b://c://s3cr3t",
	} {
		_, err := parseConn("c", raw)
		if err == nil {
			t.Errorf("%q: no error", raw)
			continue
		}
		if strings.Contains(err.Error(), "s3cr3t") {
			t.Errorf("%q: error quotes the value: %v", raw, err)
		}
	}
}

func FuzzParseConn(f *testing.F) {
	for _, s := range []string{
		`{"conn_type": "postgres", "password": "x", "port": 1, "extra": "{}"}`,
		"postgres://a:b@h:1/s?x=y",
		"http://https://h/p",
		"slack://:t@?__extra__=%7B%7D",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		c, err := parseConn("c", raw)
		if err != nil {
			return
		}
		if c.ID != "c" || strings.Contains(c.Type, "-") {
			t.Fatalf("parseConn(%q) = %+v", raw, c)
		}
	})
}
