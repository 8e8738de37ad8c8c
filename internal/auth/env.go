package auth

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"google.golang.org/api/option"
)

// The environment variables FromEnv reads.
const (
	// EnvAuth is "off" to turn auth off (Dev); empty or "on" otherwise.
	EnvAuth = "UPDRAFT_AUTH"
	// EnvOIDCAudience is the audience of the invokers' OIDC tokens: the internal service's URL.
	EnvOIDCAudience = "UPDRAFT_OIDC_AUDIENCE"
	// EnvOIDCInvokers are the service-account emails that may call an internal service,
	// comma-separated.
	EnvOIDCInvokers = "UPDRAFT_OIDC_INVOKERS"
	// EnvIAPAudience is IAP's audience for the UI service:
	// /projects/NUMBER/locations/REGION/services/NAME or
	// /projects/NUMBER/global/backendServices/ID.
	EnvIAPAudience = "UPDRAFT_IAP_AUDIENCE"
	// EnvIDTokenAudience are the audiences a bearer ID token sent to the UI service may
	// carry, comma-separated (usually the UI service's URL).
	EnvIDTokenAudience = "UPDRAFT_ID_TOKEN_AUDIENCE"
	// EnvDevUser is the dev identity's email when auth is off (default DefaultDevEmail).
	EnvDevUser = "UPDRAFT_DEV_USER"
)

// Cloud Run sets these in every service and job; auth may not be off where either is set.
const (
	// EnvCloudRunService is set by Cloud Run in a service (and a Cloud Run function).
	EnvCloudRunService = "K_SERVICE"
	// EnvCloudRunJob is set by Cloud Run in a job's tasks.
	EnvCloudRunJob = "CLOUD_RUN_JOB"
)

// InvokersFromEnv makes the guard for an internal service (scheduler, functions): a *Dev
// when UPDRAFT_AUTH is off, else *Invokers from UPDRAFT_OIDC_AUDIENCE and
// UPDRAFT_OIDC_INVOKERS. getenv is os.Getenv in main. An error names the variable to fix.
func InvokersFromEnv(ctx context.Context, getenv func(string) string, log *slog.Logger, opts ...option.ClientOption) (Guard, error) {
	off, err := authOff(getenv)
	if err != nil {
		return nil, err
	}
	if off {
		return NewDev(getenv(EnvDevUser), log), nil
	}
	return NewInvokers(ctx, InvokersConfig{
		Audience: getenv(EnvOIDCAudience),
		Allowed:  splitList(getenv(EnvOIDCInvokers)),
	}, log, opts...)
}

// UIFromEnv makes the guard for the UI service: a *Dev when UPDRAFT_AUTH is off, else
// *UIAuth from UPDRAFT_IAP_AUDIENCE and UPDRAFT_ID_TOKEN_AUDIENCE (at least one). An error
// names the variable to fix.
func UIFromEnv(ctx context.Context, getenv func(string) string, log *slog.Logger, opts ...option.ClientOption) (Guard, error) {
	off, err := authOff(getenv)
	if err != nil {
		return nil, err
	}
	if off {
		return NewDev(getenv(EnvDevUser), log), nil
	}
	return NewUIAuth(ctx, UIConfig{
		IAPAudience:      getenv(EnvIAPAudience),
		IDTokenAudiences: splitList(getenv(EnvIDTokenAudience)),
	}, log, opts...)
}

// authOff reads UPDRAFT_AUTH and refuses "off" on Cloud Run.
func authOff(getenv func(string) string) (bool, error) {
	switch v := strings.ToLower(strings.TrimSpace(getenv(EnvAuth))); v {
	case "", "on":
		return false, nil
	case "off":
		for _, k := range []string{EnvCloudRunService, EnvCloudRunJob} {
			if getenv(k) != "" {
				return false, fmt.Errorf("auth: %s=off is for local development only, and %s is set (this is Cloud Run): unset %s", EnvAuth, k, EnvAuth)
			}
		}
		return true, nil
	default:
		return false, fmt.Errorf("auth: %s is %q: want \"on\" (or empty) or \"off\" (local development only)", EnvAuth, v)
	}
}

// splitList splits a comma-separated list, dropping blanks.
func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
