package smemu

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"

	"cloud.google.com/go/secretmanager/apiv1/secretmanagerpb"
	"google.golang.org/protobuf/encoding/protojson"
)

// fileState is the data file's layout: each secret and version as protojson, with the
// version's data (base64, absent once destroyed).
type fileState struct {
	Secrets []fileSecret `json:"secrets"`
}

type fileSecret struct {
	Secret   json.RawMessage `json:"secret"`
	Versions []fileVersion   `json:"versions"`
}

type fileVersion struct {
	Version json.RawMessage `json:"version"`
	Data    []byte          `json:"data,omitempty"`
}

// load reads the data file, if there is one.
func (s *service) load() error {
	b, err := os.ReadFile(s.file)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("smemu: read %s: %w", s.file, err)
	}
	var st fileState
	if err := json.Unmarshal(b, &st); err != nil {
		return fmt.Errorf("smemu: read %s: %w", s.file, err)
	}
	for _, fsec := range st.Secrets {
		sec := &secret{meta: &secretmanagerpb.Secret{}}
		if err := protojson.Unmarshal(fsec.Secret, sec.meta); err != nil {
			return fmt.Errorf("smemu: read %s: %w", s.file, err)
		}
		if _, err := parseSecret(sec.meta.GetName()); err != nil {
			return fmt.Errorf("smemu: read %s: %w", s.file, err)
		}
		for i, fv := range fsec.Versions {
			v := &version{meta: &secretmanagerpb.SecretVersion{}, data: fv.Data}
			if err := protojson.Unmarshal(fv.Version, v.meta); err != nil {
				return fmt.Errorf("smemu: read %s: %w", s.file, err)
			}
			if want := fmt.Sprintf("%s/versions/%d", sec.meta.GetName(), i+1); v.meta.GetName() != want {
				return fmt.Errorf("smemu: read %s: version %q is out of place (want %s)", s.file, v.meta.GetName(), want)
			}
			sec.versions = append(sec.versions, v)
		}
		s.secrets[sec.meta.GetName()] = sec
	}
	return nil
}

// save writes the whole state to the data file atomically (a private temporary file in the
// same directory, synced, then renamed over it). The caller holds s.mu.
func (s *service) save() error {
	if s.file == "" {
		return nil
	}
	names := make([]string, 0, len(s.secrets))
	for name := range s.secrets {
		names = append(names, name)
	}
	sort.Strings(names)
	st := fileState{Secrets: []fileSecret{}}
	for _, name := range names {
		sec := s.secrets[name]
		meta, err := protojson.Marshal(sec.meta)
		if err != nil {
			return err
		}
		fsec := fileSecret{Secret: meta, Versions: []fileVersion{}}
		for _, v := range sec.versions {
			vm, err := protojson.Marshal(v.meta)
			if err != nil {
				return err
			}
			fsec.Versions = append(fsec.Versions, fileVersion{Version: vm, Data: v.data})
		}
		st.Secrets = append(st.Secrets, fsec)
	}
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	dir := filepath.Dir(s.file)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(s.file)+".*.tmp") // mode 0600
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // fails harmlessly once renamed
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), s.file)
}
