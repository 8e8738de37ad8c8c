package web

import "net/url"

// The API's paths for the actions the pages offer; the API package serves them.
const apiBase = "/api/v1"

func apiDAG(dagID string) string { return apiBase + "/dags/" + url.PathEscape(dagID) }

func apiRun(dagID, runID string) string { return apiDAG(dagID) + "/runs/" + url.PathEscape(runID) }

// pauseAction is the endpoint and body that pause (or unpause) a DAG: PATCH the DAG.
func pauseAction(dagID string, pause bool) (api, body string) {
	return apiDAG(dagID), jsonAttr(map[string]bool{"paused": pause})
}
