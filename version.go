package levqor

// Version and Commit are stamped at build time with -ldflags "-X …"; the defaults
// describe a development build.
var (
	Version = "0.1.0-dev"
	Commit  = "unknown"
)
