package slackapi

import "testing"

func TestAPIURL(t *testing.T) {
	for in, want := range map[string]string{
		"":                           "",
		"http://127.0.0.1:9000":      "http://127.0.0.1:9000/api/",
		"http://127.0.0.1:9000/":     "http://127.0.0.1:9000/api/",
		"http://127.0.0.1:9000/api":  "http://127.0.0.1:9000/api/",
		"http://127.0.0.1:9000/api/": "http://127.0.0.1:9000/api/",
		" http://h:1/ ":              "http://h:1/api/",
	} {
		if got := APIURL(in); got != want {
			t.Errorf("APIURL(%q) = %q; want %q", in, got, want)
		}
	}
}
