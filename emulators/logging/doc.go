// Package logemu is a local stand-in for the read side of the Cloud Logging API v2, since
// Google ships no Logging emulator. It serves gRPC (google.logging.v2.LoggingServiceV2) on
// 127.0.0.1, so the official client (cloud.google.com/go/logging/logadmin) reads from it
// unchanged:
//
//	client, err := logadmin.NewClient(ctx, "projects/P",
//		option.WithEndpoint(srv.Addr),
//		option.WithoutAuthentication(),
//		option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials())))
//
// What it serves: ListLogEntries, over the entries other stand-ins hand it with Write (the
// Cloud Run stand-in writes its executions' container output there, with the log names,
// resource and labels Cloud Run gives it). resource_names keep the entries whose logName is
// under one of them; order_by is "timestamp asc" (the default) or "timestamp desc"; entries
// with equal timestamps keep the order they were written in; page_size (default and most
// 1000) and page_token page through them.
//
// The filter is a subset of the Logging query language, parsed as Cloud Logging parses it
// (NOT binds tighter than OR, which binds tighter than AND; juxtaposition is AND):
// comparisons FIELD OP VALUE with OP one of = != < <= > >= : (has), FIELD one of logName,
// severity, timestamp, insertId, textPayload, resource.type, resource.labels.KEY, labels.KEY
// and jsonPayload.KEY (KEY a name or a quoted string), VALUE a quoted string (with \" and \\
// escapes) or a bare word; parentheses, AND, OR and NOT. severity compares by level and
// timestamp by time. Anything else is INVALID_ARGUMENT naming what and where, so a filter
// the stand-in cannot read fails loudly instead of matching the wrong entries.
//
// Nothing is persisted: the entries live as long as the server, bounded by MaxEntries (the
// oldest go first).
//
// This package imports only the Go SDK's protos and gRPC; it must not import Updraft's own
// packages: it stands in for Google's service, not for Updraft code.
package logemu
