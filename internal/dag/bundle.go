package dag

// BundleRef pins the files beside a DAG (scripts, SQL, Python modules) that its version runs
// with: a stored bundle by hash, or, for local runs, the folder itself.
type BundleRef struct {
	// Hash names a stored bundle (hex SHA-256 of its contents); empty for a local folder.
	Hash string `json:"hash,omitempty"`
	// Dir is a local folder used in place (`updraft test`, `updraft dev`): nothing is
	// uploaded, so an edit is seen by the next attempt. Empty for a stored bundle.
	Dir string `json:"dir,omitempty"`
	// File is the DAG file's path inside the bundle, slash-separated.
	File string `json:"file"`
}

// Short is the hash's first 12 digits, or "local" for a folder used in place.
func (r BundleRef) Short() string {
	if r.Hash == "" {
		return "local"
	}
	return r.Hash[:min(12, len(r.Hash))]
}
