package render

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"net/url"
	"sort"
	"strings"
)

// minMasked is the shortest secret value masked: shorter ones would blank out ordinary text.
const minMasked = 4

// Mask replaces every secret value in s with ***, in each form a value takes when something
// encodes it: as it is, JSON-escaped (with and without HTML escaping: s3cr3t&pass is
// s3cr3t\u0026pass in Go's JSON), URL-encoded (query and path) and base64 (standard and URL
// alphabets, padded or not). Longest first, so a value containing another is masked whole.
// Values shorter than 4 characters are not masked.
//
// Mask works on text that is already encoded; MaskValue masks values before they are encoded,
// which is the way to call it whenever the value is at hand.
func Mask(s string, secrets []string) string {
	forms := maskForms(secrets)
	for _, f := range forms {
		s = strings.ReplaceAll(s, f, "***")
	}
	return s
}

// MaskValue returns a copy of v (decoded JSON: maps, lists, strings, numbers) with every
// string, and every map key, masked by Mask.
func MaskValue(v any, secrets []string) any {
	forms := maskForms(secrets)
	if len(forms) == 0 {
		return v
	}
	var walk func(v any) any
	walk = func(v any) any {
		switch x := v.(type) {
		case string:
			for _, f := range forms {
				x = strings.ReplaceAll(x, f, "***")
			}
			return x
		case map[string]any:
			out := make(map[string]any, len(x))
			for k, e := range x {
				out[walk(k).(string)] = walk(e)
			}
			return out
		case []any:
			out := make([]any, len(x))
			for i, e := range x {
				out[i] = walk(e)
			}
			return out
		}
		return v
	}
	return walk(v)
}

// MaskJSON masks a JSON document by decoding it, masking its values and encoding it again,
// so a secret is found whatever escaping the encoder chose. Text that is not JSON is masked
// as text.
func MaskJSON(doc []byte, secrets []string) []byte {
	if len(secrets) == 0 || len(doc) == 0 {
		return doc
	}
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil || dec.More() {
		return []byte(Mask(string(doc), secrets))
	}
	out, err := json.Marshal(MaskValue(v, secrets))
	if err != nil {
		return []byte(Mask(string(doc), secrets))
	}
	// A value may still hide in a form only the text shows (base64 inside a longer string).
	return []byte(Mask(string(out), secrets))
}

// maskForms lists every form of every secret value long enough to mask, longest first.
func maskForms(secrets []string) []string {
	seen := map[string]bool{}
	var forms []string
	add := func(f string) {
		if len(f) >= minMasked && !seen[f] {
			seen[f] = true
			forms = append(forms, f)
		}
	}
	for _, v := range secrets {
		if len(v) < minMasked {
			continue
		}
		add(v)
		add(jsonEscaped(v, true))
		add(jsonEscaped(v, false))
		add(url.QueryEscape(v))
		add(url.PathEscape(v))
		for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding} {
			add(enc.EncodeToString([]byte(v)))
		}
	}
	sort.SliceStable(forms, func(i, j int) bool { return len(forms[i]) > len(forms[j]) })
	return forms
}

// jsonEscaped is v as it appears inside a JSON string, without the quotes.
func jsonEscaped(v string, html bool) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(html)
	_ = enc.Encode(v)
	s := strings.TrimSuffix(b.String(), "\n")
	return strings.TrimSuffix(strings.TrimPrefix(s, `"`), `"`)
}
