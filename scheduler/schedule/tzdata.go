package schedule

// The embedded timezone database lets binaries built from this package load IANA zones on
// images that ship no /usr/share/zoneinfo (distroless, scratch).
import _ "time/tzdata"
