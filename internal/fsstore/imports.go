package fsstore

import (
	"context"
	"errors"
	"time"
)

// ColMeta holds single documents about the deployment as a whole.
const ColMeta = "meta"

// docImportErrors is the ColMeta document holding the import errors of the last DAG deploy.
const docImportErrors = "import_errors"

// ImportProblem is one problem of a DAG file that did not load.
type ImportProblem struct {
	File    string `firestore:"file"`
	Line    int    `firestore:"line"`
	Field   string `firestore:"field"`
	Message string `firestore:"message"`
	Hint    string `firestore:"hint"`
}

// ImportErrors are the problems of the files of the last DAG deploy that did not load (none
// when every file loaded), with when and by whom that deploy was made.
type ImportErrors struct {
	Problems   []ImportProblem `firestore:"problems"`
	DeployedBy string          `firestore:"deployed_by"`
	DeployedAt time.Time       `firestore:"deployed_at"`
}

// GetImportErrors reads the import errors of the last DAG deploy: empty when no deploy has
// recorded any yet.
func (s *Store) GetImportErrors(ctx context.Context) (*ImportErrors, error) {
	v, err := get[ImportErrors](ctx, s, ColMeta, docImportErrors)
	if errors.Is(err, ErrNotFound) {
		return &ImportErrors{}, nil
	}
	if err != nil {
		return nil, err
	}
	return &v.Rec, nil
}

// SetImportErrors replaces the import errors with those of a deploy (one write).
func (s *Store) SetImportErrors(ctx context.Context, ie *ImportErrors) error {
	if ie.Problems == nil {
		ie.Problems = []ImportProblem{}
	}
	_, err := s.fs.Collection(ColMeta).Doc(docImportErrors).Set(ctx, ie)
	s.wrote(ColMeta, docImportErrors, err)
	return mapErr("fsstore: set "+ColMeta+"/"+docImportErrors, err)
}
